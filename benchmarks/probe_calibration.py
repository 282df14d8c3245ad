"""The leakage probes' calibration (issue 30): false-alarm rate per rule on simulated clean models,
power on planted leaks, and the precision and recall of each per-sample flag.

Runs ``mmstar.probe_sim`` on the real 1,500 MMStar questions of the official submission xlsx (read
at run time from ``--reference``, never copied): each simulated run is scored by the tests the probes
block applies to records (``mmstar.probe_nulls``: order against the model's letters, swap against
the backbone, slots wv against t, the backbone signal; Holm over the run, fires at p_adjusted <
0.05). ``tests/test_probe_calibration.py`` checks that a written run directory, read and scored by
``mmstar.open_run``, gives the same p-values.

Not a test: run by hand; prints markdown tables (as in the README) and writes ``--json``.
    python benchmarks/probe_calibration.py [--clean-runs 200] [--leak-runs 100] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from mmstar.loaders import load_benchmark
from mmstar.probe_sim import CLEAN, LEAK_BACKGROUND, LEAKS, SHARES, Questions, firing_rates, flag_scores, leaked_model

# as tests/conftest.py: ../shared/reference beside the repository, or MMSTAR_REFERENCE_DIR
REFERENCE = Path(os.environ.get("MMSTAR_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "reference")
                 ) / "llava_next_yi_34b_MMStar.xlsx"
RULES = ["order v", "order wv", "order t", "slots wv", "slots t", "swap v", "backbone t", "any"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, default=REFERENCE)
    ap.add_argument("--clean-runs", type=int, default=200)
    ap.add_argument("--leak-runs", type=int, default=100)
    ap.add_argument("--flag-runs", type=int, default=20)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not args.reference.exists():
        raise SystemExit(f"{args.reference}: the reference xlsx is not there (--reference PATH)")
    questions = Questions.of(list(load_benchmark(args.reference)))
    out: dict = {"questions": len(questions.samples), "masked": len(questions.slot_samples), "clean": {},
                 "power": {}, "flags": {}}
    start = time.perf_counter()
    print(f"{len(questions.samples)} questions, {len(questions.slot_samples)} with a masked option\n")
    print(f"False alarms: {args.clean_runs} simulated clean runs per row (fires = Holm-adjusted p < 0.05)\n")
    print("| clean model | " + " | ".join(RULES) + " |")
    print("|---" * (len(RULES) + 1) + "|")
    for label, model in CLEAN.items():
        rates = firing_rates(model, questions, range(args.clean_runs))
        out["clean"][label] = rates
        print(f"| {label} | " + " | ".join(_pct(rates.get(r, 0.0)) for r in RULES) + " |", flush=True)
    print(f"\nPower: {args.leak_runs} runs per cell, leaks planted behind a {LEAK_BACKGROUND.bias:.0%} preference for "
          f"{LEAK_BACKGROUND.bias_letter} (LVLM and backbone) with {LEAK_BACKGROUND.text_answerable:.0%} "
          "text-answerable samples; the share of runs whose fired list is not empty (and the rules that fire most)\n")
    print("| leak | " + " | ".join(f"{s:.0%}" for s in SHARES) + " |")
    print("|---" * (len(SHARES) + 1) + "|")
    for kind in LEAKS:
        cells = []
        for share in SHARES:
            rates = firing_rates(leaked_model(kind, share), questions, range(args.leak_runs))
            out["power"][f"{kind} {share:.0%}"] = rates
            top = sorted((r for r in RULES[:-1] if rates.get(r, 0) >= 0.5), key=lambda r: -rates[r])
            cells.append(f"{_pct(rates['any'])} ({', '.join(top) or '-'})")
        print(f"| {kind} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nPer-sample flags against the leaked samples ({args.flag_runs} runs per leak, pooled; precision / "
          "recall)\n")
    names: list[str] = []
    rows = []
    for kind in LEAKS:
        for share in (0.10, 0.25):
            scores = flag_scores(leaked_model(kind, share), questions, range(args.flag_runs))
            out["flags"][f"{kind} {share:.0%}"] = scores
            names = names or list(scores)
            rows.append((f"{kind} {share:.0%}", scores))
    print("| leak | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for label, scores in rows:
        print(f"| {label} | " + " | ".join(f"{100 * scores[n]['precision']:.0f} / {100 * scores[n]['recall']:.0f}"
                                           for n in names) + " |")
    out["seconds"] = round(time.perf_counter() - start, 1)
    print(f"\n{out['seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
