"""A sweep of models behind one server (--backend openai) through one shared request window, against the
heavy-tailed stand-in (benchmarks/api_standin.py, its own process): the server's in-flight count reaches
the concurrency while both models are served, on one client; every record answered once into each
model's own run directory; a failing model is reported and the others finish; a sweep SIGKILLed twice
mid-way and re-run ends with every record exactly once and the same answers as single runs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from test_api_pool import DEMO, TAIL, _records, _stats

httpx = pytest.importorskip("httpx")

MODELS = [("model-a", "lm-a"), ("model-b", "lm-b")]


def _sweep(url, out, models=MODELS, modes="v,wv,t", limit=40, concurrency=8):
    from mmstar.evaluators.run.pipeline import RunOptions
    from mmstar.evaluators.run.sweep import evaluate_sweep

    options = RunOptions.from_mapping({"modes": modes, "limit": limit, "backend": "openai", "base_url": url,
                                       "concurrency": concurrency, "progress": False})
    lines: list[str] = []
    return evaluate_sweep(models, [DEMO], options, out, echo=lines.append), lines


def test_two_served_models_share_one_window_and_one_client(standin, tmp_path):
    url = standin(*TAIL)
    before = _stats(url)["connections"]
    results, lines = _sweep(url, tmp_path, modes="v,wv")  # no backbones: "models in flight" are a and b
    served = _stats(url)
    assert [r.error for r in results] == [None, None]
    # both models were in flight at once, and the window was full while they were
    assert served["peak_in_flight"] == 8 and served["peak_in_flight_mixed"] == 8 and served["peak_models"] == 2
    # one keep-alive client for the whole sweep: two runs with a pool each would open 8 connections each
    assert served["connections"] - before <= 8 + 1
    assert served["by_model"] == {"model-a": 80, "model-b": 80}
    for r, (model, _lm) in zip(results, MODELS):
        assert r.run_dir == tmp_path / model / "test"
        for mode in ("v", "wv"):
            recs = _records(r.run_dir, mode)
            assert sorted(x["index"] for x in recs) == list(range(40)), (model, mode)
            assert not any(x["error"] for x in recs) and all(x["prediction"] in "ABCD" for x in recs)
        manifest = json.loads((r.run_dir / "manifest.json").read_text())
        assert manifest["model"] == model and manifest["modes"]["v"]["shared_window"] == 16
        assert json.loads((r.run_dir / "scores.json").read_text())["S_v"] is not None
    assert sum("model-a / test ->" in ln or "model-b / test ->" in ln for ln in lines) == 2


def test_a_failing_model_is_reported_and_the_others_finish(standin, tmp_path):
    from mmstar.app.publishing import report

    url = standin("--fast-ms-low", "5", "--fast-ms-high", "10", "--slow-share", "0")
    # model-c's folder holds another run (another prompt): run_eval refuses to mix into it
    taken = tmp_path / "model-c" / "test"
    taken.mkdir(parents=True)
    (taken / "manifest.json").write_text(json.dumps({"model": "someone-else", "benchmark": "test"}))
    models = [("model-a", "lm-a"), ("model-c", "lm-c"), ("model-b", "lm-b")]
    results, lines = _sweep(url, tmp_path, models=models, limit=10)
    assert [r.model for r in results] == ["model-a", "model-c", "model-b"]
    assert results[0].error is None and results[2].error is None
    assert "holds a different run" in results[1].error and results[1].run_dir is None
    assert any(ln.startswith("FAILED model-c on test") for ln in lines)
    assert _stats(url)["by_model"] == {"model-a": 20, "model-b": 20, "lm-a": 10, "lm-b": 10}
    for model in ("model-a", "model-b"):
        assert all(len(_records(tmp_path / model / "test", m)) == 10 for m in ("v", "wv", "t"))
    printed: list[str] = []
    assert report(results, tmp_path, echo=printed.append) == 1
    assert any("1 model(s) failed" in ln for ln in printed) and any("model-c / test:" in ln for ln in printed)


def _lines(runs, models, modes):
    return sum((runs / m / "test" / f"{mode}.jsonl").read_bytes().count(b"\n")
               for m in models for mode in modes if (runs / m / "test" / f"{mode}.jsonl").exists())


@pytest.mark.slow  # two SIGKILLed sweeps, a resume and two reference runs: ~30-60 s on 2 shared cores
def test_sweep_killed_mid_way_resumes_with_nothing_lost_or_duplicated(standin, tmp_path):
    url = standin("--fast-ms-low", "20", "--fast-ms-high", "40", "--slow-share", "0.05", "--slow-ms", "300")
    modes, n, names = ("v", "wv", "t"), 120, [m for m, _ in MODELS]
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "mmstar", "eval", "--model", "model-a,model-b", "--backbone", "lm-a,lm-b",
           "--modes", ",".join(modes), "--data", str(DEMO), "--limit", str(n), "--backend", "openai",
           "--base-url", url, "--concurrency", "8", "--out", str(runs), "--no-progress"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    total = n * len(modes) * len(names)
    for kill_at in (80, 400):  # twice mid-sweep, wherever the writes are
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while _lines(runs, names, modes) < kill_at and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        written = _lines(runs, names, modes)
        assert kill_at <= written < total
        # killed mid-way, both models had answers on disk: they ran side by side, not one after the other
        assert all(_lines(runs, [m], modes) > 0 for m in names)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "leaderboard" in done.stdout
    for model, lm in MODELS:
        run_dir = runs / model / "test"
        reference = _sweep(url, tmp_path / "reference", models=[(model, lm)], limit=n)[0][0].run_dir
        manifest = json.loads((run_dir / "manifest.json").read_text())
        for mode in modes:
            recs = _records(run_dir, mode)
            assert sorted(r["index"] for r in recs) == list(range(n)), (model, mode)  # each exactly once
            assert not any(r["error"] for r in recs)
            want = {r["index"]: r["prediction"] for r in _records(reference, mode)}
            assert {r["index"]: r["prediction"] for r in recs} == want, (model, mode)
            assert manifest["modes"][mode]["done_before"] > 0  # the last session resumed, it did not start over


def test_one_feed_two_streams_a_broken_one_fails_alone(standin):
    """The shared window itself: two runs' job streams through one Feed against the stand-in; the one
    whose request building breaks raises in its own consumer, the other is answered in full."""
    from mmstar.evaluators.backends.base import Request
    from mmstar.evaluators.backends.openai_api import OpenAIBackend
    from mmstar.evaluators.backends.pool import Feed

    url = standin("--fast-ms-low", "20", "--fast-ms-high", "30", "--slow-share", "0")
    a, b = (OpenAIBackend(m, base_url=url, concurrency=4) for m in ("model-a", "model-b"))
    feed = Feed(a.window)

    def jobs(backend, n, broken_at=None):
        for i in range(n):
            if i == broken_at:
                raise ValueError("a request that cannot be built")
            yield i, backend, Request([{"role": "user", "content": f"question {i}"}])

    try:
        good = feed.stream(jobs(a, 60))
        bad = feed.stream(jobs(b, 30, broken_at=10))
        answered = dict(next(good))  # the first stream is under way; the second joins it in the window
        with pytest.raises(ValueError, match="cannot be built"):
            for _batch in bad:
                pass
        for batch in good:
            answered.update(batch)
    finally:
        feed.close()
        a.close()
        b.close()
    assert sorted(answered) == list(range(60)) and all(r.text in "ABCD" and not r.error for r in answered.values())
    served = _stats(url)
    assert served["by_model"]["model-a"] == 60 and served["by_model"]["model-b"] <= 10
    assert served["peak_in_flight"] == 4 and served["peak_models"] == 2  # one limit, both streams in it


def test_models_on_two_servers_get_a_window_each(standin, tmp_path):
    from mmstar.evaluators.backends import registry
    from mmstar.evaluators.backends.base import GenerationConfig
    from mmstar.evaluators.models.registry import resolve_model
    from mmstar.evaluators.run.runner import EvalConfig
    from mmstar.evaluators.run.sweep import run_sweep

    from mmstar.loaders import load_benchmark

    urls = {"model-a": standin(*TAIL), "model-b": standin(*TAIL)}
    gen = GenerationConfig(max_new_tokens=8)
    entries = [resolve_model(m, None, any_name=True) for m in urls]
    results = run_sweep(
        entries, [load_benchmark(str(DEMO))], tmp_path,
        lambda e: EvalConfig(model=e.lvlm, backbone=None, modes=("v", "wv"), backend="openai", gen=gen,
                             model_label=e.alias, limit=20, progress=False),
        lambda e: registry.factory("openai", gen, {"base_url": urls[e.alias], "concurrency": 4}), echo=print)
    assert [r.error for r in results] == [None, None]
    for r in results:
        served = _stats(urls[r.model])
        assert served["by_model"] == {r.model: 40} and served["peak_in_flight"] == 4
        manifest = json.loads((r.run_dir / "manifest.json").read_text())
        assert manifest["modes"]["v"]["shared_window"] == 8  # its own server's window (2 x 4), not one for both
        assert all(len(_records(r.run_dir, m)) == 20 for m in ("v", "wv"))


class _InFlight:
    """Requests submitted and not yet answered, across every run of a sweep: the window, counted."""

    def __init__(self):
        import threading

        self.lock, self.now, self.peak, self.total = threading.Lock(), 0, 0, 0

    def wrap(self, backend):
        counter = self

        class Counting:  # the openai backend, its submit counted (everything else is the backend's)
            def __getattr__(self, name):
                return getattr(backend, name)

            def submit(self, request):
                with counter.lock:
                    counter.now += 1
                    counter.total += 1
                    counter.peak = max(counter.peak, counter.now)
                future = backend.submit(request)
                future.add_done_callback(lambda _f: counter.left())  # before the window frees the slot
                return future

        return Counting()

    def left(self):
        with self.lock:
            self.now -= 1


def test_a_sweeps_probes_stay_in_its_shared_request_window(standin, tmp_path):
    """Two models' runs side by side, each with its order probe after its modes: every request, probes
    included, goes through the sweep's one window, so the requests in flight across runs never exceed
    it (counted at the client), and the server never sees more than --concurrency at once."""
    from mmstar.evaluators.run.pipeline import RunOptions, load_data, plan, resolve_entry
    from mmstar.evaluators.run.sweep import _first_line
    from mmstar.evaluators.run.sweep_pool import run_pooled

    url = standin(*TAIL)
    concurrency = 4
    options = RunOptions.from_mapping({"modes": "v,wv", "limit": 12, "backend": "openai", "base_url": url,
                                       "concurrency": concurrency, "progress": False, "probes": "order"})
    entries = [resolve_entry(m, None, "openai") for m in ("model-a", "model-b")]
    plans = {e.alias: plan(e, options) for e in entries}
    counted = _InFlight()

    def factory(entry):
        inner = plans[entry.alias].factory
        return lambda model_id, kind: counted.wrap(inner(model_id, kind))

    results = run_pooled(entries, [load_data(str(DEMO))], tmp_path, lambda e: plans[e.alias].config, factory,
                         _first_line, probes=plans["model-a"].probes)
    assert [r[4] for r in results] == [None, None]
    for model in ("model-a", "model-b"):
        for name, n in (("v", 12), ("wv", 12), ("order-v", 36), ("order-wv", 36)):
            assert len(_records(tmp_path / model / "test", name)) == n, (model, name)
    assert counted.total == 2 * (24 + 72)  # every mode and probe request went through the counted backends
    window = 2 * concurrency  # the openai backend's window (twice its ceiling): the sweep's one window
    assert counted.peak <= window, f"{counted.peak} requests in flight across the runs; the window is {window}"
    assert _stats(url)["peak_in_flight"] <= concurrency
