"""Samples/s of the curation filter with generation vs. next-token log-likelihood scoring, over the
1,500 real MMStar questions of the reference submission file, and how often the two agree.

Not a test: run by hand, it prints figures measured in this run and their ratio.
    python benchmarks/filter_throughput.py [--reference PATH] [--model DIR] [--limit N]
                                           [--before REV] [--repeats N] [--skip-loglik]
The default inspector is the bundled demo base LLM (``data/demo-models/base``), a tiny model that
answers with a letter, so agreement is measured on real letter answers.

``--before REV`` adds the generation pass as separate processes (as a user runs ``mmstar curate
filter``), alternating in each repeat: this tree with its defaults (the inspector's batches in worker
processes on CPU), this tree with ``--workers 0`` (the path without them), and mmstar as it was at
commit REV (``revision.py``); in-run seconds from the run's manifest, prediction files compared.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from revision import command, extract

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


def filter_process(tree: Path | None, pool: Path, model: str, out: Path, batch: int, extra: list[str]) -> dict:
    """The generation pass as its own process: whole seconds, in-run seconds and CPU, the file's hash."""
    args = ["curate", "filter", str(pool), "--llm", model, "--shots", "2", "--out", str(out), "--no-progress",
            "--scoring", "generate", "--batch-size", str(batch), "--max-new-tokens", "32", "--max-hits", "0",
            "--device", "cpu", *extra]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    start = time.perf_counter()
    proc = subprocess.run(command(tree, args), capture_output=True, text=True, cwd=REPO, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"curate filter failed:\n{proc.stderr[-2000:]}")
    (manifest,) = out.glob("runs/*/pool/manifest.json")
    stats = json.loads(manifest.read_text())["modes"]["t"]
    digest = hashlib.sha256((manifest.parent / "t.jsonl").read_bytes()).hexdigest()
    return {"wall": wall, "in_run": stats["seconds"], "cpu": stats.get("cpu_seconds") or float("nan"),
            "file": digest, "load": os.getloadavg()[0]}


def workers_section(args, pool: Path, n: int, tmp: Path) -> None:
    arms = {"this tree": (None, []), "this tree --workers 0": (None, ["--workers", "0"]),
            f"before {args.before}": (extract(args.before, tmp), [])}
    results: dict[str, list[dict]] = {a: [] for a in arms}
    print(f"\n[workers] generation pass as separate processes, {n} questions, 2-shot, batch {args.batch_size}, "
          f"32 new tokens, CPU; {args.repeats} alternating repeats (load average {os.getloadavg()[0]:.2f})")
    for rep in range(args.repeats):
        for arm, (tree, extra) in arms.items():
            r = filter_process(tree, pool, args.model, tmp / f"w-{arm.replace(' ', '_')}-{rep}", args.batch_size,
                               extra)
            results[arm].append(r)
            print(f"  [repeat {rep + 1}] {arm:<24} in-run {r['in_run']:6.2f} s (CPU {r['cpu']:6.2f} s), whole "
                  f"{r['wall']:6.2f} s, load {r['load']:.2f}", flush=True)
    med = statistics.median
    base = results["this tree"]
    for arm, rs in results.items():
        x = med(o["in_run"] / b["in_run"] for b, o in zip(base, rs))
        xw = med(o["wall"] / b["wall"] for b, o in zip(base, rs))
        same = all(r["file"] == base[0]["file"] for r in rs)
        print(f"  {arm:<24} in-run {med(r['in_run'] for r in rs):6.2f} s ({n / med(r['in_run'] for r in rs):6.1f}/s), "
              f"CPU {med(r['cpu'] for r in rs):6.2f} s, whole {med(r['wall'] for r in rs):6.2f} s; this tree is "
              f"{x:.2f}x faster in-run, {xw:.2f}x whole; t.jsonl identical to this tree's: {'yes' if same else 'NO'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", default=str(REPO.parent / "shared" / "reference" / "llava_next_yi_34b_MMStar.xlsx"))
    ap.add_argument("--model", default=str(REPO / "data" / "demo-models" / "base"))
    ap.add_argument("--limit", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--before", default=None, help="a commit to compare the generation pass with (git archive)")
    ap.add_argument("--repeats", type=int, default=3, help="--before: runs per arm (alternating)")
    ap.add_argument("--skip-loglik", action="store_true", help="only the --before comparison")
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
    if args.before:
        workers_section(args, pool, n, tmp)
    if args.skip_loglik:
        return
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
