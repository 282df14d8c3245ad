"""Mode t, the curation filter and the text probes in the CPU worker processes (issue 29, item 7).

A small LLM on CPU now runs its batches in the forked workers that serve v and wv, with shared-prefix
reuse inside each worker. The records must be byte-identical to the path without workers
(``--workers 0``, the path every text-only run took before): the prefix of each batch is chosen by the
parent in run order (``HFBackend.prepare``), not by whichever worker happens to run the batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from mmstar.evaluators.backends.prep_workers import cpu_budget, plan_workers  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEMO_BASE = REPO / "data" / "demo-models" / "base"
TWO_CORES = pytest.mark.skipif(cpu_budget() < 2, reason="workers need 2 cores (the plan gives none on 1)")


def _run_dir(out: Path) -> Path:
    (manifest,) = out.glob("**/manifest.json")
    return manifest.parent


def _eval_t(backbone: Path, data: Path, out: Path, batch: int, *extra: str) -> Path:
    from mmstar.app.cli import main

    # the backbone stands in as the LVLM too: only mode t runs, so it is never loaded as one
    assert main(["eval", "--model", str(backbone), "--backbone", str(backbone), "--data", str(data), "--modes", "t",
                 "--shots", "2", "--out", str(out), "--batch-size", str(batch), "--max-new-tokens", "12",
                 "--no-progress", "--overwrite", *extra]) == 0
    return _run_dir(out)


@TWO_CORES
@pytest.mark.parametrize(("model", "batch"), [("demo-base", 8), ("tiny-llava", 1), ("tiny-qwen2-vl", 8)])
def test_mode_t_and_its_probes_in_workers_write_the_records_of_the_path_without(model, batch, tiny_pairs,
                                                                               demo_parquet, tmp_path, capsys):
    """The trained demo LLM (real letters) and two random tiny backbones (replies up to the token budget),
    2 shots so the prefix is reused; batch 1 is where the candidate prefix evolves across batches. The
    order probe's t file takes the same batched path."""
    backbone = DEMO_BASE if model == "demo-base" else tiny_pairs[model.removeprefix("tiny-")].backbone
    extra = ("--probes", "order") if model == "demo-base" else ()
    workers = _eval_t(backbone, demo_parquet, tmp_path / "workers", batch, *extra)
    plain = _eval_t(backbone, demo_parquet, tmp_path / "plain", batch, "--workers", "0", *extra)
    llm = json.loads((workers / "manifest.json").read_text())["backends"]["llm"]
    assert (llm["workers"], llm["worker_role"], llm["worker_threads"]) == (cpu_budget(), "prepare+generate", 1)
    assert llm["prefix_cache"] is True
    assert json.loads((plain / "manifest.json").read_text())["backends"]["llm"]["worker_role"] == "none"
    files = ["t.jsonl", *(["order-t.jsonl"] if extra else [])]
    for name in files:
        got, want = (workers / name).read_bytes(), (plain / name).read_bytes()
        assert got == want, f"{model} batch {batch}: {name} differs between the worker path and --workers 0"
    assert len((workers / "t.jsonl").read_text().splitlines()) == 36
    stats = json.loads((workers / "manifest.json").read_text())["modes"]["t"]
    assert stats["cpu_seconds"] > 0  # the workers' CPU time is counted


