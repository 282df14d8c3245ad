"""Accuracy from prediction records: micro (official: hits / n) and macro (mean over axes),
overall, per capability and per axis, under the official matcher or the robust extractor.

Beside them: how many replies each extraction rule decided, and, when an LLM judge has looked at
the records (``judge_choice``), the robust+judge figure: the extractor's letter where it has one,
the judge's where the extractor left the reply unparsed. The judge never overrides the extractor."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from .matching import Extraction, extract_answer, official_match, official_readable
from .options import OptionParseError, parse_question
from .records import PredictionRecord, as_record

MATCHERS = ("official", "robust")
# what a summary can score by: the two matchers, and robust+judge (the extractor's letter, else the
# judge's): the viewer's "judge" matcher, scores.json's robust_judge figures
SCORINGS = (*MATCHERS, "robust_judge")
Record = PredictionRecord | Mapping[str, Any]  # mappings are typed on the way in (as_record)


class Assessment(NamedTuple):
    """One record judged: official hit, robust hit, and what the robust extractor decided."""

    official: bool
    robust: bool
    extraction: Extraction


_ERROR = Assessment(False, False, Extraction(None, "error"))


def record_options(rec: Record) -> dict[str, str] | None:
    rec = as_record(rec)
    if rec.options:
        return rec.options
    try:
        return parse_question(rec.question).options
    except OptionParseError:
        return None


def assess(rec: Record) -> Assessment:
    """(official hit, robust hit, the extraction) for one record; errors are misses."""
    rec = as_record(rec)
    if rec.error:
        return _ERROR
    # a reply cut by the token budget is read for explicit commitments only (see matching)
    extraction = extract_answer(rec.prediction, record_options(rec), finish_reason=rec.finish_reason)
    return Assessment(official_match(rec.prediction, rec.answer), extraction.choice == rec.answer_letter, extraction)


class Assessor:
    """``assess`` memoised on what it reads: the same reply to the same question is judged once
    (replies such as "A" repeat thousands of times across models and modes). Share one between the
    runs a process reads together."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], Assessment] = {}

    def __call__(self, rec: PredictionRecord) -> Assessment:
        if rec.error:
            return _ERROR
        options = rec.options
        key = (rec.prediction, rec.answer, tuple(options.items()) if options else ("?", rec.question),
               rec.finish_reason)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = assess(rec)
        return found


def judge(rec: Record) -> tuple[bool, bool, str | None]:
    """(official hit, robust hit, robust choice) for one record; errors are misses."""
    official, robust, extraction = assess(rec)
    return official, robust, extraction.choice


def judged(records: Iterable[PredictionRecord]) -> bool:
    """Whether an LLM judge has looked at any of these records."""
    return any(r.judge_seen for r in records)


def graded(rec: PredictionRecord) -> PredictionRecord:
    """Fill what the writer's extractor decided (``choice``, ``hit``, ``hit_official``,
    ``extract_rule``, ``reasoning``) into a new record, in place; returns it."""
    official, robust, x = assess(rec)
    rec.choice, rec.hit, rec.hit_official, rec.extract_rule = x.choice, robust, official, x.rule
    if x.reasoning is not None:  # the thinking text, kept apart; never matched
        rec.reasoning = x.reasoning
    return rec


def hit_of(rec: PredictionRecord, assessment: Assessment, scoring: str) -> bool:
    """The record's hit under ``scoring`` (one of SCORINGS). robust+judge: the extractor's letter
    where it has one, the judge's where it left the reply unparsed; the judge never overrides it."""
    if scoring == "official":
        return assessment.official
    if scoring == "robust":
        return assessment.robust
    choice = assessment.extraction.choice
    return not rec.error and (choice if choice is not None else rec.judge_choice) == rec.answer_letter


def hit_table(records: Sequence[PredictionRecord], scoring: str,
              assessments: Sequence[Assessment] | None = None) -> dict[int, bool]:
    """index -> hit under ``scoring`` (re-judged from the prediction text)."""
    assessments = assessments if assessments is not None else [assess(r) for r in records]
    return {r.index: hit_of(r, a, scoring) for r, a in zip(records, assessments)}


def _pct(hits: int, n: int) -> float | None:
    return 100.0 * hits / n if n else None


