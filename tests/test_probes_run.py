"""Probes through the runner, end to end: the request pool of the openai backend (a stand-in server on
loopback, benchmarks/api_standin.py), the batched loop of the hf backend on the bundled demo models,
the CLI and the Python API, bad input, and a probe run SIGKILLed and resumed. The demo models are
being retrained elsewhere: nothing here pins their figures, only structure, counts and determinism."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from conftest import REPO, assert_clean_error, run_cli

import mmstar
from mmstar.probes import probe_items
from mmstar.sample import Benchmark

httpx = pytest.importorskip("httpx")

DEMO = REPO / "data" / "demo" / "test.parquet"
DEMO_MODELS = REPO / "data" / "demo-models"
PROBE_FILES = ("order-v", "order-wv", "order-t", "slots-wv", "slots-t", "swap-v")

FAST = ("--fast-ms-low", "2", "--fast-ms-high", "6", "--slow-share", "0")


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _expected_keys(limit, words=True):
    bench = Benchmark("test", list(mmstar.load_benchmark(str(DEMO)))[:limit])
    out = {}
    for name in PROBE_FILES:
        probe, mode = name.split("-")
        out[name] = sorted(it.key for it in probe_items(bench, probe, mode, 0, words))
    return bench, out


def _check_run(run_dir, limit, words=True):
    """Every probe file holds each expected key exactly once, with the contract's fields."""
    bench, expected = _expected_keys(limit, words)
    by_index = {s.index: s for s in bench}
    for name, keys in expected.items():
        recs = _lines(run_dir / f"{name}.jsonl")
        assert sorted(r["key"] for r in recs) == keys, name
        for r in recs:
            probe, mode = name.split("-")
            assert r["probe"] == probe and r["mode"] == mode and r["key"] == f"{r['index']}:{r['variant']}"
            assert not r["error"], r
            if probe == "order":
                original = by_index[r["index"]]
                assert r["options"][r["answer"]] == original.options[original.answer] and r["shift"] >= 1
            elif probe == "swap":
                donor = by_index[r["image_from"]]
                assert donor.index != r["index"] and donor.category == r["category"]
            else:
                assert isinstance(r["reproduced"], bool) and r["target"] and "[MASK]" in r["question"]
    return expected


def test_probes_stream_through_the_request_pool_on_the_openai_backend(standin, tmp_path):
    url = standin(*FAST)
    limit = 24
    kwargs = dict(modes=["v", "wv", "t"], limit=limit, out=tmp_path, backend="openai", base_url=url, progress=False,
                  backbone="standin-lm", concurrency=8, probes=["order", "slots", "swap"], probe_words=True)
    result = mmstar.evaluate("standin-vlm", data=DEMO, **kwargs)
    expected = _check_run(result.run_dir, limit)
    served = httpx.get(url.replace("/v1", "/stats"), timeout=10).json()["served"]
    assert served == 3 * limit + sum(map(len, expected.values()))  # every request once, nothing else
    block = result.scores["probes"]
    assert set(block) == {"version", "seed", "order", "slots", "swap", "backbone", "fired"}
    assert set(block["backbone"]) == {"t"} and block["backbone"]["t"]["null"] == "wv_vs_t"
    assert set(block["order"]) == {"v", "wv", "t"} and set(block["slots"]) == {"wv", "t"}
    assert set(block["swap"]) == {"v"}
    assert block["order"]["wv"]["n"] == limit and block["swap"]["v"]["n"] == limit
    assert json.loads((result.run_dir / "scores.json").read_text())["probes"] == json.loads(json.dumps(block))
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    entry = manifest["probes"]
    assert entry["version"] == "mmstar-probes-v2" and entry["seed"] == 0
    assert entry["names"] == ["order", "slots", "swap"]
    assert "[MASK]" not in entry["prompts"]["slots-option"] and "{mask}" in entry["prompts"]["slots-option"]
    assert {k: v["ran"] for k, v in entry["files"].items()} == {k: len(v) for k, v in expected.items()}
    # again: nothing left to ask
    again = mmstar.evaluate("standin-vlm", data=DEMO, **kwargs)
    assert httpx.get(url.replace("/v1", "/stats"), timeout=10).json()["served"] == served
    assert again.scores["probes"] == block
    # another seed into the same run is refused: its variants are not these
    with pytest.raises(mmstar.MmstarError, match="probes ran with seed 0, not 1"):
        mmstar.evaluate("standin-vlm", data=DEMO, **{**kwargs, "probe_seed": 1})


