"""Difficulty bins and balanced selection.

Difficulty comes from how many LVLMs answer a sample *with* the image. The paper's bins over 16
LVLMs (easy 12-16, moderate 8-11, hard 4-7, tough 0-3) are generalised as fractions of the LVLMs:
easy >= 0.75, moderate >= 0.5, hard >= 0.25, tough below. Selection takes N per capability, spread
evenly over its axes, hardest bins first, seeded shuffling within a bin.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping

from mmstar.sample import Benchmark, Sample
from mmstar.taxonomy import CAPABILITIES

BINS = (("easy", 0.75), ("moderate", 0.5), ("hard", 0.25), ("tough", 0.0))
HARDNESS = {"tough": 0, "hard": 1, "moderate": 2, "easy": 3}


def difficulty(n_hit: int, n_models: int) -> str:
    if n_models <= 0:
        raise ValueError("difficulty needs at least one LVLM")
    frac = n_hit / n_models
    return next(name for name, low in BINS if frac >= low - 1e-9)


def select_balanced(samples: list[Sample], lvlm_hits: Mapping[int, int], n_models: int, per_capability: int,
                    seed: int = 0) -> tuple[list[Sample], dict[str, dict[str, int]]]:
    """Returns the selection (each sample's ``meta`` gains ``difficulty`` and ``lvlm_hits``) and a
    summary capability -> axis -> count."""
    rng = random.Random(seed)  # noqa: S311  a seeded, reproducible selection, not a secret
    by_axis: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_axis[s.l2_category].append(s)
    chosen: list[Sample] = []
    summary: dict[str, dict[str, int]] = {}
    for cap in CAPABILITIES:
        pools = {a.name: _ordered(by_axis.get(a.name, []), lvlm_hits, n_models, rng) for a in cap.axes}
        take = _spread(per_capability, {k: len(v) for k, v in pools.items()})
        summary[cap.name] = take
        for axis, k in take.items():
            for s in pools[axis][:k]:
                hits = lvlm_hits.get(s.index, 0)
                chosen.append(s.with_(meta={**s.meta, "lvlm_hits": hits, "n_lvlms": n_models,
                                            "difficulty": difficulty(hits, n_models)}))
    return chosen, summary


def _ordered(items: list[Sample], hits: Mapping[int, int], n: int, rng: random.Random) -> list[Sample]:
    shuffled = sorted(items, key=lambda s: s.index)
    rng.shuffle(shuffled)
    return sorted(shuffled, key=lambda s: HARDNESS[difficulty(hits.get(s.index, 0), n)])  # stable: keeps shuffle


def _spread(total: int, available: dict[str, int]) -> dict[str, int]:
    """Split ``total`` over axes as evenly as their supply allows (water-filling)."""
    take = dict.fromkeys(available, 0)
    remaining = total
    open_axes = [a for a in available if available[a] > 0]
    while remaining > 0 and open_axes:
        share = max(1, remaining // len(open_axes))
        for a in list(open_axes):
            k = min(share, available[a] - take[a], remaining)
            take[a] += k
            remaining -= k
            if take[a] >= available[a]:
                open_axes.remove(a)
            if remaining == 0:
                break
    return take


def as_benchmark(samples: list[Sample]) -> Benchmark:
    return Benchmark("candidates", samples)
