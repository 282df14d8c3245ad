"""False-alarm rate and power of the recall probe's rule (mmstar/probe_recall.py) on planted per-sample
outcomes: ``recall_figures``' p (the larger of two one-sided exact McNemar p-values: own stem against
another sample's stem, and against the with-options accuracy) at 0.05, over seeded simulated runs.

Clean models (nothing leaked), per sample i of n:
* ``independent``: right text first with its own stem, with a donor stem, and right with the options
  shown, each with probability 1/k (k = 4);
* ``text prior``: a per-sample prior q_i ~ Beta(1, 3) (mean 0.25) drives own AND donor alike (the
  model likes some answer texts whatever the question: "freezing" after any thermometer question);
* ``text-answerable 20%``: a fifth of the samples are answered from the text: right first with their
  own stem and right with the options; the rest independent;
* ``text-answerable 20% + prior``: both.
Leaked models: a fraction f of the samples' answer texts memorised (right first with their own stem),
their letters not (with options: 1/k), on top of the ``text prior`` clean model.

Usage: python benchmarks/recall_null.py [--runs 400] [--n 1500]
"""

from __future__ import annotations

import argparse
import random

from mmstar.probe_recall import one_sided_mcnemar


def simulate(n: int, rng: random.Random, prior: bool, answerable: float, leaked: float, k: int = 4):
    own, donor, shown = {}, {}, {}
    for i in range(n):
        q = rng.betavariate(1, 3) if prior else 1 / k
        own[i], donor[i], shown[i] = rng.random() < q, rng.random() < q, rng.random() < 1 / k
        if rng.random() < answerable:
            own[i] = shown[i] = True
        if rng.random() < leaked:
            own[i] = True
    return own, donor, shown


def p_value(own, donor, shown) -> float:
    """recall_figures' p without its intervals (the same two tests, the intersection-union rule)."""
    return max(one_sided_mcnemar(own, donor)[2], one_sided_mcnemar(own, shown)[2])


def rate(runs: int, n: int, seed: int, **kind) -> float:
    rng = random.Random(seed)
    return 100 * sum(p_value(*simulate(n, rng, **kind)) < 0.05 for _ in range(runs)) / runs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=400)
    ap.add_argument("--n", type=int, default=1500)
    args = ap.parse_args()
    print(f"recall probe, {args.runs} simulated runs of {args.n} samples each, fires at p < 0.05")
    print("| clean model | fires |\n|---|---|")
    for label, kind in (("independent", dict(prior=False, answerable=0.0)),
                        ("text prior", dict(prior=True, answerable=0.0)),
                        ("text-answerable 20%", dict(prior=False, answerable=0.2)),
                        ("text-answerable 20% + prior", dict(prior=True, answerable=0.2))):
        print(f"| {label} | {rate(args.runs, args.n, 0, leaked=0.0, **kind):.1f}% |")
    print("\n| answer texts memorised (on the text-prior model) | fires |\n|---|---|")
    for f in (0.02, 0.05, 0.10, 0.25):
        print(f"| {100 * f:.0f}% | {rate(args.runs, args.n, 1, prior=True, answerable=0.0, leaked=f):.1f}% |")


if __name__ == "__main__":
    main()