@TWO_CORES
def test_curation_filter_in_workers_keeps_the_same_samples(demo_parquet, tmp_path, capsys):
    """The filter's generation pass (2-shot inspectors) through the workers: identical prediction
    files and kept set as with --workers 0."""
    from mmstar.app.cli import main

    from mmstar.loaders import load_benchmark

    out = {}
    for name, extra in (("workers", []), ("plain", ["--workers", "0"])):
        out[name] = tmp_path / name
        assert main(["curate", "filter", str(demo_parquet), "--llm", str(DEMO_BASE), "--shots", "2", "--out",
                     str(out[name]), "--scoring", "generate", "--batch-size", "8", "--max-new-tokens", "8",
                     "--max-hits", "0", "--no-progress", *extra]) == 0
    (preds_w,) = out["workers"].glob("runs/*/pool/t.jsonl")
    (preds_p,) = out["plain"].glob("runs/*/pool/t.jsonl")
    assert preds_w.read_bytes() == preds_p.read_bytes()
    manifest = json.loads((preds_w.parent / "manifest.json").read_text())
    assert manifest["backends"]["llm"]["worker_role"] == "prepare+generate"
    kept = [[s.index for s in load_benchmark(out[n] / "kept.parquet")] for n in ("workers", "plain")]
    assert kept[0] == kept[1]


def test_text_models_get_workers_only_where_they_generate():
    """A small LLM on CPU runs whole batches in workers (as a small LVLM does); where workers would
    only prepare (CUDA, a large model, a sharded one), text gets none: tokenising a prompt costs
    less than sending it to a process."""
    small, large = 10**6, 10**10
    cpu = plan_workers("llm", "cpu", requested=None, weight_bytes=small, cores=4)
    assert (cpu.workers, cpu.generate, cpu.worker_threads, cpu.torch_threads) == (4, True, 1, None)
    assert plan_workers("llm", "cpu", requested=1, weight_bytes=small, cores=4).workers == 1
    assert plan_workers("llm", "cpu", requested=0, weight_bytes=small, cores=4).workers == 0
    assert plan_workers("llm", "cpu", requested=None, weight_bytes=small, cores=1).workers == 0
    for plan in (plan_workers("llm", "cpu", requested=None, weight_bytes=large, cores=4),
                 plan_workers("llm", "cpu", requested=None, weight_bytes=small, cores=4, sharded=True),
                 plan_workers("llm", "cuda:0", requested=2, weight_bytes=small, cores=4)):
        assert (plan.workers, plan.generate, plan.torch_threads) == (0, False, None)


def test_the_parent_chooses_each_batchs_prefix_in_run_order(demo_parquet):
    """With prefix reuse and workers, ``submit_prepare`` prepares in the parent: the split each batch
    carries to its worker is the one the path without workers chooses for it (batch 1, where a worker
    seeing every other row alone would choose another)."""
    from mmstar.evaluators.backends import hf
    from mmstar.evaluators.backends.base import Request

    from mmstar.loaders import load_benchmark
    from mmstar.prompts import PromptConfig, build_messages

    requests = [Request(build_messages(s, "t", PromptConfig(shots=2)), key=s.index)
                for s in load_benchmark(demo_parquet)[:6]]
    sent: list[tuple] = []
    sequential = hf.HFBackend(str(DEMO_BASE), "llm", device="cpu", workers=0)
    want = [getattr(sequential.prepare([r]).split, "prefix", None) for r in requests]
    backend = hf.HFBackend(str(DEMO_BASE), "llm", device="cpu", workers=1)
    try:
        first = backend.submit_prepare(requests[:1])
        pool = backend._pool
        submit = pool.submit

        def record(reqs, gen=None, prepared=None):
            sent.append((len(reqs), None if prepared is None or prepared.split is None else prepared.split.prefix))
            return submit(reqs, gen, prepared)

        pool.submit = record
        futures = [first, *(backend.submit_prepare([r]) for r in requests[1:])]
        texts = [p.responses[0].text for p in (f.result(timeout=120) for f in futures)]
    finally:
        backend.close()
    # the candidate evolves: the first row's prefix is all of it but its last token, then it shrinks
    assert all(w is not None and len(w) >= 16 for w in want) and len(want[0]) > len(want[1])
    assert [prefix for _n, prefix in sent] == want[1:]
    assert all(n == 0 for n, _p in sent)  # the requests stay here: the worker gets the prepared batch
    assert texts == [r.text for r in sequential.generate(requests)]
