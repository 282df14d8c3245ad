"""The run directory contract (docs/architecture.md): ``<out>/<model-slug>/<benchmark-slug>/`` with
``manifest.json``, ``v.jsonl`` / ``wv.jsonl`` / ``t.jsonl`` and ``scores.json``.

Prediction files are append-only; each batch is flushed and fsynced, and a torn last line left by a
killed run is cut off before resuming, so no prediction is lost or written twice.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .errors import DataError, MmstarError
from .records import (
    Manifest,
    PredictionRecord,
    append_records,
    check_unique,
    check_unique_keys,
    read_records,
    record_key,
    write_records,
)
from .scoring import Assessment, Assessor, gain_and_leakage, hit_table, score_records

MODES = ("v", "wv", "t")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def slugify(name: str) -> str:
    slug = _UNSAFE.sub("-", name).strip("-.")
    if not slug or slug in (".", ".."):
        raise MmstarError(f"cannot make a safe folder name from {name!r}")
    return slug[:120]


# ---- the layout: where a run lives, how runs are found, the shard files of a torchrun run ----------

def model_slug(name: str) -> str:
    """A model's folder: a local folder's own name, else the alias or hub id with ``/`` written ``__``
    (``Qwen/Qwen2.5-VL-7B-Instruct`` -> ``Qwen__Qwen2.5-VL-7B-Instruct``), so ``org/a-b`` and
    ``org-a/b`` never share a folder."""
    path = Path(name)
    if path.exists():
        return slugify(path.resolve().name)
    return slugify(name.replace("/", "__"))


def run_dir(out: str | Path, model: str, benchmark: str, *, model_folder: str | None = None) -> Path:
    """``<out>/<model-slug>/<benchmark-slug>/``: the one folder rule (``mmstar eval``, sweeps, ``mmstar
    import``, the curation filter). ``model``: the run's label (or model id); ``model_folder`` names
    the folder instead (a curation filter column, a fixture), made safe the same way."""
    folder = slugify(model_folder) if model_folder else model_slug(model)
    return Path(out) / folder / slugify(benchmark)


def existing_run_dir(out: str | Path, model: str, benchmark: str) -> Path:
    """The folder that already holds (model, benchmark) under ``out``: the rule's, or the one
    ``mmstar import`` wrote before it followed the rule (``org-name``: the slash made a dash), so a
    mode added to an old import joins it and the model stays one leaderboard row. The rule's folder
    when neither exists."""
    current = run_dir(out, model, benchmark)
    legacy = Path(out) / slugify(model) / slugify(benchmark)
    return legacy if legacy != current and is_run_dir(legacy) and not current.exists() else current


def is_run_dir(path: Path) -> bool:
    """A folder holding a run: a manifest or a prediction file of some mode."""
    return (path / "manifest.json").exists() or any((path / f"{m}.jsonl").exists() for m in MODES)


_SKIP_DIRS = ("_", ".")  # the demo's tiny-checkpoint folder, hidden folders
SEARCH_DEPTH = 3  # <out>/runs/<model>/<benchmark> from <out>


def _search(root: Path, depth: int) -> list[Path]:
    found: list[Path] = []
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(_SKIP_DIRS))
    except OSError:
        return found
    for child in children:
        if is_run_dir(child):
            found.append(child)
        elif depth > 1:
            found.extend(_search(child, depth - 1))
    return found


def find_run_dirs(paths: Iterable[str | Path], depth: int = SEARCH_DEPTH) -> tuple[list[Path], list[str]]:
    """The one discovery of runs (leaderboard, viewer, report): each path is a run directory itself, or
    a folder above runs searched ``depth`` levels down (hidden and ``_`` folders skipped). Returns the
    run directories, each once, in the order found, and one problem line per path that holds none."""
    found: list[Path] = []
    seen: set[Path] = set()
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            problems.append(f"{path}: {'not a folder' if path.exists() else 'no such folder'}")
            continue
        dirs = [path] if is_run_dir(path) else _search(path, depth)
        if not dirs:
            problems.append(f"{path}: no runs found (no <model>/<benchmark>/ folder with v.jsonl, wv.jsonl or t.jsonl)")
        for d in dirs:
            if d.resolve() not in seen:
                seen.add(d.resolve())
                found.append(d)
    return found, problems


def shard_path(run_dir: Path, mode: str, rank: int, size: int) -> Path:
    """One torchrun rank's share of a mode, merged into ``<mode>.jsonl`` at the end."""
    return run_dir / f"{mode}.rank{rank}-of-{size}.jsonl"


