"""Cost of the leakage probes: samples/s per probe against a plain v run, measured in the same process.

The probes multiply the work (order asks every rotation: x3 per 4-option sample and mode). They go
through the runner's batched loop, so batching and prefix reuse apply to them as to v/wv/t; this
prints what that buys, on the bundled demo models (CPU, hf backend):

1. one run: modes v, wv, t and the probes order, slots (with the question-word mask), swap. For each
   mode and probe file: requests, in-loop seconds (model loads excluded), requests/s, samples/s
   (original samples covered per second) and the cost per sample as a multiple of plain v's;
2. order-t (the 2-shot context every request shares) with shared-prefix reuse on and off
   (``--no-prefix-cache``), and at batch size 1: what batching and prefix reuse give probe requests.

Not a test: run by hand; the figures are this machine's, measured in this run.
    python benchmarks/probe_throughput.py [--samples 48] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo" / "test.parquet"
MODELS = REPO / "data" / "demo-models"


def _run(out: Path, samples: int, batch: int, modes: str, probes: str, **options) -> dict:
    import mmstar

    t0 = time.perf_counter()
    result = mmstar.evaluate(str(MODELS / "contaminated"), data=str(DEMO), modes=modes, limit=samples, out=out,
                             backbone=str(MODELS / "base"), device="cpu", batch_size=batch, progress=False,
                             probes=probes, probe_words=True, **options)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    manifest["wall"] = time.perf_counter() - t0
    return manifest


def _rows(manifest: dict, samples: int) -> list[tuple[str, int, float, int]]:
    """(name, requests, seconds, samples covered) per mode and probe file."""
    rows = [(m, s["ran"], s["seconds"], s["ran"]) for m, s in manifest["modes"].items()]
    for name, s in manifest["probes"]["files"].items():
        covered = samples if name.startswith(("order", "swap")) else s["n"]  # slots: questions asked
        rows.append((name, s["ran"], s["seconds"], min(covered, samples)))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=8)
    args = p.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # warm-up, not reported: the first batches of a process pay for kernel and allocator set-up,
        # which would otherwise land on whichever file runs first (plain v)
        _run(root / "warmup", 8, args.batch_size, "v,wv,t", "order,swap")
        manifest = _run(root / "all", args.samples, args.batch_size, "v,wv,t", "order,slots,swap")
        rows = _rows(manifest, args.samples)
        v_rate = next(n / s for name, n, s, _c in rows if name == "v")
        print(f"demo-contaminated + base, {args.samples} samples, batch {args.batch_size}, hf on CPU "
              f"({torch.get_num_threads()} threads); in-loop seconds, model loads excluded")
        print(f"{'file':<9} {'requests':>8} {'seconds':>8} {'req/s':>7} {'samples/s':>9} {'x v per sample':>14}")
        for name, n, s, covered in rows:
            per_sample = (s / covered) / (1 / v_rate) if covered else float("nan")
            print(f"{name:<9} {n:>8} {s:>8.2f} {n / s:>7.2f} {covered / s:>9.2f} {per_sample:>14.2f}")
        probes = {}
        for name, n, s, _covered in rows:
            if "-" in name:
                probes.setdefault(name.split("-")[0], [0, 0.0])
                probes[name.split("-")[0]][0] += n
                probes[name.split("-")[0]][1] += s
        for probe, (n, s) in probes.items():
            print(f"probe {probe:<6} {n:>5} requests in {s:6.2f} s: {args.samples / s:6.2f} samples/s, "
                  f"{(s / args.samples) * v_rate:5.2f} x a plain v run's time per sample")
        print(f"whole run (loads included) {manifest['wall']:.1f} s")

        print("\norder-t: the 2-shot context shared by every request")
        base = None
        for label, batch, opts in (("batched, prefix reuse", args.batch_size, {}),
                                   ("batched, --no-prefix-cache", args.batch_size, {"prefix_cache": False}),
                                   ("batch 1, prefix reuse", 1, {})):
            m = _run(root / label.replace(" ", "_").replace(",", ""), args.samples, batch, "t", "order", **opts)
            f = m["probes"]["files"]["order-t"]
            rate = f["ran"] / f["seconds"]
            base = base or rate
            print(f"  {label:<28} {f['ran']:>4} requests {f['seconds']:7.2f} s  {rate:6.2f} req/s  "
                  f"({rate / base:4.2f} x the first)")


if __name__ == "__main__":
    main()
