"""The viewer's data layer (pure pandas; no streamlit, no matplotlib): run directories -> one table of
samples per run with every mode's prediction judged three ways, and leaderboard rows with bootstrap
intervals. Per-sample views (flags, filters, diff, chart data) are in ``samples``. The app and the
HTML report both read from here.

Runs are read by ``mmstar.runs.open_run`` (leniently: what cannot be read is a problem line) and
scored by the one scoring function, ``mmstar.scoring.score_records``, through the run's cached
summaries; the leaderboard rows are ``mmstar.metrics.leaderboard.run_row``'s, so they equal the
leaderboard's by construction. ``scores.json`` is only checked for presence: a missing one marks an
unfinished run. One ``Assessor`` is shared by every run loaded together: a reply seen before is not
judged again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from mmstar.metrics.leaderboard import average_rows, run_row
from mmstar.viewer.probes import flag_frame

from mmstar import taxonomy
from mmstar.records import PredictionRecord
from mmstar.runs import MODES, Run, find_run_dirs, open_run
from mmstar.scoring import Assessment, Assessor, hit_of, record_options


def load_run(path: Path, assessor: Assessor | None = None) -> tuple[Run | None, list[str]]:
    """One run directory as the leaderboard reads it, plus one line per problem found on the way.
    A mode file that cannot be read is skipped (and said so); the run is kept if any mode is left."""
    run = open_run(path, strict=False, assessor=assessor)
    problems = list(run.problems)
    if not run.records:
        problems.append(f"{path}: no readable v.jsonl, wv.jsonl or t.jsonl; run not shown")
        return None, problems
    problems.extend(_completeness(run))
    return run, problems


def _completeness(run: Run) -> list[str]:
    problems = []
    missing = [f"{m}.jsonl" for m in MODES if m not in run.records]
    if missing:
        problems.append(f"{run.path}: no {', '.join(missing)} (scores of that mode, MG or ML not available)")
    counts = {m: len(r) for m, r in run.records.items()}
    expected = run.manifest.n_samples or max(counts.values())
    short = [f"{m} {c}/{expected}" for m, c in counts.items() if c < expected]
    if short:
        problems.append(f"{run.path}: incomplete: {', '.join(short)} predictions (half-written run?)")
    if not (run.path / "scores.json").exists():
        problems.append(f"{run.path}: no scores.json (run not finished?); scores computed from the prediction files")
    first = next(iter(run.records.values()))  # every mode holds the same samples' labels
    pairs = [(r.category, r.l2_category) for r in first]
    if not taxonomy.looks_like_mmstar(pairs):
        n_cats = len({c for c, _ in pairs if c})
        problems.append(f"{run.path}: benchmark {run.benchmark!r} is not in the MMStar taxonomy ({n_cats} categories "
                        "of its own): shown by its own categories, without the 6-capability / 18-axis columns")
    return problems


def _options_text(rec: PredictionRecord) -> str:
    options = record_options(rec)
    return "\n".join(f"{k}: {v}" for k, v in options.items()) if options else ""


def _sample_row(key: str, rec: PredictionRecord) -> dict[str, Any]:
    return {"run": key, "index": rec.index, "question": rec.question, "options": _options_text(rec),
            "answer": rec.answer_letter, "category": rec.category, "l2_category": rec.l2_category,
            "source": rec.source}


MODE_COLUMNS = ("pred", "choice", "official", "robust", "judge", "judged", "judge_reply", "rule", "error", "unparsed")
_NAMES = {m: {c: f"{m}_{c}" for c in MODE_COLUMNS} for m in MODES}  # built once: 45,000 rows use them


def _mode_fields(mode: str, rec: PredictionRecord, assessment: Assessment) -> dict[str, Any]:
    official, robust, extraction = assessment
    choice = extraction.choice
    n = _NAMES[mode]
    return {n["pred"]: rec.prediction, n["choice"]: choice, n["official"]: official, n["robust"]: robust,
            n["judge"]: hit_of(rec, assessment, "robust_judge"), n["judged"]: rec.judge_choice is not None,
            n["judge_reply"]: rec.judge, n["rule"]: rec.extract_rule, n["error"]: rec.error,
            n["unparsed"]: choice is None and not rec.error}


def run_frame(key: str, run: Run) -> pd.DataFrame:
    """One row per sample index of a run: the sample's text and labels, and per mode its prediction,
    robust choice, hit under each matcher (``judge``: robust+judge, as the scores count it), error and
    unparsed flag (NaN where the mode lacks it). Rows keep the file order of the first mode present."""
    rows: dict[int, dict[str, Any]] = {}
    for mode in MODES:
        for rec, assessment in zip(run.records.get(mode) or [], run.assessments(mode)):
            row = rows.get(rec.index)
            if row is None:
                row = rows[rec.index] = _sample_row(key, rec)
            row.update(_mode_fields(mode, rec, assessment))
    columns = ["run", "index", "question", "options", "answer", "category", "l2_category", "source",
               *(f"{m}_{c}" for m in MODES for c in MODE_COLUMNS)]
    frame = pd.DataFrame(list(rows.values()), columns=columns)
    # the leakage probes' per-sample flags (NA where a probe did not run)
    return pd.concat([frame, flag_frame(run, frame["index"].tolist())], axis=1)


# the viewer's matcher names -> mmstar.scoring's scorings ("judge": the extractor's letter, else the judge's)
SCORING = {"official": "official", "robust": "robust", "judge": "robust_judge"}


@dataclass
class ViewRun:
    key: str  # unique display label: "model / benchmark"
    run: Run
    frame: pd.DataFrame
    mmstar_taxonomy: bool

    @property
    def model(self) -> str:
        return self.run.model

    @property
    def benchmark(self) -> str:
        return self.run.benchmark

    @property
    def modes(self) -> tuple[str, ...]:
        return self.run.modes


@dataclass
class ViewData:
    runs: list[ViewRun]
    problems: list[str]
    seed: int = 0
    _rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    _probes: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def has_judge(self) -> bool:
        """Whether any record carries a judge decision (then the judge matcher is offered)."""
        return any(vr.frame[[f"{m}_judged" for m in vr.modes]].eq(True).any(axis=None) for vr in self.runs)

    @property
    def matchers(self) -> tuple[str, ...]:
        return ("official", "robust", "judge") if self.has_judge else ("official", "robust")

    def run(self, key: str) -> ViewRun:
        for vr in self.runs:
            if vr.key == key:
                return vr
        raise KeyError(key)

    def benchmarks(self) -> list[str]:
        return list(dict.fromkeys(vr.benchmark for vr in self.runs))

    def summary(self, key: str, mode: str, matcher: str) -> dict[str, Any] | None:
        """``mmstar.scoring.score_records`` of one run's mode under the viewer's ``matcher``."""
        return self.run(key).run.summary(mode, SCORING[matcher])

    def leaderboard(self, matcher: str = "official") -> list[dict[str, Any]]:
        """Rows in the leaderboard CSV's columns (plus ``run`` and ``judged_v``), one per run, and an
        ``average`` row per model evaluated on several benchmarks."""
        if matcher not in self._rows:
            rows = [self._row(vr, matcher) for vr in self.runs]
            self._rows[matcher] = rows + average_rows(rows)
        return self._rows[matcher]

    def probes(self, key: str, matcher: str = "official") -> dict[str, Any] | None:
        """The run's ``probes`` block (as ``scores.json`` holds it) under ``matcher``; None when no
        probe ran."""
        run = self.run(key).run
        if not run.probe_records:
            return None
        cache_key = f"{key}\x1f{matcher}"
        if cache_key not in self._probes:
            from mmstar.probes import probe_block

            self._probes[cache_key] = probe_block(run, SCORING[matcher], self.seed)
        return self._probes[cache_key]

    def _row(self, vr: ViewRun, matcher: str) -> dict[str, Any]:
        """The leaderboard's own row (``run_row``), labelled with the viewer's matcher name and run key;
        ``judged_v``: how many v replies the judge decided (robust+judge only)."""
        row = run_row(vr.run, SCORING[matcher], self.seed)
        row.update(matcher=matcher, run=vr.key, judged_v=row["judge_decided_v"])
        return row


def _unique_key(run: Run, taken: set[str]) -> str:
    key = f"{run.model} / {run.benchmark}"
    if key in taken:  # the same model and benchmark from two output folders
        key = f"{key} ({run.path.parent.parent.name})"
    n = 2
    base = key
    while key in taken:
        key, n = f"{base} #{n}", n + 1
    taken.add(key)
    return key


def load(paths: Iterable[str | Path], seed: int = 0) -> ViewData:
    """Everything the viewer shows, from the given run directories (or folders above them); every
    problem is one line in ``problems`` and the rest is still loaded."""
    dirs, problems = find_run_dirs(paths)
    runs: list[ViewRun] = []
    taken: set[str] = set()
    assessor = Assessor()
    for path in dirs:
        run, found = load_run(path, assessor)
        problems.extend(found)
        if run is None:
            continue
        key = _unique_key(run, taken)
        frame = run_frame(key, run)
        pairs = zip(frame["category"], frame["l2_category"])
        runs.append(ViewRun(key, run, frame, taxonomy.looks_like_mmstar(pairs)))
    return ViewData(runs, problems, seed)