def _accuracy(records: Sequence[PredictionRecord], hit: Sequence[bool]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Hits, per-capability and per-axis [hits, n] tables."""
    hits = 0
    cats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    axes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for rec, h in zip(records, hit):
        hits += h
        for table, key in ((cats, rec.category), (axes, rec.l2_category)):
            if key:
                table[key][0] += h
                table[key][1] += 1
    return hits, cats, axes


def _macro(hits: int, n: int, cat_scores: dict[str, Any], axis_scores: dict[str, Any]) -> float | None:
    per_group = [v for v in axis_scores.values() if v is not None] or [
        v for v in cat_scores.values() if v is not None
    ]
    return sum(per_group) / len(per_group) if per_group else _pct(hits, n)


def score_records(records: Iterable[Record], matcher: str = "official", with_judge: bool | None = None, *,
                  assessments: Sequence[Assessment] | None = None) -> dict[str, Any]:
    """The score summary of ``mmstar score --json``, of ``scores.json`` per mode, of the leaderboard
    and of the viewer: the one scoring function. ``matcher`` is one of SCORINGS. The judge's figures
    are added when a judge has looked at the records (``with_judge`` None), when asked (a judged run
    whose replies all parsed: robust+judge = robust, 0 decided), and always under robust_judge.
    ``assessments``: ``assess`` of each record, when the caller has them already (a Run caches them)."""
    if matcher not in SCORINGS:
        raise ValueError(f"unknown matcher {matcher!r}; choose from {', '.join(SCORINGS)}")
    records = [as_record(r, i) for i, r in enumerate(records, start=1)]
    if assessments is None:
        assessments = [assess(r) for r in records]
    elif len(assessments) != len(records):
        raise ValueError(f"{len(assessments)} assessments for {len(records)} records")
    n = len(records)
    hits, cats, axes = _accuracy(records, [hit_of(r, a, matcher) for r, a in zip(records, assessments)])
    axis_scores = {k: _pct(h, m) for k, (h, m) in sorted(axes.items())}
    cat_scores = {k: _pct(h, m) for k, (h, m) in sorted(cats.items())}
    summary = {
        "matcher": matcher,
        "overall": _pct(hits, n),
        "macro": _macro(hits, n, cat_scores, axis_scores),
        "n": n,
        "hits": hits,
        "unparsed": sum(a.extraction.choice is None and not r.error for r, a in zip(records, assessments)),
        "errors": sum(bool(r.error) for r in records),
        "categories": cat_scores,
        "l2_categories": axis_scores,
        "category_counts": {k: m for k, (_h, m) in sorted(cats.items())},
        "l2_category_counts": {k: m for k, (_h, m) in sorted(axes.items())},
        "rules": dict(sorted(Counter(a.extraction.rule for a in assessments).items())),
        "format_compliance": format_compliance(records),
    }
    if matcher == "robust_judge" or with_judge or (with_judge is None and judged(records)):
        summary.update(judge_summary(records, assessments))
    return summary


_DEFAULT_LETTERS = "ABCD"


def format_compliance(records: Sequence[PredictionRecord]) -> float | None:
    """The share (%) of replies the official matcher can read (``official_readable``): a letter of the
    record's options (A-D and the answer where the options are unknown) where the official rule looks.
    Failed requests are no reply and are left out; None when no reply was given."""
    replies = [r for r in records if not r.error]
    if not replies:
        return None
    readable = 0
    for rec in replies:
        options = record_options(rec)
        letters = options.keys() if options else {*_DEFAULT_LETTERS, rec.answer_letter}
        readable += official_readable(rec.prediction, letters)
    return 100.0 * readable / len(replies)


def judge_summary(records: Sequence[PredictionRecord], assessments: Sequence[Assessment]) -> dict[str, Any]:
    """robust+judge figures and the judge's counts (only for records a judge has looked at)."""
    hits, cats, axes = _accuracy(records, [hit_of(r, a, "robust_judge") for r, a in zip(records, assessments)])
    axis_scores = {k: _pct(h, m) for k, (h, m) in sorted(axes.items())}
    cat_scores = {k: _pct(h, m) for k, (h, m) in sorted(cats.items())}
    seen = [(rec, a.extraction) for rec, a in zip(records, assessments) if rec.judge_seen]
    both = [(rec, x) for rec, x in seen if x.choice is not None and rec.judge_choice is not None]
    return {
        "robust_judge_overall": _pct(hits, len(records)),
        "robust_judge_macro": _macro(hits, len(records), cat_scores, axis_scores),
        "robust_judge_categories": cat_scores,
        "judge_seen": len(seen),
        "judge_decided": sum(x.choice is None and rec.judge_choice is not None for rec, x in seen),
        "judge_no_option": sum(rec.judge_choice is None for rec, _x in seen),
        "judge_agreement": ({"n": len(both), "agree": sum(rec.judge_choice == x.choice for rec, x in both)}
                            if both else None),
    }


def gain_and_leakage(s_v: float | None, s_wv: float | None, s_t: float | None) -> tuple[float | None, float | None]:
    """MG = S_v - S_wv; ML = max(0, S_wv - S_t) (percentage points; None where a mode is missing)."""
    mg = s_v - s_wv if s_v is not None and s_wv is not None else None
    ml = max(0.0, s_wv - s_t) if s_wv is not None and s_t is not None else None
    return mg, ml
