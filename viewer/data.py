"""The viewer's data layer (pure pandas; no streamlit, no matplotlib): run directories -> one table of
samples per run with every mode's prediction judged three ways, and leaderboard rows with bootstrap
intervals. Per-sample views (flags, filters, diff, chart data) are in ``samples``. The app and the
HTML report both read from here.

Scores are recomputed from the prediction files, as the leaderboard does (``scores.json`` is only
checked for presence: a missing one marks an unfinished run). The rows match
``mmstar.metrics.leaderboard.build_rows`` figure for figure; the tests hold them to that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from mmstar.metrics.leaderboard import COLUMNS, average_rows, intervals, run_labels
from mmstar.metrics.runs import Run

from mmstar import taxonomy
from mmstar.errors import DataError
from mmstar.predictions import check_unique, read_jsonl_predictions
from mmstar.runs import MODES, prediction_path, read_manifest
from mmstar.scoring import gain_and_leakage, judge, record_options

_SKIP_DIRS = ("_", ".")  # the demo's tiny-checkpoint folder, hidden folders
_SEARCH_DEPTH = 3  # <out>/runs/<model>/<benchmark> from <out>


def _is_run_dir(path: Path) -> bool:
    return any(prediction_path(path, m).exists() for m in MODES) or (path / "manifest.json").exists()


def _search(root: Path, depth: int) -> list[Path]:
    found = []
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(_SKIP_DIRS))
    except OSError:
        return found
    for child in children:
        if _is_run_dir(child):
            found.append(child)
        elif depth > 1:
            found.extend(_search(child, depth - 1))
    return found


def find_run_dirs(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Run directories named by ``paths`` (a run directory itself, or a folder above runs);
    one problem line per path that holds none."""
    found: list[Path] = []
    seen: set[Path] = set()
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            problems.append(f"{path}: {'not a folder' if path.exists() else 'no such folder'}")
            continue
        dirs = [path] if _is_run_dir(path) else _search(path, _SEARCH_DEPTH)
        if not dirs:
            problems.append(f"{path}: no runs found (no <model>/<benchmark>/ folder with v.jsonl, wv.jsonl or t.jsonl)")
        for d in dirs:
            if d.resolve() not in seen:
                seen.add(d.resolve())
                found.append(d)
    return found, problems


