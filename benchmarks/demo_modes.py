"""Every mode at v's speed: in-run seconds of v, wv and t on the demo, in one run.

``mmstar eval --modes v,wv,t`` on the bundled demo (360 samples, the trained clean LVLM and base LLM),
the paper's 2-shot context, batch 32, 32 new tokens, otherwise defaults; each arm a fresh process with
OMP_NUM_THREADS and MKL_NUM_THREADS unset, as users run it:
- mmstar: this tree, defaults (worker processes for every mode on CPU);
- mmstar --workers 0: this tree, the path without worker processes (a prefetch thread, torch's default
  threads);
- before REV (``--before REV``): mmstar as it was at that commit, defaults, through ``revision.py``.

For each arm and mode: the in-run seconds (the manifest's ``seconds``: model load excluded) and the
in-run CPU seconds (``cpu_seconds``: the process and its workers). Ratios are taken within a repeat (the
arms of a repeat run back to back, so load from other processes hits them alike) and the median over
repeats is printed, with the load average. The mode files are compared byte for byte across arms.

Not a test: run by hand.
    python benchmarks/demo_modes.py [--repeats 3] [--before 5b43617] [--shots 2] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from revision import REPO, command, extract

os.environ.setdefault("HF_HUB_OFFLINE", "1")
UNSET = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
MODES = ("v", "wv", "t")


def run_arm(arm: str, tree: Path | None, data: Path, models: tuple[Path, Path], out: Path, args) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    cli = ["eval", "--model", str(models[0]), "--backbone", str(models[1]), "--data", str(data), "--modes",
           ",".join(MODES), "--shots", str(args.shots), "--batch-size", str(args.batch_size), "--max-new-tokens",
           str(args.max_new_tokens), "--out", str(out), "--device", "cpu", "--no-progress", "--overwrite"]
    if arm.endswith("--workers 0"):
        cli += ["--workers", "0"]
    start = time.perf_counter()
    proc = subprocess.run(command(tree, cli), env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{arm}: mmstar eval failed:\n{proc.stderr[-3000:]}")
    (manifest,) = out.glob("*/*/manifest.json")
    stats = json.loads(manifest.read_text())["modes"]
    files = {m: hashlib.sha256((manifest.parent / f"{m}.jsonl").read_bytes()).hexdigest() for m in MODES}
    return {"wall": wall, "load": os.getloadavg()[0], "files": files,
            **{m: (stats[m]["seconds"], stats[m].get("cpu_seconds") or float("nan")) for m in MODES}}


def report(results: dict[str, list[dict]], arms: list[str]) -> dict:
    med = statistics.median
    loads = [r["load"] for rs in results.values() for r in rs]
    print(f"\nload average (1 min) after each arm: min {min(loads):.2f}, median {med(loads):.2f}, "
          f"max {max(loads):.2f} (this 2-core machine is shared)")
    print(f"  {'arm':<22} " + " ".join(f"{m + ' s':>7} {m + ' CPU':>7}" for m in MODES)
          + f" {'t / wv':>7} {'t CPU / wv CPU':>14}")
    out: dict = {}
    for arm in arms:
        rs = results[arm]
        row = {m: (med(r[m][0] for r in rs), med(r[m][1] for r in rs)) for m in MODES}
        t_wv = med(r["t"][0] / r["wv"][0] for r in rs)
        t_wv_cpu = med(r["t"][1] / r["wv"][1] for r in rs)
        print(f"  {arm:<22} " + " ".join(f"{row[m][0]:7.2f} {row[m][1]:7.2f}" for m in MODES)
              + f" {t_wv:6.2f}x {t_wv_cpu:13.2f}x")
        out[arm] = {"in_run_s": {m: row[m][0] for m in MODES}, "cpu_s": {m: row[m][1] for m in MODES},
                    "t_over_wv": t_wv, "t_over_wv_cpu": t_wv_cpu,
                    "t_over_wv_each": [r["t"][0] / r["wv"][0] for r in rs]}
    base = arms[0]
    for arm in arms[1:]:
        per_mode = {m: med(o[m][0] / b[m][0] for b, o in zip(results[base], results[arm])) for m in MODES}
        same = {m: all(r["files"][m] == results[base][0]["files"][m] for r in results[arm]) for m in MODES}
        print(f"  {base} against {arm}: in-run speed-up " + ", ".join(f"{m} {per_mode[m]:.2f}x" for m in MODES)
              + "; files byte-identical: " + ", ".join(f"{m} {'yes' if same[m] else 'NO'}" for m in MODES))
        out[f"{base} vs {arm}"] = {"speedup": per_mode, "identical": same}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shots", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--before", default=None, help="a commit to run as the 'before' arm (git archive)")
    args = ap.parse_args()
    from mmstar.data import DEMO_MODELS, DEMO_TEST

    if not DEMO_TEST.exists() or not (DEMO_MODELS / "base").exists():
        raise SystemExit("needs the bundled demo data and models (data/demo, data/demo-models)")
    tmp = Path(tempfile.mkdtemp(prefix="mmstar-modes-"))
    trees: dict[str, Path | None] = {"mmstar": None, "mmstar --workers 0": None}
    if args.before:
        trees[f"before {args.before}"] = extract(args.before, tmp)
    arms = list(trees)
    print(f"demo: 360 samples, trained clean LVLM + base LLM, modes v,wv,t, {args.shots} shots, batch "
          f"{args.batch_size}, {args.max_new_tokens} new tokens, CPU, {len(os.sched_getaffinity(0))} cores; "
          f"{args.repeats} alternating repeats, medians; load average before: {os.getloadavg()[0]:.2f}")
    results: dict[str, list[dict]] = {a: [] for a in arms}
    for rep in range(args.repeats):
        for arm in arms:
            r = run_arm(arm, trees[arm], DEMO_TEST, (DEMO_MODELS / "clean", DEMO_MODELS / "base"),
                        tmp / f"{arm.replace(' ', '_')}-{rep}", args)
            results[arm].append(r)
            print(f"  [repeat {rep + 1}] {arm:<22} " + ", ".join(f"{m} {r[m][0]:6.2f} s" for m in MODES)
                  + f"; whole {r['wall']:6.2f} s; load {r['load']:.2f}", flush=True)
    print(json.dumps(report(results, arms)))


if __name__ == "__main__":
    main()
