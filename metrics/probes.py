"""Figures of the leakage probes, and the paired comparison of two models.

Every figure here is computed from per-sample outcomes (index -> hit, or index -> chosen letter),
so it can be given with a seeded bootstrap interval over the same samples, as MG is:

- ``order``: CircularEval accuracy (a sample counts only when every rotation of its options is
  answered right), option-order sensitivity (accuracy on the original order minus the mean over the
  moved orders) and, per sample, "answers follow the position, not the option";
- ``slots``: the rate at which a model reproduces a hidden option's text it was never shown;
- ``swap``: S_swap with another sample's image, image dependence = S_v - S_swap, and per sample
  "same answer whatever the image";
- McNemar's exact test and a paired interval for two models on the same samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .uncertainty import LEVEL, N_BOOT, Interval, bootstrap_paired_difference, bootstrap_score


def _boot(values: np.ndarray, seed: int, n_boot: int = N_BOOT, level: float = LEVEL) -> Interval:
    """Bootstrap interval of the mean of per-sample values (percent)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n_boot, values.size))
    draws = 100 * values[idx].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return Interval(float(100 * values.mean()), float(low), float(high))


def order_figures(hits: Mapping[int, Mapping[Any, bool]], choices: Mapping[int, Mapping[Any, str | None]],
                  seed: int = 0) -> dict[str, Any]:
    """``hits[shift][index]`` and ``choices[shift][index]`` for shift 0 (the original order) and the
    rotations. Samples missing from any rotation they have are left out (counted)."""
    shifts = sorted(hits)
    if 0 not in hits or len(shifts) < 2:
        raise ValueError("the order probe needs the original order and at least one rotation")
    common = sorted(set.intersection(*(set(hits[s]) for s in shifts)), key=str)
    if not common:
        raise ValueError("no sample was answered in every order")
    table = np.array([[bool(hits[s][i]) for s in shifts] for i in common], dtype=float)
    circular = table.min(axis=1)
    sensitivity = table[:, 0] - table[:, 1:].mean(axis=1)
    flags = {i: follows_position([choices[s].get(i) for s in shifts]) for i in common}
    circ = _boot(circular, seed)
    sens = _boot(sensitivity, seed)
    return {
        "n": len(common), "rotations": len(shifts) - 1, "left_out": len(set().union(*map(set, hits.values())))
        - len(common), "accuracy_original": float(100 * table[:, 0].mean()),
        "accuracy_rotated": float(100 * table[:, 1:].mean()), "circular": circ.estimate, "circular_low": circ.low,
        "circular_high": circ.high, "sensitivity": sens.estimate, "sensitivity_low": sens.low,
        "sensitivity_high": sens.high, "follows_position": sum(flags.values()),
        "follows_position_rate": 100 * sum(flags.values()) / len(common), "flags": flags,
    }


def follows_position(letters: Sequence[str | None]) -> bool:
    """The same letter in every order while the options moved under it: the model answers a slot,
    not an option. A reply that could not be read in some order is not evidence either way."""
    return len(letters) >= 2 and None not in letters and len(set(letters)) == 1


def rate_figures(outcomes: Mapping[Any, bool], seed: int = 0, prefix: str = "") -> dict[str, Any]:
    """A percentage of per-sample yes/no outcomes with its interval, keyed ``<prefix>rate`` etc."""
    if not outcomes:
        return {f"{prefix}rate": None, f"{prefix}rate_low": None, f"{prefix}rate_high": None, f"{prefix}n": 0}
    iv = bootstrap_score(outcomes, seed)
    return {f"{prefix}rate": iv.estimate, f"{prefix}rate_low": iv.low, f"{prefix}rate_high": iv.high,
            f"{prefix}n": len(outcomes)}


def swap_figures(hits_v: Mapping[Any, bool], hits_swap: Mapping[Any, bool], choices_v: Mapping[Any, str | None],
                 choices_swap: Mapping[Any, str | None], seed: int = 0) -> dict[str, Any]:
    """S_swap over the swapped samples, image dependence = S_v - S_swap on the same samples (paired),
    and per sample whether the answer stayed put when the image changed."""
    common = sorted(set(hits_v) & set(hits_swap), key=str)
    if not common:
        raise ValueError("no sample has both a v and a swap answer")
    s_swap = bootstrap_score({i: hits_swap[i] for i in common}, seed)
    dep = bootstrap_paired_difference({i: hits_v[i] for i in common}, {i: hits_swap[i] for i in common}, seed)
    flags = {i: choices_v.get(i) is not None and choices_v.get(i) == choices_swap.get(i) for i in common}
    return {"n": len(common), "S_swap": s_swap.estimate, "S_swap_low": s_swap.low, "S_swap_high": s_swap.high,
            "S_v_same_samples": float(100 * np.mean([bool(hits_v[i]) for i in common])),
            "image_dependence": dep.estimate, "image_dependence_low": dep.low, "image_dependence_high": dep.high,
            "same_answer": sum(flags.values()), "same_answer_rate": 100 * sum(flags.values()) / len(common),
            "flags": flags}


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