def shard_paths(run_dir: Path, mode: str) -> list[Path]:
    """Every shard file of a mode (of any world size), sorted."""
    return sorted(run_dir.glob(f"{mode}.rank*-of-*.jsonl"))


def prediction_path(run_dir: Path, mode: str) -> Path:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    return run_dir / f"{mode}.jsonl"


def probe_path(run_dir: Path, name: str) -> Path:
    """A probe's record file (``name`` as ``mmstar.probes.probe_file`` makes it: ``order-v``)."""
    from .probe_variants import probe_files

    if name not in probe_files():
        raise ValueError(f"unknown probe file {name!r}")
    return run_dir / f"{name}.jsonl"


def repair_tail(path: Path) -> int:
    """Cut a torn last line (no trailing newline) off a prediction file; returns bytes removed."""
    if not path.exists():
        return 0
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fh.seek(max(0, size - 1))
        if fh.read(1) == b"\n":
            return 0
        # scan back for the last newline
        pos, chunk = size, 4096
        while pos > 0:
            start = max(0, pos - chunk)
            fh.seek(start)
            block = fh.read(pos - start)
            k = block.rfind(b"\n")
            if k >= 0:
                keep = start + k + 1
                break
            pos = start
        else:
            keep = 0
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
        return size - keep


def prune_errors(path: Path) -> int:
    """Drop lines whose ``error`` is set (atomic rewrite), so a resumed run retries them and the
    file still holds one line per index. Returns how many were dropped."""
    if not path.exists():
        return 0
    repair_tail(path)
    records = read_records(path, warn=False)
    keep = [r for r in records if not r.error]
    if len(keep) != len(records):
        write_records(path, keep)
    return len(records) - len(keep)


def done_indices(path: Path) -> set[int]:
    if not path.exists():
        return set()
    repair_tail(path)
    return {rec.index for rec in check_unique(read_records(path, warn=False), path)}


def done_keys(path: Path) -> set[str]:
    """The keys a probe file holds (a torn last line cut off first): what a resumed probe skips."""
    if not path.exists():
        return set()
    repair_tail(path)
    return {str(record_key(rec)) for rec in check_unique_keys(read_records(path, warn=False), path)}


def append_predictions(path: Path, records: list[PredictionRecord]) -> int:
    """Append lines and make them durable before returning (one write call per batch)."""
    return append_records(path, records)


def read_manifest(run_dir: Path) -> Manifest | None:
    path = run_dir / "manifest.json"
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read the manifest ({exc})") from None
    return Manifest.from_json(text, path)


def write_manifest(run_dir: Path, manifest: Manifest | Mapping[str, Any]) -> None:
    """Write ``manifest.json`` atomically; a plain mapping is typed (and checked) on the way."""
    path = run_dir / "manifest.json"
    if not isinstance(manifest, Manifest):
        manifest = Manifest.from_dict(manifest, path)
    atomic_write_text(path, manifest.to_json())


def mode_records(run_dir: Path, mode: str) -> list[PredictionRecord] | None:
    path = prediction_path(run_dir, mode)
    if not path.exists():
        return None
    return read_records(path)


