"""Accuracy from prediction records: micro (official: hits / n) and macro (mean over axes),
overall, per capability and per axis, under the official matcher or the robust extractor.

Beside them: how many replies each extraction rule decided, and, when an LLM judge has looked at
the records (``judge_choice``), the robust+judge figure: the extractor's letter where it has one,
the judge's where the extractor left the reply unparsed. The judge never overrides the extractor."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from .matching import Extraction, extract_answer, official_match
from .options import OptionParseError, parse_question

MATCHERS = ("official", "robust")


def record_options(rec: Mapping[str, Any]) -> dict[str, str] | None:
    if isinstance(rec.get("options"), dict) and rec["options"]:
        return rec["options"]
    try:
        return parse_question(str(rec.get("question", ""))).options
    except OptionParseError:
        return None


def assess(rec: Mapping[str, Any]) -> tuple[bool, bool, Extraction]:
    """(official hit, robust hit, the extraction) for one record; errors are misses."""
    if rec.get("error"):
        return False, False, Extraction(None, "error")
    prediction = rec.get("prediction")
    prediction = "" if prediction is None else str(prediction)
    extraction = extract_answer(prediction, record_options(rec))
    answer = str(rec.get("answer", "")).strip().upper()
    return official_match(prediction, rec.get("answer", "")), extraction.choice == answer, extraction


def judge(rec: Mapping[str, Any]) -> tuple[bool, bool, str | None]:
    """(official hit, robust hit, robust choice) for one record; errors are misses."""
    official, robust, extraction = assess(rec)
    return official, robust, extraction.choice


def judged(records: Iterable[Mapping[str, Any]]) -> bool:
    """Whether an LLM judge has looked at any of these records."""
    return any("judge_choice" in r for r in records)


def _pct(hits: int, n: int) -> float | None:
    return 100.0 * hits / n if n else None


def _accuracy(rows: list[tuple[Mapping[str, Any], bool]]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Hits, per-capability and per-axis [hits, n] tables of (record, hit) rows."""
    hits = 0
    cats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    axes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for rec, hit in rows:
        hits += hit
        for table, key in ((cats, rec.get("category", "")), (axes, rec.get("l2_category", ""))):
            if key:
                table[key][0] += hit
                table[key][1] += 1
    return hits, cats, axes


def _macro(hits: int, n: int, cat_scores: dict[str, Any], axis_scores: dict[str, Any]) -> float | None:
    per_group = [v for v in axis_scores.values() if v is not None] or [
        v for v in cat_scores.values() if v is not None
    ]
    return sum(per_group) / len(per_group) if per_group else _pct(hits, n)


def score_records(records: Iterable[Mapping[str, Any]], matcher: str = "official",
                  with_judge: bool | None = None) -> dict[str, Any]:
    """The score summary of ``mmstar score --json`` and of ``scores.json`` per mode. The judge's
    figures are added when a judge has looked at the records (``with_judge`` None) or when asked
    (a judged run whose replies all parsed: robust+judge = robust, 0 decided)."""
    if matcher not in MATCHERS:
        raise ValueError(f"unknown matcher {matcher!r}; choose from {', '.join(MATCHERS)}")
    records = list(records)
    assessed = [(rec, *assess(rec)) for rec in records]
    rows = [(rec, official if matcher == "official" else robust) for rec, official, robust, _x in assessed]
    n = len(rows)
    hits, cats, axes = _accuracy(rows)
    axis_scores = {k: _pct(h, m) for k, (h, m) in sorted(axes.items())}
    cat_scores = {k: _pct(h, m) for k, (h, m) in sorted(cats.items())}
    summary = {
        "matcher": matcher,
        "overall": _pct(hits, n),
        "macro": _macro(hits, n, cat_scores, axis_scores),
        "n": n,
        "hits": hits,
        "unparsed": sum(x.choice is None and not rec.get("error") for rec, _o, _r, x in assessed),
        "errors": sum(bool(rec.get("error")) for rec in records),
        "categories": cat_scores,
        "l2_categories": axis_scores,
        "category_counts": {k: m for k, (_h, m) in sorted(cats.items())},
        "l2_category_counts": {k: m for k, (_h, m) in sorted(axes.items())},
        "rules": dict(sorted(Counter(x.rule for _rec, _o, _r, x in assessed).items())),
    }
    if with_judge or (with_judge is None and judged(records)):
        summary.update(judge_summary(assessed))
    return summary


def _with_judge(rec: Mapping[str, Any], extraction: Extraction) -> str | None:
    """The robust+judge letter: the extractor's, else the judge's."""
    return extraction.choice if extraction.choice is not None else rec.get("judge_choice")


def judge_summary(assessed: list[tuple[Mapping[str, Any], bool, bool, Extraction]]) -> dict[str, Any]:
    """robust+judge figures and the judge's counts (only for records a judge has looked at)."""
    def hit(rec: Mapping[str, Any], x: Extraction) -> bool:
        return not rec.get("error") and _with_judge(rec, x) == str(rec.get("answer", "")).strip().upper()

    rows = [(rec, hit(rec, x)) for rec, _o, _r, x in assessed]
    hits, cats, axes = _accuracy(rows)
    axis_scores = {k: _pct(h, m) for k, (h, m) in sorted(axes.items())}
    cat_scores = {k: _pct(h, m) for k, (h, m) in sorted(cats.items())}
    seen = [(rec, x) for rec, _o, _r, x in assessed if "judge_choice" in rec]
    both = [(rec, x) for rec, x in seen if x.choice is not None and rec.get("judge_choice") is not None]
    return {
        "robust_judge_overall": _pct(hits, len(rows)),
        "robust_judge_macro": _macro(hits, len(rows), cat_scores, axis_scores),
        "robust_judge_categories": cat_scores,
        "judge_seen": len(seen),
        "judge_decided": sum(x.choice is None and rec.get("judge_choice") is not None for rec, x in seen),
        "judge_no_option": sum(rec.get("judge_choice") is None for rec, _x in seen),
        "judge_agreement": ({"n": len(both), "agree": sum(rec["judge_choice"] == x.choice for rec, x in both)}
                            if both else None),
    }


def gain_and_leakage(s_v: float | None, s_wv: float | None, s_t: float | None) -> tuple[float | None, float | None]:
    """MG = S_v - S_wv; ML = max(0, S_wv - S_t) (percentage points; None where a mode is missing)."""
    mg = s_v - s_wv if s_v is not None and s_wv is not None else None
    ml = max(0.0, s_wv - s_t) if s_wv is not None and s_t is not None else None
    return mg, ml
