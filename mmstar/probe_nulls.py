"""The probes' null hypotheses and p-values, and Holm's correction over one run (pure numpy).

A probe used to fire when an interval cleared 0. That is no test: a clean model that prefers a
letter scores higher in MMStar's original order (its answers are B 447, A 429, D 315, C 309), a
clean model answers text-answerable samples with any image, and a masked option can be guessed.
Each rule here states what a model that never saw the test does, and gives the chance of the
observed figure under that (one-sided p; the short ``null`` name goes into ``scores.json``):

- ``order`` (null ``letter_bias``): hits depend on the sample and on the letter the answer stands
  at (logit-additive), not on whether the options are in their original order. Conditional on a
  sample's number of hits over its k rotations, the sample's own difficulty drops out and the set
  of hit letters has P(H) proportional to prod w_letter (every rotation puts the answer at each
  letter once), so the letter weights are fitted from the data and the original order's hits are
  compared with what they predict: the efficient score test of conditional logistic regression
  (Mantel-Haenszel-like, stratified by sample; the nuisance letters' estimation accounted for).
- ``swap`` (null ``backbone``): with another sample's image the model beats the chance of its own
  letter choices by no more than its LLM backbone beats the chance of its own letter choices on the
  same samples (text-answerable samples lift both sides); a paired z-test on the per-sample
  differences. Without a backbone run (null ``letter_chance``) only letter chance is subtracted.
- ``slots`` (null ``wv_vs_t`` / ``t_vs_wv``): without its image the model reproduces hidden option
  texts no more often than its backbone does on the same masks (what can be guessed, both can
  guess); an exact one-sided McNemar test. The backbone's side is the same test the other way.
- ``backbone`` (null ``wv_vs_t``): the backbone is right no more often than the LVLM without its
  image on the same samples (S_wv - S_t < 0 is evidence that the backbone knows the test); an exact
  one-sided McNemar test. S_t against the chance of its own letter choices is reported beside it
  (``p_chance``), not used: text-answerable samples lift it on a clean model.

``holm`` adjusts every figure of a ``probes`` block that carries a ``p`` (whatever the probe: a new
probe joins by emitting ``p`` and ``null``), and ``fires`` is ``p_adjusted < 0.05``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

ALPHA = 0.05
MAX_LETTERS = 10  # A..J


def _sf(z: float) -> float:
    """P(Z >= z) for a standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def binom_upper(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2): the exact one-sided McNemar p of k of n discordant pairs."""
    if n == 0 or k <= 0:
        return 1.0
    return min(1.0, sum(math.comb(n, j) for j in range(k, n + 1)) / 2 ** n)


def mcnemar_upper(a: Sequence[bool], b: Sequence[bool]) -> tuple[float, int, int]:
    """One-sided exact McNemar on paired outcomes: p of 'a right where b wrong' being at least as
    common as observed if both orders of discordance were equally likely; and the two counts."""
    a_only = int(sum(bool(x) and not bool(y) for x, y in zip(a, b)))
    b_only = int(sum(bool(y) and not bool(x) for x, y in zip(a, b)))
    return binom_upper(a_only, a_only + b_only), a_only, b_only


# ---------------------------------------------------------------------------------------------- order


def _esp(w: np.ndarray) -> np.ndarray:
    """Elementary symmetric polynomials e_0..e_k of the weights ``w`` (dynamic programme)."""
    e = np.zeros(len(w) + 1)
    e[0] = 1.0
    for x in w:
        e[1:] = e[1:] + x * e[:-1]
    return e


def _without(e: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Row i: the elementary symmetric polynomials of ``w`` without its i-th weight, from those of
    all of ``w`` (``e``), by e_j(w) = e_j(w \\ i) + w_i e_{j-1}(w \\ i)."""
    out = np.zeros((len(w), len(e) - 1))
    out[:, 0] = 1.0
    for j in range(1, len(e) - 1):
        out[:, j] = e[j] - w * out[:, j - 1]
    return out


