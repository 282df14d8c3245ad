"""Import peers' prediction logs as run directories, re-scored with our matchers.

* VLMEvalKit: ``{model}_{dataset}.xlsx`` / ``.tsv`` — the dataset's columns without ``image`` plus
  ``prediction`` (options embedded in the question or in A-J columns with ``hint``).
* lmms-eval: ``*_samples_<task>.jsonl`` — one object per sample with ``doc_id``, ``target``,
  ``resps`` / ``filtered_resps`` (a string or nested lists), ``input``, and per-metric objects such
  as ``{"question_id", "category", "l2_category", "score"}``.

Peers' own headline figures are shown beside ours, computed their way: lmms-eval's MMStar figure is
not the per-sample mean but the mean of per-axis means (``mmstar_aggregate_results``: average the
scores per ``l2_category``, then average the axes; each capability's figure the same over its
axes). When lmms-eval's ``*_results.json`` lies next to the samples file, the figure it wrote is
read too. VLMEvalKit writes its own accuracy table (``*_acc.csv``, ``Overall`` per split) next to
the predictions; its ``Overall`` is read when present.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmstar.evaluators.backends.base import Response
from mmstar.evaluators.run.runner import _now, prediction_record

from mmstar.errors import DataError
from mmstar.loaders import RawTable, build_sample, read_table
from mmstar.records import Manifest, ModeStats, PredictionRecord, append_records
from mmstar.runs import MODES, existing_run_dir, prediction_path, read_manifest, write_manifest, write_scores
from mmstar.sample import Sample
from mmstar.scoring import graded
from mmstar.taxonomy import capability_of_axis

VLMEVAL_DATASETS = ("MMBench_DEV_EN_V11", "MMBench_DEV_EN", "MMBench_TEST_EN", "SEEDBench_IMG", "AI2D_TEST",
                    "ScienceQA_TEST", "ScienceQA_VAL", "MMMU_DEV_VAL", "MathVista_MINI", "MMStar", "RealWorldQA")


@dataclass
class ImportResult:
    run_dir: Path
    n: int
    scores: dict[str, Any]
    peer_score: float | None = None  # the peer's per-sample mean (micro)
    disagreements: int | None = None
    peer_headline: float | None = None  # the peer's headline figure, computed its way
    peer_reported: float | None = None  # the figure the peer wrote in its own results file
    peer_reported_from: Path | None = None

    def peer_line(self, tool: str) -> str:
        """The peer's figures, labelled, for the console ('' when the import holds none)."""
        parts = []
        if self.peer_score is not None:
            parts.append(f"{tool} per-sample mean (micro) {self.peer_score:.2f}")
        if self.peer_headline is not None:
            parts.append(f"{tool} headline (mean of axis means, its aggregation) {self.peer_headline:.2f}")
        if self.peer_reported is not None:
            parts.append(f"{tool} reported {self.peer_reported:.2f} in {self.peer_reported_from}")
        if self.disagreements is not None:
            parts.append(f"samples where {tool}'s hit differs from our official one: {self.disagreements}")
        return "; ".join(parts)


def _pct(x: float) -> float:
    """Peers store fractions (0-1) or percentages; ours are percentages."""
    return 100.0 * x if abs(x) <= 1.0 else x


def lmms_eval_headline(scored: list[tuple[str, float]]) -> float | None:
    """lmms-eval's MMStar aggregation: mean of the per-``l2_category`` means (as a percentage)."""
    per_axis: dict[str, list[float]] = {}
    for axis, score in scored:
        per_axis.setdefault(axis, []).append(score)
    if not per_axis:
        return None
    return 100.0 * sum(sum(v) / len(v) for v in per_axis.values()) / len(per_axis)


def lmms_eval_reported(samples_file: Path, task: str) -> tuple[float | None, Path | None]:
    """The ``average`` figure from lmms-eval's results JSON next to the samples file, if any
    (the one sharing the samples file's timestamp prefix first)."""
    prefix = samples_file.name.split("_samples_")[0]
    candidates = sorted(samples_file.parent.glob("*results*.json"), key=lambda p: not p.name.startswith(prefix))
    for path in candidates:
        try:
            results = json.loads(path.read_text(encoding="utf-8")).get("results", {})
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
        block = results.get(task) if isinstance(results, dict) else None
        if isinstance(block, dict):
            value = block.get("average,none", block.get("average"))
            if isinstance(value, (int, float)):
                return _pct(float(value)), path
    return None, None


def vlmevalkit_reported(pred_file: Path, acc_file: Path | None = None) -> tuple[float | None, Path | None]:
    """``Overall`` from VLMEvalKit's ``{model}_{dataset}_acc.csv`` (given, or next to the predictions)."""
    path = acc_file or pred_file.with_name(pred_file.stem + "_acc.csv")
    if not path.is_file():
        if acc_file is not None:
            raise DataError(path, "no such file")
        return None, None
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    row = next((r for r in rows if str(r.get("split", "")).strip() in ("none", "dev", "val", "test", "")),
               rows[0] if rows else None)
    if row is None or "Overall" not in row:
        raise DataError(path, "no 'Overall' column: is this a VLMEvalKit *_acc.csv file?")
    try:
        return _pct(float(row["Overall"])), path
    except ValueError:
        raise DataError(path, f"Overall is not a number ({row['Overall']!r})") from None


