"""Seeded bootstrap intervals over samples: a score, the mean of per-sample values, and paired
differences of two modes.

Paired: the same resampled sample indices are used for both modes, as MG compares one model on
the same questions with and without the image. In core (numpy only, imported by the modules that
need an interval, never by ``import mmstar``) so that the run layer and the probes' figures can use
it without importing ``metrics``; ``mmstar.metrics.uncertainty`` re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

N_BOOT = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    @property
    def spans_zero(self) -> bool:
        return self.low <= 0.0 <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "spans_zero": self.spans_zero}


def _interval(point: float, draws: np.ndarray, level: float) -> Interval:
    alpha = (1 - level) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return Interval(float(point), float(low), float(high))


def bootstrap_score(hits: Mapping[Any, bool], seed: int = 0, n_boot: int = N_BOOT, level: float = LEVEL) -> Interval:
    x = np.fromiter((bool(v) for v in hits.values()), dtype=float)
    if x.size == 0:
        raise ValueError("no samples to bootstrap")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    return _interval(100 * x.mean(), 100 * x[idx].mean(axis=1), level)


def bootstrap_mean(values: np.ndarray | list[float], seed: int = 0, n_boot: int = N_BOOT,
                   level: float = LEVEL) -> Interval:
    """Interval of the mean of per-sample values in [-1, 1] (percent / points): CircularEval's 0/1,
    a sample's order sensitivity, a hit minus its chance level."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("no samples to bootstrap")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    return _interval(100 * x.mean(), 100 * x[idx].mean(axis=1), level)


def bootstrap_paired_difference(a: Mapping[Any, bool], b: Mapping[Any, bool], seed: int = 0,
                                n_boot: int = N_BOOT, level: float = LEVEL) -> Interval:
    """Interval of score(a) - score(b) over the samples both modes answered."""
    common = sorted(set(a) & set(b), key=str)
    if not common:
        raise ValueError("the two modes share no samples")
    xa = np.fromiter((bool(a[k]) for k in common), dtype=float)
    xb = np.fromiter((bool(b[k]) for k in common), dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(common), size=(n_boot, len(common)))
    draws = 100 * (xa[idx].mean(axis=1) - xb[idx].mean(axis=1))
    return _interval(100 * (xa.mean() - xb.mean()), draws, level)