def test_bad_probe_input_is_one_line_before_anything_runs(standin, tmp_path):
    url = standin(*FAST)
    base = ["eval", "--model", "standin-vlm", "--data", str(DEMO), "--backend", "openai", "--base-url", url,
            "--out", str(tmp_path), "--no-progress", "--modes", "v,wv"]
    proc = run_cli(*base, "--limit", "4", "--probes", "swap")  # sample 3 is alone in its capability
    assert_clean_error(proc, "capability 'fine-grained perception' has a single sample with an image (3)")
    assert_clean_error(run_cli(*base, "--probes", "order,shuffle"), "unknown probe(s) 'shuffle'")
    assert_clean_error(run_cli(*base, "--modes", "v", "--probes", "slots"), "probe slots runs in mode wv or t")
    assert httpx.get(url.replace("/v1", "/stats"), timeout=10).json()["served"] == 0
    samples = list(mmstar.load_benchmark(str(DEMO)))[:6]
    for bench, fragment in ((Benchmark("b", [s.with_(options={}) for s in samples], "b.parquet"),
                             "b.parquet: no sample has options"),
                            (Benchmark("b", [samples[0].with_(options={"A": "x"}, answer="A"), *samples[1:]],
                                       "b.parquet"), r"sample 0 has 1 option\(s\)")):
        with pytest.raises(mmstar.MmstarError, match=fragment):
            mmstar.evaluate("standin-vlm", data=bench, modes="v,wv", out=tmp_path, backend="openai", base_url=url,
                            probes="order", progress=False)


needs_demo = pytest.mark.skipif(not (DEMO_MODELS / "clean" / "model.safetensors").exists(),
                                reason="demo models not built (python scripts/train_demo_models.py)")