def split_vlmeval_name(stem: str) -> tuple[str, str]:
    """``llava_next_yi_34b_MMStar`` -> (``llava_next_yi_34b``, ``MMStar``)."""
    for ds in VLMEVAL_DATASETS:
        if stem.endswith("_" + ds):
            return stem[: -len(ds) - 1], ds
    model, _, ds = stem.rpartition("_")
    if not model:
        raise DataError(stem, "cannot tell model and dataset apart in the file name; pass --model and --benchmark")
    return model, ds


def _write_run(out: Path, model: str, bench: str, mode: str, records: list[PredictionRecord],
               provenance: dict[str, Any]) -> Path:
    run_dir = existing_run_dir(out, model, bench)  # the folder `mmstar eval` writes (or an older import's)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = prediction_path(run_dir, mode)
    if path.exists():
        raise DataError(path, "already exists; import into another --out or delete it first")
    manifest = read_manifest(run_dir) or Manifest.new(
        {"model_label": model, "benchmark": bench, "created": _now(), "modes": {}})
    manifest.modes[mode] = ModeStats(imported=_now(), n=len(records))
    manifest.modes[mode].update(**provenance)
    append_records(path, records)
    write_manifest(run_dir, manifest)
    return run_dir


def import_vlmevalkit(file: Path, out: Path, mode: str, model: str | None = None, bench: str | None = None,
                      acc_file: Path | None = None) -> ImportResult:
    if mode not in MODES:
        raise DataError(file, f"unknown mode {mode!r}; use v, wv or t")
    guess_model, guess_bench = split_vlmeval_name(file.stem)
    table: RawTable = read_table(file)
    if table.rows and "prediction" not in table.rows[0].fields:
        raise DataError(file, "no 'prediction' column: is this a VLMEvalKit prediction file?")
    records = []
    for raw in table.rows:
        sample: Sample = build_sample(table, raw)
        pred = raw.fields.get("prediction")
        text = "" if pred is None or (isinstance(pred, float) and pred != pred) else str(pred)
        records.append(prediction_record(sample, mode, Response(text=text)))
    reported, reported_from = vlmevalkit_reported(file, acc_file)
    provenance: dict[str, Any] = {"imported_from": str(file), "tool": "VLMEvalKit"}
    if reported is not None:
        provenance.update(peer_reported=reported, peer_reported_from=str(reported_from))
    run_dir = _write_run(out, model or guess_model, bench or guess_bench, mode, records, provenance)
    return ImportResult(run_dir, len(records), write_scores(run_dir), peer_reported=reported,
                        peer_reported_from=reported_from)


def _flatten(value: Any) -> str:
    while isinstance(value, list):
        if not value:
            return ""
        value = value[0]
    return "" if value is None else str(value)


_OPTION_LINE = re.compile(r"^[A-J][.:)]\s")


def _lmms_record(obj: dict[str, Any], line: int, file: Path, mode: str) -> PredictionRecord:
    metric = next((v for v in obj.values() if isinstance(v, dict) and ("question_id" in v or "score" in v)), {})
    index = metric.get("question_id", metric.get("index", obj.get("doc_id")))
    try:
        index = int(index)
    except (TypeError, ValueError):
        raise DataError(file, f"sample has no integer doc_id/question_id ({index!r})", line) from None
    target = _flatten(obj.get("target"))
    if not target:
        raise DataError(file, "sample has no target", line)
    l2 = metric.get("l2_category", obj.get("l2_category", ""))
    category = metric.get("category", obj.get("category", ""))
    if not category and l2 and capability_of_axis(l2):
        category = capability_of_axis(l2).name  # MMStar: the axis names its capability
    prediction = _flatten(obj.get("filtered_resps") if obj.get("filtered_resps") not in (None, []) else
                          obj.get("resps"))
    question = _flatten(obj.get("input") or obj.get("doc", {}).get("question", ""))
    score = metric.get("score")
    rec = PredictionRecord(index=index, mode=mode, prediction=prediction,
                           answer=target.strip().strip("()").upper()[:1], category=str(category or ""),
                           l2_category=str(l2 or ""), source=str(obj.get("doc", {}).get("bench", "") or ""),
                           question=question, peer_score=float(score) if isinstance(score, (int, float)) else None)
    return graded(rec)  # our extractor's verdict beside the peer's own score


def import_lmms_eval(file: Path, out: Path, mode: str, model: str | None = None, bench: str | None = None
                     ) -> ImportResult:
    m = re.match(r"^(?:.*_)?samples_(.+)$", file.stem)
    task = m.group(1) if m else file.stem
    records, peer_hits, disagree, scored = [], [], 0, []
    for i, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(file, f"invalid JSON ({exc.msg})", i) from None
        rec = _lmms_record(obj, i, file, mode)
        peer = rec.peer_score
        if peer is not None:
            peer_hits.append(peer)
            scored.append((rec.l2_category, peer))
            disagree += bool(peer >= 0.5) != rec.hit_official
        records.append(rec)
    if not records:
        raise DataError(file, "no samples in the file")
    peer_score = 100 * sum(peer_hits) / len(peer_hits) if peer_hits else None
    headline = lmms_eval_headline(scored)
    reported, reported_from = lmms_eval_reported(file, task)
    run_dir = _write_run(out, model or file.parent.name or "model", bench or task, mode, records,
                         {"imported_from": str(file), "tool": "lmms-eval", "peer_score": peer_score,
                          "peer_headline": headline, "peer_reported": reported,
                          "peer_reported_from": str(reported_from) if reported_from else None,
                          "disagreements_with_official": disagree})
    return ImportResult(run_dir, len(records), write_scores(run_dir), peer_score, disagree, headline, reported,
                        reported_from)