def _torn_tail(path: Path) -> bool:
    """Whether the file ends in an unterminated line (a run killed mid-write)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            return False
        fh.seek(size - 1)
        return fh.read(1) != b"\n"


def load_run(path: Path) -> tuple[Run | None, list[str]]:
    """One run directory as the leaderboard reads it, plus one line per problem found on the way.
    A mode file that cannot be read is skipped (and said so); the run is kept if any mode is left."""
    problems: list[str] = []
    try:
        manifest = read_manifest(path) or {}
    except DataError as exc:
        problems.append(f"{exc}; run shown without it")
        manifest = {}
    records: dict[str, list[dict[str, Any]]] = {}
    for mode in MODES:
        file = prediction_path(path, mode)
        if not file.exists():
            continue
        if _torn_tail(file):
            problems.append(f"{file}: torn last line ignored (run interrupted?)")
        try:
            records[mode] = check_unique(read_jsonl_predictions(file, warn=False), file)
        except DataError as exc:
            problems.append(f"{exc}; {mode} not shown")
    if not records:
        problems.append(f"{path}: no readable v.jsonl, wv.jsonl or t.jsonl; run not shown")
        return None, problems
    run = Run(path, str(manifest.get("model_label") or path.parent.name), str(manifest.get("benchmark") or path.name),
              manifest, records)
    problems.extend(_completeness(run))
    return run, problems


def _completeness(run: Run) -> list[str]:
    problems = []
    missing = [f"{m}.jsonl" for m in MODES if m not in run.records]
    if missing:
        problems.append(f"{run.path}: no {', '.join(missing)} (scores of that mode, MG or ML not available)")
    counts = {m: len(r) for m, r in run.records.items()}
    expected = run.manifest.get("n_samples") or max(counts.values())
    short = [f"{m} {c}/{expected}" for m, c in counts.items() if c < expected]
    if short:
        problems.append(f"{run.path}: incomplete: {', '.join(short)} predictions (half-written run?)")
    if not (run.path / "scores.json").exists():
        problems.append(f"{run.path}: no scores.json (run not finished?); scores computed from the prediction files")
    first = next(iter(run.records.values()))  # every mode holds the same samples' labels
    pairs = [(r.get("category") or "", r.get("l2_category") or "") for r in first]
    if not taxonomy.looks_like_mmstar(pairs):
        n_cats = len({c for c, _ in pairs if c})
        problems.append(f"{run.path}: benchmark {run.benchmark!r} is not in the MMStar taxonomy ({n_cats} categories "
                        "of its own): shown by its own categories, without the 6-capability / 18-axis columns")
    return problems


class _Judge:
    """``mmstar.scoring.judge`` memoised on what it reads: the same reply to the same question is
    judged once (replies such as "A" repeat thousands of times across models and modes)."""

    def __init__(self) -> None:
        self._cache: dict[tuple, tuple[bool, bool, str | None]] = {}

    def __call__(self, rec: Mapping[str, Any]) -> tuple[bool, bool, str | None]:
        if rec.get("error"):
            return False, False, None  # as judge() has it: an error is a miss, never parsed
        options = rec.get("options")
        opts_key = tuple(options.items()) if isinstance(options, dict) and options else ("?", rec.get("question"))
        key = (rec.get("prediction"), rec.get("answer"), opts_key)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = judge(rec)
        return found


def _options_text(rec: Mapping[str, Any]) -> str:
    options = record_options(rec)
    return "\n".join(f"{k}: {v}" for k, v in options.items()) if options else ""


def _sample_row(key: str, rec: Mapping[str, Any]) -> dict[str, Any]:
    return {"run": key, "index": rec["index"], "question": rec.get("question") or "", "options": _options_text(rec),
            "answer": str(rec.get("answer", "")).strip().upper(), "category": rec.get("category") or "",
            "l2_category": rec.get("l2_category") or "", "source": rec.get("source") or ""}


MODE_COLUMNS = ("pred", "choice", "official", "robust", "judge", "judged", "judge_reply", "rule", "error", "unparsed")
_NAMES = {m: {c: f"{m}_{c}" for c in MODE_COLUMNS} for m in MODES}  # built once: 45,000 rows use them


def _mode_fields(mode: str, rec: Mapping[str, Any], judged: tuple[bool, bool, str | None],
                 answer: str) -> dict[str, Any]:
    official, robust, choice = judged
    error = rec.get("error") or None
    judge_choice = rec.get("judge_choice")
    # the judge decides only where it was asked; elsewhere the robust extractor's letter stands
    final = None if error else (judge_choice if judge_choice is not None else choice)
    n = _NAMES[mode]
    return {n["pred"]: rec["prediction"], n["choice"]: choice, n["official"]: official, n["robust"]: robust,
            n["judge"]: final is not None and str(final).upper() == answer, n["judged"]: judge_choice is not None,
            n["judge_reply"]: rec.get("judge"), n["rule"]: rec.get("extract_rule"), n["error"]: error,
            n["unparsed"]: choice is None and not error}


def run_frame(key: str, run: Run, judged: _Judge | None = None) -> pd.DataFrame:
    """One row per sample index of a run: the sample's text and labels, and per mode its prediction,
    robust choice, hit under each matcher, error and unparsed flag (NaN where the mode lacks it).
    Rows keep the file order of the first mode present (the bootstrap over v depends on it)."""
    judged = judged or _Judge()
    rows: dict[int, dict[str, Any]] = {}
    for mode in MODES:
        for rec in run.records.get(mode) or []:
            row = rows.get(rec["index"])
            if row is None:
                row = rows[rec["index"]] = _sample_row(key, rec)
            row.update(_mode_fields(mode, rec, judged(rec), row["answer"]))
    columns = ["run", "index", "question", "options", "answer", "category", "l2_category", "source",
               *(f"{m}_{c}" for m in MODES for c in MODE_COLUMNS)]
    return pd.DataFrame(list(rows.values()), columns=columns)


def _pct(hits: pd.Series) -> float | None:
    return 100.0 * float(hits.mean()) if len(hits) else None


def mode_summary(frame: pd.DataFrame, mode: str, matcher: str) -> dict[str, Any] | None:
    """What ``mmstar.scoring.score_records`` gives for one mode, from the judged table."""
    sub = frame[frame[f"{mode}_pred"].notna()]
    if sub.empty:
        return None
    hits = sub[f"{mode}_{matcher}"].astype(bool)
    cats = {k: 100.0 * v for k, v in hits[sub["category"] != ""].groupby(sub["category"]).mean().items()}
    axes = {k: 100.0 * v for k, v in hits[sub["l2_category"] != ""].groupby(sub["l2_category"]).mean().items()}
    per_group = list(axes.values()) or list(cats.values())
    return {"matcher": matcher, "overall": _pct(hits), "macro": sum(per_group) / len(per_group) if per_group
            else _pct(hits), "n": len(sub), "hits": int(hits.sum()), "unparsed": int(sub[f"{mode}_unparsed"].sum()),
            "judged": int(sub[f"{mode}_judged"].sum()), "categories": dict(sorted(cats.items())),
            "l2_categories": dict(sorted(axes.items()))}


def _hits(frame: pd.DataFrame, mode: str, matcher: str) -> dict[Any, bool]:
    sub = frame[frame[f"{mode}_pred"].notna()]
    return dict(zip(sub["index"].tolist(), sub[f"{mode}_{matcher}"].astype(bool).tolist()))


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def _intervals(frame: pd.DataFrame, modes: Sequence[str], matcher: str, seed: int) -> dict[str, Any]:
    """The leaderboard's bootstrap intervals (same function, same seed, same sample order)."""
    return intervals(*(_hits(frame, m, matcher) if m in modes else None for m in MODES), seed=seed)


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
        return tuple(m for m in MODES if m in self.run.records)