@dataclass
class Run:
    """One run directory, read: the typed manifest, the records per mode, and every score derived
    from the records through ``mmstar.scoring`` (``scores.json`` is never read back). Assessments
    (the extractor's verdict on each record) and summaries are computed once and cached: do not
    mutate the records of a Run whose scores were asked for."""

    path: Path
    manifest: Manifest
    records: dict[str, list[PredictionRecord]] = field(default_factory=dict)  # mode -> records, file order
    problems: list[str] = field(default_factory=list)  # what a lenient read skipped, one line each
    # probe file ("order-v", "slots-t", "swap-v") -> its records, file order; empty when no probe ran
    probe_records: dict[str, list[PredictionRecord]] = field(default_factory=dict)
    assessor: Callable[[PredictionRecord], Assessment] = field(default_factory=Assessor, repr=False)
    _assessed: dict[str, list[Assessment]] = field(default_factory=dict, init=False, repr=False)
    _summaries: dict[tuple[str, str, bool | None], dict[str, Any]] = field(default_factory=dict, init=False,
                                                                          repr=False)

    @property
    def model(self) -> str:
        return str(self.manifest.model_label or self.path.parent.name)

    @property
    def benchmark(self) -> str:
        return str(self.manifest.benchmark or self.path.name)

    @property
    def prompt(self) -> str:
        return self.manifest.prompt or ""

    @property
    def protocol(self) -> str:
        """``official`` unless the run says otherwise (manifests before the field are official runs)."""
        return self.manifest.protocol or "official"

    @property
    def shots(self) -> int | None:
        return self.manifest.shots

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(m for m in MODES if m in self.records)

    def assessments(self, mode: str) -> list[Assessment]:
        if mode not in self._assessed:
            self._assessed[mode] = [self.assessor(r) for r in self.records.get(mode) or []]
        return self._assessed[mode]

    def summary(self, mode: str, matcher: str = "official", with_judge: bool | None = None) -> dict[str, Any] | None:
        """``score_records`` of one mode (None where the mode was not run); shared, do not mutate."""
        recs = self.records.get(mode)
        if recs is None:
            return None
        key = (mode, matcher, with_judge)
        if key not in self._summaries:
            self._summaries[key] = score_records(recs, matcher, with_judge, assessments=self.assessments(mode))
        return self._summaries[key]

    def hits(self, mode: str, matcher: str) -> dict[int, bool]:
        """index -> hit under ``matcher`` (re-judged from the prediction text); {} without the mode."""
        return hit_table(self.records.get(mode) or [], matcher, self.assessments(mode))

    @property
    def scores(self) -> dict[str, Any]:
        """What ``scores.json`` holds (official matcher): ``S_v ... ML`` and per mode its summary."""
        return self.scores_for("official")

    def scores_for(self, matcher: str = "official") -> dict[str, Any]:
        """``scores.json`` content under ``matcher``. ``S_v ... ML`` follow ``matcher``; once a judge
        has looked at the run, ``robust`` and ``robust_judge`` hold the same five figures under those
        scorings, beside them."""
        per_mode: dict[str, Any] = {}
        with_judge = bool(self.manifest.judge) or None
        other_matcher = "robust" if matcher == "official" else "official"
        for mode in MODES:
            summary = self.summary(mode, matcher, with_judge)
            if summary is None:
                per_mode[mode] = None
                continue
            summary = dict(summary)  # the cached one stays as score_records made it
            other = self.summary(mode, other_matcher) or {}
            summary[f"{other_matcher}_overall"] = other["overall"]
            summary[f"{other_matcher}_macro"] = other["macro"]
            if "judge_seen" in summary:
                summary[f"{matcher}_overall"] = summary["overall"]
            per_mode[mode] = summary
        scores = {"matcher": matcher, **_five(per_mode, "overall"), **per_mode}
        if any(s and "judge_seen" in s for s in per_mode.values()):
            scores["robust"] = _five(per_mode, "robust_overall" if matcher == "official" else "overall")
            scores["robust_judge"] = {**_five(per_mode, "robust_judge_overall"), "judge_decided": {
                m: s.get("judge_decided", 0) for m, s in per_mode.items() if s}}
        if self.probe_records:  # absent when no probe ran: a plain run's scores.json is as it was
            from .probe_scores import probe_block

            scores["probes"] = probe_block(self, matcher)
        return scores