def _inclusion(w: np.ndarray, m: int, pairs: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """For P(H) proportional to prod_{l in H} w_l over the size-m subsets H of the k letters: the
    probability that each letter is in H, and that each pair is (diagonal = the first)."""
    e = _esp(w)
    one = _without(e, w)  # (k, k): e_j(w without i)
    p1 = w * one[:, m - 1] / e[m]
    p2 = np.diag(p1)
    if pairs and m >= 2:
        k = len(w)
        for i in range(k):
            two = _without(one[i], np.delete(w, i))  # e_j(w without i and the other one)
            others = [j for j in range(k) if j != i]
            p2[i, others] = w[i] * w[others] * two[:, m - 2] / e[m]
    return p1, p2


def order_test(hit_rows: Sequence[Sequence[bool]], answer_pos: Sequence[int], iterations: int = 100
               ) -> dict[str, Any]:
    """The letter-adjusted test of the original order. ``hit_rows[s][r]``: the sample's hit with its
    options rotated r places (r = 0 the original, len = its option count k); ``answer_pos[s]``: the
    answer's letter position (0 = A) in the original order. Rotation r puts it at (a0 - r) mod k.

    Returns ``p`` (one-sided: more original-order hits than the letters predict), ``expected``
    (that prediction, as a percentage of the samples), ``observed`` and the fitted letter
    ``weights``. Samples right or wrong in every order carry no information and drop out."""
    groups: dict[tuple[int, int, int], int] = {}  # (k, m, a0) -> samples
    counts = np.zeros(MAX_LETTERS)  # hits per letter among informative samples
    observed = 0
    for row, a0 in zip(hit_rows, answer_pos):
        k, m = len(row), int(sum(bool(h) for h in row))
        if not 0 < m < k:
            continue
        groups[(k, m, a0)] = groups.get((k, m, a0), 0) + 1
        for r, h in enumerate(row):
            if h:
                counts[(a0 - r) % k] += 1
        observed += bool(row[0])
    n = len(hit_rows)
    if not groups:
        return {"p": 1.0, "expected": None, "observed": 100 * sum(bool(r[0]) for r in hit_rows) / max(n, 1),
                "informative": 0, "weights": []}
    k_max = max(k for k, _, _ in groups)
    sizes: dict[tuple[int, int], int] = {}  # the fit needs (k, m) only: the letter set's law ignores a0
    for (k, m, _a0), c in groups.items():
        sizes[(k, m)] = sizes.get((k, m), 0) + c
    beta = np.zeros(k_max)
    for _ in range(iterations):  # Newton on the conditional likelihood: expected letter counts meet observed
        w = np.exp(beta)
        grad, info = counts[:k_max].copy(), np.zeros((k_max, k_max))
        for (k, m), c in sizes.items():
            p1, p2 = _inclusion(w[:k], m)
            grad[:k] -= c * p1
            info[:k, :k] += c * (p2 - np.outer(p1, p1))
        if np.max(np.abs(grad)) < 1e-10 * max(1.0, float(counts.sum())):
            break
        step = np.clip(np.linalg.pinv(info) @ grad, -5, 5)  # one weight is free: pinv fixes the gauge
        beta = np.clip(beta + step - step.mean(), -30, 30)
    w = np.exp(beta)
    # score of the original-order indicator (gamma) and of the letters (beta), with their covariance
    e_gamma, v_gg = 0.0, 0.0
    v_gb, v_bb = np.zeros(k_max), np.zeros((k_max, k_max))
    for (k, m, a0), c in groups.items():
        p1, p2 = _inclusion(w[:k], m)
        cov = p2 - np.outer(p1, p1)
        e_gamma += c * p1[a0]
        v_gg += c * cov[a0, a0]
        v_gb[:k] += c * cov[a0]
        v_bb[:k, :k] += c * cov
    v_eff = v_gg - v_gb @ np.linalg.pinv(v_bb) @ v_gb
    informative = sum(groups.values())
    # under a thousandth of a sample's variance left once the letters are fitted: no information (a
    # degenerate fit, e.g. a letter never hit, would otherwise divide rounding error by rounding error)
    p = 1.0 if v_eff <= 1e-3 else _sf((observed - e_gamma) / math.sqrt(v_eff))
    decided = sum(bool(r[0]) for r in hit_rows) - observed  # right in every order: counted in both
    return {"p": p, "expected": float(100 * (e_gamma + decided) / n), "observed": 100 * (observed + decided) / n,
            "informative": informative, "weights": [float(x) for x in w / w.sum()]}


# ------------------------------------------------------------------------------------- swap, backbone


def letter_chance(choices: Sequence[str | None], answers: Sequence[str]) -> np.ndarray:
    """Per sample, the chance of a guesser that picks letters as often as this mode did (its own
    letter choices; an unread reply picks none): freq(answer letter)."""
    n = len(choices)
    freq: dict[str, float] = {}
    for c in choices:
        if c is not None:
            freq[c] = freq.get(c, 0.0) + 1.0 / n
    return np.array([freq.get(a, 0.0) for a in answers])


def excess_test(hits: Sequence[bool], choices: Sequence[str | None], answers: Sequence[str],
                base_hits: Sequence[bool] | None = None, base_choices: Sequence[str | None] | None = None
                ) -> dict[str, Any]:
    """One-sided paired z-test that this mode beats the chance of its own letter choices by more than
    the base mode (the backbone) beats its own, on the same samples; without a base, that it beats its
    own letter chance. Returns ``p``, ``letter_chance`` (%), ``base_excess`` (%) and ``null``."""
    h = np.asarray(hits, dtype=float)
    d = h - letter_chance(choices, answers)
    out: dict[str, Any] = {"letter_chance": float(100 * (h - d).mean()), "null": "letter_chance"}
    if base_hits is not None and base_choices is not None:
        hb = np.asarray(base_hits, dtype=float)
        base = hb - letter_chance(base_choices, answers)
        d = d - base
        out.update(null="backbone", base_excess=float(100 * base.mean()))
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    out["p"] = 1.0 if sd <= 1e-12 else _sf(float(d.mean()) / (sd / math.sqrt(len(d))))
    return out


# ------------------------------------------------------------------------------------------------ Holm


def holm(ps: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given."""
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    out = [1.0] * len(ps)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        out[i] = running
    return out


def figure_dicts(block: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    """Every figure of a ``probes`` block (``block[probe][mode]``) that carries a ``p``."""
    for per_mode in block.values():
        if isinstance(per_mode, Mapping):
            for fig in per_mode.values():
                if isinstance(fig, dict) and fig.get("p") is not None:
                    yield fig


def apply_holm(block: dict[str, Any], alpha: float = ALPHA) -> dict[str, Any]:
    """Set ``p_adjusted`` (Holm over every figure of the block with a ``p``) and ``fires`` on each,
    ``fires`` False on the figures without a ``p``, and the block's ``fired`` (the probes with a
    firing figure, in block order). Returns the block."""
    figs = list(figure_dicts(block))
    for fig, adjusted in zip(figs, holm([float(f["p"]) for f in figs])):
        fig["p_adjusted"] = adjusted
        fig["fires"] = adjusted < alpha
    fired = []
    for probe, per_mode in block.items():
        if not isinstance(per_mode, Mapping):
            continue
        for fig in per_mode.values():
            if isinstance(fig, dict):
                if fig.get("p") is None:
                    fig.setdefault("p", None)
                    fig["p_adjusted"], fig["fires"] = None, False
                if fig["fires"] and probe not in fired:
                    fired.append(probe)
    block["fired"] = fired
    return block