@dataclass
class ViewData:
    runs: list[ViewRun]
    problems: list[str]
    seed: int = 0
    _rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    _summaries: dict[tuple[str, str, str], dict[str, Any] | None] = field(default_factory=dict, repr=False)

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
        cache_key = (key, mode, matcher)
        if cache_key not in self._summaries:
            vr = self.run(key)
            self._summaries[cache_key] = mode_summary(vr.frame, mode, matcher) if mode in vr.modes else None
        return self._summaries[cache_key]

    def leaderboard(self, matcher: str = "official") -> list[dict[str, Any]]:
        """Rows in the leaderboard CSV's columns (plus ``run`` and ``judged_v``), one per run, and an
        ``average`` row per model evaluated on several benchmarks."""
        if matcher not in self._rows:
            rows = [self._row(vr, matcher) for vr in self.runs]
            self._rows[matcher] = rows + average_rows(rows)
        return self._rows[matcher]

    def _row(self, vr: ViewRun, matcher: str) -> dict[str, Any]:
        summaries = {m: self.summary(vr.key, m, matcher) for m in MODES}
        s = {m: (summaries[m] or {}).get("overall") for m in MODES}
        mg, ml = gain_and_leakage(s["v"], s["wv"], s["t"])
        v = summaries["v"] or {}
        row: dict[str, Any] = dict.fromkeys(COLUMNS)
        row.update(model=vr.model, benchmark=vr.benchmark, S_v=_r(s["v"]), S_wv=_r(s["wv"]), S_t=_r(s["t"]),
                   MG=_r(mg), ML=_r(ml), macro=_r(v.get("macro")), n=v.get("n"), matcher=matcher,
                   prompt=vr.run.prompt, shots=vr.run.shots, unparsed_v=v.get("unparsed"), run=vr.key,
                   judged_v=v.get("judged"))
        row.update(run_labels(vr.run, has_t=s["t"] is not None))
        cats = v.get("categories", {})
        for cap in taxonomy.CAPABILITIES:
            row[cap.code] = _r(cats.get(cap.name))
        row.update(_intervals(vr.frame, vr.modes, matcher, self.seed))
        row.update(self._scorings(vr))
        return row

    def _scorings(self, vr: ViewRun) -> dict[str, Any]:
        """S_v under each scoring, as the leaderboard CSV's columns (robust+judge once judged)."""
        if "v" not in vr.modes:
            return {}
        by = {m: self.summary(vr.key, "v", m) or {} for m in self.matchers}
        judged = by.get("judge")
        return {"S_v_official": _r(by["official"].get("overall")), "S_v_robust": _r(by["robust"].get("overall")),
                "S_v_robust_judge": _r(judged.get("overall")) if judged else None,
                "judge_decided_v": judged.get("judged") if judged else None}


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
    judged = _Judge()
    for path in dirs:
        run, found = load_run(path)
        problems.extend(found)
        if run is None:
            continue
        key = _unique_key(run, taken)
        frame = run_frame(key, run, judged)
        pairs = zip(frame["category"], frame["l2_category"])
        runs.append(ViewRun(key, run, frame, taxonomy.looks_like_mmstar(pairs)))
    return ViewData(runs, problems, seed)