def open_run(path: str | Path, *, strict: bool = True, assessor: Callable[[PredictionRecord], Assessment] | None = None
             ) -> Run:
    """Read a run directory (``<out>/<model>/<benchmark>/``): its manifest, its records per mode.

    ``strict`` (the default): any unreadable file is a DataError, and so is a folder without a
    single prediction file. Not strict (the viewer): a bad manifest or mode file is skipped and said
    in ``run.problems`` (one line each), and ``run.records`` may be empty. ``assessor``: share one
    ``scoring.Assessor`` between runs read together, so a reply seen before is not judged again."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(path, "not a run directory")
    run = _read_run(path, strict, assessor)
    if strict and not run.records:
        raise DataError(path, "run directory holds no v.jsonl, wv.jsonl or t.jsonl")
    return run


def _read_run(path: Path, strict: bool = True,
              assessor: Callable[[PredictionRecord], Assessment] | None = None) -> Run:
    problems: list[str] = []
    try:
        manifest = read_manifest(path) or Manifest()
    except DataError as exc:
        if strict:
            raise
        problems.append(f"{exc}; run shown without it")
        manifest = Manifest()
    records: dict[str, list[PredictionRecord]] = {}
    for mode in MODES:
        file = prediction_path(path, mode)
        if not file.exists():
            continue
        try:
            records[mode] = check_unique(read_records(file, problems=None if strict else problems), file)
        except DataError as exc:
            if strict:
                raise
            problems.append(f"{exc}; {mode} not shown")
    probe_records: dict[str, list[PredictionRecord]] = {}
    from .probe_variants import probe_files

    for name in probe_files():
        file = path / f"{name}.jsonl"
        if not file.exists():
            continue
        try:
            probe_records[name] = check_unique_keys(read_records(file, problems=None if strict else problems), file)
        except DataError as exc:
            if strict:
                raise
            problems.append(f"{exc}; {name} not shown")
    run = Run(path, manifest, records, problems, probe_records=probe_records)
    if assessor is not None:
        run.assessor = assessor
    return run


def prediction_hits(path: str | Path, mode: str = "v", matcher: str = "official") -> dict[int, bool]:
    """index -> hit of one mode's predictions, re-judged from the text (stored hits are not trusted):
    ``path`` is a run directory (its ``<mode>.jsonl``) or a prediction file of ours."""
    path = Path(path)
    if path.is_dir():
        run = open_run(path)
        if mode not in run.records:
            raise DataError(path, f"no {mode}.jsonl in this run directory")
        return run.hits(mode, matcher)
    return hit_table(check_unique(read_records(path), path), matcher)


def compute_scores(run_dir: Path | Run, matcher: str = "official") -> dict[str, Any]:
    """``scores.json`` content, always derived from the prediction files (see ``Run.scores_for``)."""
    run = run_dir if isinstance(run_dir, Run) else _read_run(Path(run_dir))
    return run.scores_for(matcher)


def _five(per_mode: Mapping[str, Any], key: str) -> dict[str, float | None]:
    s = {m: (per_mode[m] or {}).get(key) for m in MODES}
    mg, ml = gain_and_leakage(s["v"], s["wv"], s["t"])
    return {"S_v": s["v"], "S_wv": s["wv"], "S_t": s["t"], "MG": mg, "ML": ml}


def write_scores(run_dir: Path, matcher: str = "official") -> dict[str, Any]:
    scores = compute_scores(run_dir, matcher)
    atomic_write_text(Path(run_dir) / "scores.json", json.dumps(scores, indent=2, ensure_ascii=False) + "\n")
    return scores
