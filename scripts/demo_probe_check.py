"""Measure the bundled demo models with the real pipeline: S_v, S_wv, S_t, MG, ML as ``mmstar demo``
runs them (0 shots, 8 new tokens), and the leakage probes (order, slots, swap) and the backbone signal
as ``mmstar eval --probes`` runs and scores them: every figure with its 95% interval, each verdict's p
against its null, Holm's adjusted p and whether it fires (``mmstar.probes.probe_table``). It prints
each model's probe table and one JSON object and, with ``--json``, writes it.

This reproduces the figures quoted in the README's demo section.
Usage: python scripts/demo_probe_check.py [--models data/demo-models] [--out /tmp/probe-check] [--json F]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from mmstar.data import DEMO_MODELS, DEMO_TEST
from mmstar.evaluators.run.pipeline import evaluate

from mmstar.loaders import load_benchmark
from mmstar.probes import probe_table
from mmstar.sample import Benchmark

RUN = {"shots": 0, "max_new_tokens": 8, "batch_size": 32, "progress": False}  # as app/demo.py runs them
PROBES = ["order", "slots", "swap"]


def check(name: str, vlm: str, base: str, bench: Benchmark, out: Path) -> dict:
    """One demo model's scores and its probes block, through ``mmstar.evaluate`` (resumable)."""
    label = f"demo-{name}"
    result = evaluate(vlm, data=bench, out=out, backbone=base, label=label, probes=PROBES, **RUN)
    scores = result.scores
    print(f"{label}: " + probe_table(scores["probes"]), flush=True)
    return {**{k: round(scores[k], 2) for k in ("S_v", "S_wv", "S_t", "MG", "ML")}, "probes": scores["probes"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=str(DEMO_MODELS))
    ap.add_argument("--data", default=str(DEMO_TEST))
    ap.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--limit", type=int, default=None, help="the first N samples only (a smoke test)")
    args = ap.parse_args()
    bench = load_benchmark(args.data)
    bench = Benchmark("mmstar-demo", list(bench)[:args.limit], bench.origin)
    out = Path(args.out or tempfile.mkdtemp(prefix="probe-check-"))
    models = Path(args.models)
    figures = {name: check(name, str(models / name), str(models / "base"), bench, out / "runs")
               for name in ("clean", "contaminated")}
    text = json.dumps(figures, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
