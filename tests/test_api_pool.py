"""The openai backend's continuous pool through the real run loop, against the heavy-tailed stand-in
server (benchmarks/api_standin.py, in its own process): the server kept busy across modes on one
keep-alive client, faults retried to exactly one answer each, refusals recorded as errors, and a
`mmstar eval` SIGKILLed mid-run that resumes with every index exactly once."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO

httpx = pytest.importorskip("httpx")

DEMO = REPO / "data" / "demo" / "test.parquet"  # 360 samples with images

TAIL = ("--fast-ms-low", "20", "--fast-ms-high", "40", "--slow-share", "0.1", "--slow-ms", "400")


def _stats(url):
    return httpx.get(url.replace("/v1", "/stats"), timeout=10).json()


def _records(run_dir, mode):
    return [json.loads(line) for line in (run_dir / f"{mode}.jsonl").read_text().splitlines()]


def _evaluate(url, out, modes=("v", "wv"), limit=60, **options):
    import mmstar

    return mmstar.evaluate("standin-vlm", data=DEMO, modes=list(modes), limit=limit, out=out, backend="openai",
                           base_url=url, progress=False, backbone="standin-lm" if "t" in modes else None,
                           **{"concurrency": 8, **options})


def test_the_pool_keeps_the_server_busy_across_modes_on_one_client(standin, tmp_path):
    url = standin(*TAIL)
    before = _stats(url)["connections"]
    result = _evaluate(url, tmp_path)
    served = _stats(url)
    run_dir = result.run_dir
    for mode in ("v", "wv"):
        recs = _records(run_dir, mode)
        assert sorted(r["index"] for r in recs) == list(range(60)) and not any(r["error"] for r in recs)
    # always 8 in flight, v and wv together, over at most 8 kept-alive connections (+1: the stats call)
    assert served["peak_in_flight"] == 8
    assert served["connections"] - before <= 8 + 1
    manifest = json.loads((run_dir / "manifest.json").read_text())
    bound = served["latency_sum"] / 8
    for mode in ("v", "wv"):
        m = manifest["modes"][mode]
        assert m["streamed_with"] == ["v", "wv"] and m["requests"] == 60 and m["retries"] == 0
        assert m["prompt_tokens"] > 0 and m["completion_tokens"] == 60 and m["concurrency_reached"] == 8
        assert 0 < m["seconds"] <= m["stream_seconds"]
    pool = manifest["backends"]["vlm"]["pool"]
    assert pool["requests_sent"] == 120 and pool["concurrency_reached"] == 8 and pool["backoffs"] == 0
    # batches of 8 would wait for their slowest member: ~3.5x the bound here; the pool is near 1x
    stream = manifest["modes"]["v"]["stream_seconds"]
    assert stream <= 2 * bound + 0.5, (stream, bound)


def test_faults_are_retried_until_every_record_is_answered_once(standin, tmp_path):
    """20% of attempts fail with a 429, a 500 or a dropped connection; all three modes end complete."""
    url = standin("--fast-ms-low", "5", "--fast-ms-high", "15", "--slow-share", "0", "--fail-share", "0.2")
    result = _evaluate(url, tmp_path, modes=("v", "wv", "t"), backoff=0.01, max_retries=10)
    served = _stats(url)
    assert set(served["faults"]) == {"429", "500", "drop"} and sum(served["faults"].values()) > 20
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    for mode in ("v", "wv", "t"):
        recs = _records(result.run_dir, mode)
        assert sorted(r["index"] for r in recs) == list(range(60)), mode
        assert not any(r["error"] for r in recs) and all(r["prediction"] in "ABCD" for r in recs)
    # each fault cost exactly one retry, and the retries are in the manifest
    assert sum(manifest["modes"][m]["retries"] for m in ("v", "wv", "t")) == sum(served["faults"].values())
    pool = manifest["backends"]["vlm"]["pool"]
    assert pool["backoffs"] >= 1 and pool["throttled"] == served["faults"]["429"]
    assert manifest["backends"]["llm"]["pool"] == pool  # the LVLM and the backbone share the server's pool


def test_refusals_are_errors_never_answers_and_end_with_a_line_of_counts(standin, tmp_path, capsys):
    url = standin("--fast-ms-low", "5", "--fast-ms-high", "10", "--slow-share", "0", "--refuse-share", "0.3")
    result = _evaluate(url, tmp_path, modes=("wv",))
    refused = _stats(url)["refused"]
    recs = _records(result.run_dir, "wv")
    failed = [r for r in recs if r["error"]]
    assert len(recs) == 60 and len(failed) == sum(refused.values()) > 5
    assert all(r["prediction"] == "" and r["choice"] is None and not r["hit"] for r in failed)
    kinds = {k: sum(r["error"].startswith(k + ":") for r in failed) for k in ("context_length", "content_filter")}
    assert kinds == {"context_length": refused.get("context_length", 0),
                     "content_filter": refused.get("content_filter", 0) + refused.get("withheld", 0)}
    line = [ln for ln in capsys.readouterr().err.splitlines() if "got no answer" in ln]
    assert len(line) == 1 and f"{kinds['context_length']} context_length" in line[0], line
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["modes"]["wv"]["errors"] == {k: n for k, n in kinds.items() if n}
    # a re-run retries exactly the refused samples (the stand-in refuses them again)
    again = _evaluate(url, tmp_path, modes=("wv",))
    manifest = json.loads((again.run_dir / "manifest.json").read_text())
    assert manifest["modes"]["wv"]["retried_errors"] == len(failed) and len(_records(again.run_dir, "wv")) == 60


def _lines(run_dir, modes):
    total = 0
    for mode in modes:
        path = run_dir / f"{mode}.jsonl"
        if path.exists():
            total += path.read_bytes().count(b"\n")
    return total


@pytest.mark.slow  # two killed runs, a resume and a reference run: ~20 s on 2 shared cores
def test_sigkill_mid_run_and_resume_loses_and_duplicates_nothing(standin, tmp_path):
    url = standin("--fast-ms-low", "20", "--fast-ms-high", "40", "--slow-share", "0.05", "--slow-ms", "300")
    modes, n = ("v", "wv", "t"), 150
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "mmstar", "eval", "--model", "standin-vlm", "--backbone", "standin-lm",
           "--modes", ",".join(modes), "--data", str(DEMO), "--limit", str(n), "--backend", "openai",
           "--base-url", url, "--concurrency", "8", "--out", str(out), "--no-progress"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run_dir = out / "standin-vlm" / "test"
    for kill_at in (60, 250):  # twice mid-run, at whatever point the writes are
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while _lines(run_dir, modes) < kill_at and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        written = _lines(run_dir, modes)
        assert kill_at <= written < n * len(modes)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    reference = _evaluate(url, tmp_path / "reference", modes=modes, limit=n)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for mode in modes:
        recs = _records(run_dir, mode)
        assert sorted(r["index"] for r in recs) == list(range(n)), mode  # every index exactly once
        assert not any(r["error"] for r in recs)
        want = {r["index"]: r["prediction"] for r in _records(reference.run_dir, mode)}
        assert {r["index"]: r["prediction"] for r in recs} == want, mode
        assert manifest["modes"][mode]["done_before"] > 0  # the last session resumed, it did not start over


def test_the_backbone_on_its_own_server_streams_beside_the_lvlm(standin, tmp_path):
    """Two `vllm serve` processes (the LVLM, its backbone): one command runs v, wv and t against both."""
    lvlm, llm = standin(*TAIL), standin(*TAIL)
    result = _evaluate(lvlm, tmp_path, modes=("v", "wv", "t"), limit=30, backbone_base_url=llm)
    assert _stats(lvlm)["served"] == 60 and _stats(llm)["served"] == 30
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["backends"]["llm"]["base_url"] == llm and manifest["backends"]["vlm"]["base_url"] == lvlm
    assert all(len(_records(result.run_dir, m)) == 30 for m in ("v", "wv", "t"))
    assert manifest["modes"]["t"]["streamed_with"] == ["v", "wv", "t"]
