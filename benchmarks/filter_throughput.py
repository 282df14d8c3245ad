"""Samples/s of the curation filter with generation vs. next-token log-likelihood scoring, over the
1,500 real MMStar questions of the reference submission file, and how often the two agree.

Not a test: run by hand, it prints figures measured in this run and their ratio.
    python benchmarks/filter_throughput.py [--reference PATH] [--model DIR] [--limit N]
The default inspector is the bundled demo base LLM (``data/demo-models/base``), a tiny model that
answers with a letter, so agreement is measured on real letter answers.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]


def run_filter(pool: Path, model: str, out: Path, scoring: str, batch: int) -> float:
    from mmstar.app.cli import main

    args = ["curate", "filter", str(pool), "--llm", model, "--shots", "2", "--out", str(out), "--no-progress",
            "--scoring", scoring, "--batch-size", str(batch), "--max-new-tokens", "32", "--max-hits", "0"]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        if main(args) != 0:
            raise SystemExit(f"mmstar {args[0]} failed; see above")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", default=str(REPO.parent / "shared" / "reference" / "llava_next_yi_34b_MMStar.xlsx"))
    ap.add_argument("--model", default=str(REPO / "data" / "demo-models" / "base"))
    ap.add_argument("--limit", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    from mmstar.loaders import load_benchmark
    from mmstar.sample import Benchmark
    from mmstar.writers import write_benchmark

    tmp = Path(tempfile.mkdtemp(prefix="mmstar-filter-bench-"))
    bench = load_benchmark(args.reference)
    pool = write_benchmark(Benchmark("pool", list(bench)[: args.limit]), tmp / "pool.parquet")
    n = min(args.limit, len(bench))
    t_gen = run_filter(pool, args.model, tmp / "gen", "generate", args.batch_size)
    t_ll = run_filter(pool, args.model, tmp / "ll", "loglik", args.batch_size)

    def choices(folder: Path) -> dict[int, str | None]:
        path = next(folder.glob("runs/*/pool/t.jsonl"))
        return {r["index"]: r["choice"] for r in map(json.loads, path.read_text().splitlines())}

    g, ll = choices(tmp / "gen"), choices(tmp / "ll")
    lettered = [i for i in g if g[i] is not None]
    agree = sum(g[i] == ll[i] for i in lettered)
    print(f"inspector {args.model}; {n} reference questions; 2-shot; batch {args.batch_size}; CPU, 2 threads")
    print(f"  generation (max 32 new tokens)  {t_gen:7.2f} s  {n / t_gen:7.1f} samples/s")
    print(f"  log-likelihood (one forward)    {t_ll:7.2f} s  {n / t_ll:7.1f} samples/s")
    print(f"  speed-up of log-likelihood:     {t_gen / t_ll:6.2f}x")
    print(f"  agreement on the {len(lettered)} samples where generation gave a letter: "
          f"{agree}/{len(lettered)} = {100 * agree / max(1, len(lettered)):.1f}%")
    # a model that answers in one token leaves generation little to save; a chatty one (here a tiny
    # random checkpoint that never stops before 32 tokens) shows what the decode steps cost
    from mmstar.evaluators.models.tiny import build_tiny_pair

    chatty = str(build_tiny_pair("llava", tmp / "tiny").backbone)
    t_gen2 = run_filter(pool, chatty, tmp / "gen2", "generate", args.batch_size)
    t_ll2 = run_filter(pool, chatty, tmp / "ll2", "loglik", args.batch_size)
    print(f"inspector: tiny random Llama (always 32 new tokens); same {n} questions")
    print(f"  generation (max 32 new tokens)  {t_gen2:7.2f} s  {n / t_gen2:7.1f} samples/s")
    print(f"  log-likelihood (one forward)    {t_ll2:7.2f} s  {n / t_ll2:7.1f} samples/s")
    print(f"  speed-up of log-likelihood:     {t_gen2 / t_ll2:6.2f}x")


if __name__ == "__main__":
    main()
