"""Figures of the leakage probes, and the paired comparison of two models (pure arithmetic).

Every figure is computed from per-sample outcomes (index -> hit, or index -> chosen letter), so it
comes with a seeded bootstrap interval over the same samples, as MG does:

- ``order``: CircularEval accuracy (a sample counts only when every rotation of its options is
  answered right), option-order sensitivity (accuracy on the original order minus the mean over the
  moved orders) and, per sample, "right in the original order, wrong in most moved orders" (the
  evidence flag) and "answers follow the position, not the option". Each sample is
  judged on its own rotations (a 3-option sample has shifts 0-2, a 4-option one 0-3), so a benchmark
  that mixes option counts keeps every sample;
- ``slots``: the rate at which a model reproduces a hidden text it was never shown;
- ``swap``: S_swap with another sample's image, its excess over chance, image dependence =
  S_v - S_swap (paired), and per sample "same answer whatever the image";
- McNemar's exact test and a paired interval for two models on the same samples.

In core so that the run layer can score what it ran; ``mmstar.metrics.probes`` re-exports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .intervals import bootstrap_mean, bootstrap_paired_difference, bootstrap_score


def follows_position(letters: Sequence[str | None]) -> bool:
    """The same letter in every order while the options moved under it: the model answers a slot,
    not an option. A reply that could not be read in some order is not evidence either way."""
    return len(letters) >= 2 and None not in letters and len(set(letters)) == 1


def drops_when_moved(row: Sequence[bool]) -> bool:
    """Right in the original order and wrong in more than half of the moved orders: what a model that
    memorised the answer's letter does (once the options move it falls to chance; it seldom keeps the
    old letter, so ``follows_position`` misses it)."""
    return len(row) >= 2 and bool(row[0]) and sum(not h for h in row[1:]) > (len(row) - 1) / 2


def _own_shifts(index: Any, hits: Mapping[int, Mapping[Any, bool]], n_options: Mapping[Any, int] | None) -> int:
    if n_options is not None and index in n_options:
        return int(n_options[index])
    return 1 + max(s for s in hits if index in hits[s])


def order_figures(hits: Mapping[int, Mapping[Any, bool]], choices: Mapping[int, Mapping[Any, str | None]],
                  seed: int = 0, n_options: Mapping[Any, int] | None = None) -> dict[str, Any]:
    """``hits[shift][index]`` and ``choices[shift][index]`` for shift 0 (the original order) and the
    rotations. A sample is scored on its own shifts 0..k-1 (``n_options[index]`` = k; without it, one
    more than the largest shift it was asked in) and only when it has all of them: the others are
    ``left_out`` (counted), so an unfinished run never scores half a sample."""
    if 0 not in hits:
        raise ValueError("the order probe needs the original order (shift 0)")
    complete: list[Any] = []
    seen: set[Any] = set().union(*(set(h) for h in hits.values()))
    for index in sorted(seen, key=str):
        k = _own_shifts(index, hits, n_options)
        if k >= 2 and all(index in hits.get(s, {}) for s in range(k)):
            complete.append(index)
    if not complete:
        raise ValueError("no sample was answered in every order of its options")
    circular, sensitivity, original, rotated, flags, follows, rows = [], [], [], [], {}, {}, {}
    for index in complete:
        k = _own_shifts(index, hits, n_options)
        row = [bool(hits[s][index]) for s in range(k)]
        moved = sum(row[1:]) / (k - 1)
        circular.append(float(all(row)))
        original.append(float(row[0]))
        rotated.append(moved)
        sensitivity.append(row[0] - moved)
        follows[index] = follows_position([choices.get(s, {}).get(index) for s in range(k)])
        flags[index] = drops_when_moved(row)
        rows[index] = row
    circ, sens = bootstrap_mean(circular, seed), bootstrap_mean(sensitivity, seed)
    n = len(complete)
    return {
        "n": n, "left_out": len(seen) - n, "circular": circ.estimate, "circular_low": circ.low,
        "circular_high": circ.high, "original": 100 * sum(original) / n, "rotated": 100 * sum(rotated) / n,
        "sensitivity": sens.estimate, "sensitivity_low": sens.low, "sensitivity_high": sens.high,
        "follows_position": sum(follows.values()), "drops_when_moved": sum(flags.values()), "flags": flags,
        "more_flags": {"follows_position": follows}, "rows": rows,
    }


def rate_figures(outcomes: Mapping[Any, bool], seed: int = 0, prefix: str = "") -> dict[str, Any]:
    """A percentage of per-sample yes/no outcomes with its interval, keyed ``<prefix>rate`` etc."""
    if not outcomes:
        return {f"{prefix}n": 0, f"{prefix}rate": None, f"{prefix}rate_low": None, f"{prefix}rate_high": None}
    iv = bootstrap_score(outcomes, seed)
    return {f"{prefix}n": len(outcomes), f"{prefix}rate": iv.estimate, f"{prefix}rate_low": iv.low,
            f"{prefix}rate_high": iv.high}


def swap_figures(hits_v: Mapping[Any, bool], hits_swap: Mapping[Any, bool], choices_v: Mapping[Any, str | None],
                 choices_swap: Mapping[Any, str | None], seed: int = 0,
                 n_options: Mapping[Any, int] | None = None) -> dict[str, Any]:
    """S_swap over the swapped samples; its excess over chance (1/k per sample, k its option count:
    above chance with another sample's image, the answer came from the text); image dependence =
    S_v - S_swap on the same samples (paired); per sample whether the answer stayed put."""
    common = sorted(set(hits_v) & set(hits_swap), key=str)
    if not common:
        raise ValueError("no sample has both a v and a swap answer")
    s_swap = bootstrap_score({i: hits_swap[i] for i in common}, seed)
    chance = [1 / n_options[i] if n_options and n_options.get(i) else 0.0 for i in common]
    excess = bootstrap_mean([float(bool(hits_swap[i])) - c for i, c in zip(common, chance)], seed)
    dep = bootstrap_paired_difference({i: hits_v[i] for i in common}, {i: hits_swap[i] for i in common}, seed)
    flags = {i: choices_v.get(i) is not None and choices_v.get(i) == choices_swap.get(i) for i in common}
    return {"n": len(common), "S_swap": s_swap.estimate, "S_swap_low": s_swap.low, "S_swap_high": s_swap.high,
            "chance": 100 * sum(chance) / len(common), "excess": excess.estimate, "excess_low": excess.low,
            "excess_high": excess.high, "S_v_same_samples": 100 * sum(bool(hits_v[i]) for i in common) / len(common),
            "image_dependence": dep.estimate, "image_dependence_low": dep.low, "image_dependence_high": dep.high,
            "same_answer": sum(flags.values()), "flags": flags}


def mcnemar_exact(a: Mapping[Any, bool], b: Mapping[Any, bool]) -> dict[str, Any]:
    """McNemar's exact test on the samples both answered: the two-sided binomial p of the discordant
    pairs (A right and B wrong, against A wrong and B right) under p = 1/2."""
    common = set(a) & set(b)
    only_a = sum(bool(a[i]) and not bool(b[i]) for i in common)
    only_b = sum(bool(b[i]) and not bool(a[i]) for i in common)
    n = only_a + only_b
    k = min(only_a, only_b)
    p = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, j) for j in range(k + 1)) / 2 ** n)
    return {"n": len(common), "only_a": only_a, "only_b": only_b, "p": p}


def compare(a: Mapping[Any, bool], b: Mapping[Any, bool], seed: int = 0) -> dict[str, Any]:
    """A minus B on the same samples: the paired difference with its interval and McNemar's exact p."""
    diff = bootstrap_paired_difference(a, b, seed)
    return {"difference": diff.estimate, "difference_low": diff.low, "difference_high": diff.high,
            "spans_zero": diff.spans_zero, **{f"mcnemar_{k}": v for k, v in mcnemar_exact(a, b).items()}}
