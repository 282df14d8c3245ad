"""``--batch-size auto``: the probe schedule, and on a real tiny model whose memory limit is a real
CUDA out-of-memory error raised above a given batch size (the one thing a CPU cannot produce):
identical predictions to a fixed batch, the size recorded in the manifest and reused on resume."""

import json

import pytest
from mmstar.evaluators.backends.autobatch import BatchSizer

from mmstar.loaders import load_benchmark


def _drive(sizer: BatchSizer, limit: int, total: int) -> list[int]:
    """Run ``total`` samples against a memory that holds ``limit`` rows; returns the sizes tried."""
    tried, pos = [], 0
    while pos < total:
        n = min(sizer.size, total - pos)
        tried.append(n)
        if n > limit:
            sizer.failed(n)
            continue
        sizer.ran(n)
        pos += n
    return tried


def test_doubles_then_bisects_to_the_largest_size_that_fits():
    sizer = BatchSizer(start=8, cap=512)
    tried = _drive(sizer, limit=100, total=2000)
    assert tried[:6] == [8, 16, 32, 64, 128, 96]  # doubling, a failure at 128, then bisection
    assert sizer.settled and 80 <= sizer.size <= 100
    assert all(n == sizer.size for n in tried[-5:-1])  # the last batch takes what is left
    assert sum(not ok for _, ok in sizer.trace) <= 3


def test_caps_and_fixed_sizes():
    capped = BatchSizer(start=8, cap=40)
    _drive(capped, limit=10_000, total=400)
    assert capped.settled and capped.size == 40
    fixed = BatchSizer(fixed=6)
    assert _drive(fixed, limit=100, total=20) == [6, 6, 6, 2] and fixed.trace == []


def test_halves_when_even_the_first_size_fails_and_a_fixed_size_falls_back():
    sizer = BatchSizer(start=8, cap=512)
    tried = _drive(sizer, limit=3, total=30)
    assert tried[:3] == [8, 4, 2] and sizer.settled and sizer.size == 3
    fixed = BatchSizer(fixed=16)
    assert _drive(fixed, limit=5, total=20)[:3] == [16, 8, 4]


def test_one_sample_too_large_does_not_pin_the_size_to_one():
    sizer = BatchSizer(start=1, cap=64)
    sizer.failed(1)  # an outlier the caller records as an error
    assert not sizer.settled and sizer.too_big is None
    sizer.ran(1)
    assert sizer.size == 2


class Killed(Exception):
    """Raised inside a worker process: the class must be importable to come back to the parent."""


class _Limited:
    """A factory whose HF backends raise a real torch.cuda.OutOfMemoryError for batches above
    ``limit`` rows: the memory check is this callable, the model and the runner are real."""

    def __init__(self, limit: int):
        import os
        import tempfile

        # the batches may run in worker processes (hf --workers): each call appends a line to a file
        self.limit = limit
        fd, self._log = tempfile.mkstemp(suffix=".sizes")
        os.close(fd)

    @property
    def sizes(self) -> list[int]:
        with open(self._log) as f:
            return [int(line) for line in f if line.strip()]

    def clear(self) -> None:
        open(self._log, "w").close()

    def record(self, n: int) -> None:
        with open(self._log, "a") as f:  # one short write per call: whole lines from every process
            f.write(f"{n}\n")

    def __call__(self, model_id: str, kind: str):
        import torch
        from mmstar.evaluators.backends.base import GenerationConfig
        from mmstar.evaluators.backends.hf import HFBackend

        # two worker processes that prepare and generate (the CPU default for a small model): the
        # probe's out-of-memory report has to come back from them
        backend = HFBackend(model_id, kind, GenerationConfig(max_new_tokens=6), device="cpu", workers=2)
        real = backend._generate_batch

        def fits(convs, *rest):
            self.record(len(convs))
            if len(convs) > self.limit:
                raise torch.cuda.OutOfMemoryError(f"CUDA out of memory: {len(convs)} rows (limit {self.limit})")
            return real(convs, *rest)

        backend._generate_batch = fits
        return backend


