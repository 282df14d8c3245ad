"""Accuracy from prediction records: micro (official: hits / n) and macro (mean over axes),
overall, per capability and per axis, under the official matcher or the robust extractor."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from .matching import extract_choice, official_match
from .options import OptionParseError, parse_question

MATCHERS = ("official", "robust")


def record_options(rec: Mapping[str, Any]) -> dict[str, str] | None:
    if isinstance(rec.get("options"), dict) and rec["options"]:
        return rec["options"]
    try:
        return parse_question(str(rec.get("question", ""))).options
    except OptionParseError:
        return None


def judge(rec: Mapping[str, Any]) -> tuple[bool, bool, str | None]:
    """(official hit, robust hit, robust choice) for one record; errors are misses."""
    if rec.get("error"):
        return False, False, None
    prediction = rec.get("prediction")
    prediction = "" if prediction is None else str(prediction)
    choice = extract_choice(prediction, record_options(rec))
    answer = str(rec.get("answer", "")).strip().upper()
    return official_match(prediction, rec.get("answer", "")), choice == answer, choice


def _pct(hits: int, n: int) -> float | None:
    return 100.0 * hits / n if n else None


def score_records(records: Iterable[Mapping[str, Any]], matcher: str = "official") -> dict[str, Any]:
    """The score summary of ``mmstar score --json`` and of ``scores.json`` per mode."""
    if matcher not in MATCHERS:
        raise ValueError(f"unknown matcher {matcher!r}; choose from {', '.join(MATCHERS)}")
    n = hits = unparsed = errors = 0
    cats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    axes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for rec in records:
        hit_official, hit_robust, choice = judge(rec)
        hit = hit_official if matcher == "official" else hit_robust
        n += 1
        hits += hit
        errors += bool(rec.get("error"))
        unparsed += choice is None and not rec.get("error")
        for table, key in ((cats, rec.get("category", "")), (axes, rec.get("l2_category", ""))):
            if key:
                table[key][0] += hit
                table[key][1] += 1
    axis_scores = {k: _pct(h, m) for k, (h, m) in sorted(axes.items())}
    cat_scores = {k: _pct(h, m) for k, (h, m) in sorted(cats.items())}
    per_group = [v for v in axis_scores.values() if v is not None] or [
        v for v in cat_scores.values() if v is not None
    ]
    macro = sum(per_group) / len(per_group) if per_group else _pct(hits, n)
    return {
        "matcher": matcher,
        "overall": _pct(hits, n),
        "macro": macro,
        "n": n,
        "hits": hits,
        "unparsed": unparsed,
        "errors": errors,
        "categories": cat_scores,
        "l2_categories": axis_scores,
        "category_counts": {k: m for k, (_h, m) in sorted(cats.items())},
        "l2_category_counts": {k: m for k, (_h, m) in sorted(axes.items())},
    }


def gain_and_leakage(s_v: float | None, s_wv: float | None, s_t: float | None) -> tuple[float | None, float | None]:
    """MG = S_v - S_wv; ML = max(0, S_wv - S_t) (percentage points; None where a mode is missing)."""
    mg = s_v - s_wv if s_v is not None and s_wv is not None else None
    ml = max(0.0, s_wv - s_t) if s_wv is not None and s_t is not None else None
    return mg, ml