@needs_demo
@pytest.mark.slow  # the hf backend on CPU: tens of seconds
def test_probes_on_the_demo_models_through_the_batched_loop_via_api_and_cli(tmp_path):
    pytest.importorskip("torch")
    limit = 6
    flags = {"backbone": str(DEMO_MODELS / "base"), "device": "cpu", "batch_size": 4}
    result = mmstar.evaluate(str(DEMO_MODELS / "contaminated"), data=DEMO, limit=limit, out=tmp_path / "api",
                             progress=False, probes="order,slots,swap", probe_words=True, **flags)
    expected = _check_run(result.run_dir, limit)
    assert set(result.scores["probes"]["fired"]) <= {"order", "slots", "swap", "backbone"}
    proc = run_cli("eval", "--model", str(DEMO_MODELS / "contaminated"), "--backbone", flags["backbone"],
                   "--data", str(DEMO), "--limit", str(limit), "--device", "cpu",
                   "--batch-size", "3", "--out", str(tmp_path / "cli"), "--no-progress", "--probes",
                   "order,slots,swap", "--probe-words", env={"OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "leakage probes (mmstar-probes-v2, seed 0)" in proc.stdout
    cli_dir = tmp_path / "cli" / result.run_dir.parent.name / result.run_dir.name
    _check_run(cli_dir, limit)
    for name in expected:  # the same requests whatever the batch size or the entry point: the same replies
        api = {r["key"]: r["prediction"] for r in _lines(result.run_dir / f"{name}.jsonl")}
        assert {r["key"]: r["prediction"] for r in _lines(cli_dir / f"{name}.jsonl")} == api, name
    assert json.loads((cli_dir / "scores.json").read_text())["probes"] == result.scores["probes"]


def _probe_lines(run_dir):
    return sum(len((run_dir / f"{n}.jsonl").read_bytes().splitlines()) for n in PROBE_FILES
               if (run_dir / f"{n}.jsonl").exists())


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["openai", "hf"])
def test_a_probe_run_sigkilled_and_resumed_loses_and_duplicates_nothing(backend, standin, tmp_path):
    if backend == "hf":
        if not (DEMO_MODELS / "clean" / "model.safetensors").exists():
            pytest.skip("demo models not built")
        limit, kills = 8, (15, 60)
        model = ["--model", str(DEMO_MODELS / "clean"), "--backbone", str(DEMO_MODELS / "base"),
                 "--device", "cpu", "--batch-size", "4"]
    else:
        url = standin("--fast-ms-low", "20", "--fast-ms-high", "40", "--slow-share", "0.05", "--slow-ms", "300")
        limit, kills = 60, (60, 250)
        model = ["--model", "standin-vlm", "--backbone", "standin-lm", "--backend", "openai",
                 "--base-url", url, "--concurrency", "8"]
    cmd = [sys.executable, "-m", "mmstar", "eval", *model, "--data", str(DEMO), "--limit", str(limit), "--no-progress",
           "--probes", "order,slots,swap", "--probe-words"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    out = tmp_path / "killed"
    slug = "clean" if backend == "hf" else "standin-vlm"
    run_dir = out / slug / "test"
    _b, expected = _expected_keys(limit)
    total = sum(map(len, expected.values()))
    for kill_at in kills:  # twice mid-probe, at whatever point the writes are
        proc = subprocess.Popen([*cmd, "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        while _probe_lines(run_dir) < kill_at and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert kill_at <= _probe_lines(run_dir) < total
    done = subprocess.run([*cmd, "--out", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    _check_run(run_dir, limit)
    files = json.loads((run_dir / "manifest.json").read_text())["probes"]["files"]
    assert sum(f["done_before"] for f in files.values()) > 0  # the last session resumed, it did not start over
    reference = subprocess.run([*cmd, "--out", str(tmp_path / "reference")], env=env, capture_output=True, text=True,
                               timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]
    for name in PROBE_FILES:
        got = _lines(run_dir / f"{name}.jsonl")
        assert not [k for k, n in Counter(r["key"] for r in got).items() if n > 1]
        want = {r["key"]: r["prediction"] for r in _lines(tmp_path / "reference" / slug / "test" / f"{name}.jsonl")}
        assert {r["key"]: r["prediction"] for r in got} == want, name


@pytest.mark.slow  # two models, three modes, in a subprocess: ~20 s on a shared CPU
def test_a_sweep_runs_the_probes_of_each_phase_for_every_model(standin, tmp_path):
    url = standin(*FAST)
    proc = run_cli("eval", "--model", "standin-a,standin-b", "--backbone", "standin-lm", "--data", str(DEMO),
                   "--limit", "12", "--backend", "openai", "--base-url", url, "--out", str(tmp_path), "--no-progress",
                   "--probes", "order,swap")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for model in ("standin-a", "standin-b"):
        run_dir = tmp_path / model / "test"
        for name, n in (("order-v", 36), ("order-wv", 36), ("order-t", 36), ("swap-v", 12)):
            assert len(_lines(run_dir / f"{name}.jsonl")) == n, (model, name)
        scores = json.loads((run_dir / "scores.json").read_text())
        assert set(scores["probes"]["order"]) == {"v", "wv", "t"} and "slots" not in scores["probes"]
    header = (tmp_path / "leaderboard.csv").read_text().splitlines()[0]
    assert "swap_excess,swap_excess_low,swap_excess_high,probes_fired" in header