def _run(pair, data, out, batch_size, factory, limit=None, modes=("wv", "t")):
    from mmstar.evaluators.backends.base import GenerationConfig
    from mmstar.evaluators.backends.registry import factory as backend_factory
    from mmstar.evaluators.run.runner import EvalConfig, run_eval

    config = EvalConfig(model=str(pair.vlm), backbone=str(pair.backbone), modes=modes, batch_size=batch_size,
                        gen=GenerationConfig(max_new_tokens=6), progress=False, limit=limit, dtype="float32")
    factory = factory or backend_factory("hf", config.gen, {"device": "cpu"})
    return run_eval(load_benchmark(data), config, out, factory)[0]


def _preds(run_dir, mode):
    return {r["index"]: (r["prediction"], r["error"]) for r in map(json.loads, (run_dir / f"{mode}.jsonl").open())}


def test_auto_matches_fixed_records_the_size_and_reuses_it_on_resume(tiny_pairs, demo_parquet, tmp_path):
    import torch

    torch.set_num_threads(1)
    pair = tiny_pairs["llava"]
    fixed = _run(pair, demo_parquet, tmp_path / "fixed", 8, None)
    limited = _Limited(limit=11)
    auto = _run(pair, demo_parquet, tmp_path / "auto", "auto", limited, limit=30)
    manifest = json.loads((auto / "manifest.json").read_text())
    assert manifest["batch_size"] == "auto"
    assert manifest["backends"]["vlm"]["worker_role"] == "prepare+generate"  # wv ran in the workers
    for mode in ("wv", "t"):
        entry = manifest["modes"][mode]
        assert entry["batch_size_auto"] == entry["batch_size"] and 8 <= entry["batch_size"] <= 11
        assert any(not ok for _, ok in entry["batch_probe"])  # it did hit the limit
    # the rest of the benchmark: the recorded size is used, nothing above it is tried again
    limited.clear()
    auto = _run(pair, demo_parquet, tmp_path / "auto", "auto", limited)
    manifest = json.loads((auto / "manifest.json").read_text())
    assert max(limited.sizes) <= max(manifest["modes"][m]["batch_size_auto"] for m in ("wv", "t"))
    for mode in ("wv", "t"):
        assert _preds(auto, mode) == _preds(fixed, mode)
        assert len((auto / f"{mode}.jsonl").read_text().splitlines()) == 36  # no line lost or doubled


def test_a_killed_probe_resumes_without_losing_predictions(tiny_pairs, demo_parquet, tmp_path):
    """The runner is stopped (a real exception out of the model) after two batches; the resumed
    auto run finishes the mode and matches a fixed-batch run."""
    pair = tiny_pairs["llava"]

    class KillAfter(_Limited):
        def __call__(self, model_id, kind):
            backend = super().__call__(model_id, kind)
            inner = backend._generate_batch

            def maybe_die(convs, *rest):
                if len(self.sizes) >= 2:
                    raise Killed("stopped")
                return inner(convs, *rest)

            backend._generate_batch = maybe_die
            return backend

    with pytest.raises(Killed):
        _run(pair, demo_parquet, tmp_path / "auto", "auto", KillAfter(limit=100), modes=("wv",))
    (run_dir,) = [p.parent for p in (tmp_path / "auto").glob("*/*/manifest.json")]
    done = len((run_dir / "wv.jsonl").read_text().splitlines())
    assert 0 < done < 36
    auto = _run(pair, demo_parquet, tmp_path / "auto", "auto", _Limited(limit=100), modes=("wv",))
    fixed = _run(pair, demo_parquet, tmp_path / "fixed", 8, None, modes=("wv",))
    assert _preds(auto, "wv") == _preds(fixed, "wv")
    assert len((auto / "wv.jsonl").read_text().splitlines()) == 36


def test_batch_size_argument():
    from mmstar.evaluators.run.runner import resolve_batch_size

    from mmstar.errors import MmstarError

    assert resolve_batch_size("auto") == "auto" and resolve_batch_size("12") == 12
    assert resolve_batch_size(None, "hf", {"device": "cpu"}) == 8 and resolve_batch_size(None, "openai") == 8
    for bad in ("0", "-3", "many"):
        with pytest.raises(MmstarError, match="--batch-size"):
            resolve_batch_size(bad)
