"""The run directory contract (DESIGN.md): ``<out>/<model-slug>/<benchmark-slug>/`` with
``manifest.json``, ``v.jsonl`` / ``wv.jsonl`` / ``t.jsonl`` and ``scores.json``.

Prediction files are append-only; each batch is flushed and fsynced, and a torn last line left by a
killed run is cut off before resuming, so no prediction is lost or written twice.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .errors import DataError, MmstarError
from .predictions import check_unique, read_jsonl_predictions
from .scoring import gain_and_leakage, score_records

MODES = ("v", "wv", "t")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def slugify(name: str) -> str:
    slug = _UNSAFE.sub("-", name).strip("-.")
    if not slug or slug in (".", ".."):
        raise MmstarError(f"cannot make a safe folder name from {name!r}")
    return slug[:120]


def prediction_path(run_dir: Path, mode: str) -> Path:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    return run_dir / f"{mode}.jsonl"


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
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    keep = [ln for ln in lines if not (ln.strip() and json.loads(ln).get("error"))]
    if len(keep) != len(lines):
        atomic_write_text(path, "".join(keep))
    return len(lines) - len(keep)


def done_indices(path: Path) -> set[int]:
    if not path.exists():
        return set()
    repair_tail(path)
    return {rec["index"] for rec in check_unique(read_jsonl_predictions(path, warn=False), path)}


def append_predictions(path: Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Append lines and make them durable before returning (one write call per batch)."""
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if not payload:
        return 0
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    return payload.count("\n")


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "manifest.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"manifest is not valid JSON ({exc.msg})") from None


def write_manifest(run_dir: Path, manifest: Mapping[str, Any]) -> None:
    atomic_write_text(run_dir / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def mode_records(run_dir: Path, mode: str) -> list[dict[str, Any]] | None:
    path = prediction_path(run_dir, mode)
    if not path.exists():
        return None
    return read_jsonl_predictions(path)


def compute_scores(run_dir: Path, matcher: str = "official") -> dict[str, Any]:
    """``scores.json`` content, always derived from the prediction files.

    ``S_v ... ML`` follow ``matcher`` (official by default). Once a judge has looked at the run,
    ``robust`` and ``robust_judge`` hold the same five figures under those scorings, beside them."""
    per_mode: dict[str, Any] = {}
    with_judge = bool((read_manifest(run_dir) or {}).get("judge")) or None
    for mode in MODES:
        records = mode_records(run_dir, mode)
        if records is None:
            per_mode[mode] = None
            continue
        summary = score_records(records, matcher, with_judge)
        other = score_records(records, "robust" if matcher == "official" else "official")
        summary[f"{other['matcher']}_overall"] = other["overall"]
        summary[f"{other['matcher']}_macro"] = other["macro"]
        if "judge_seen" in summary:
            summary[f"{matcher}_overall"] = summary["overall"]
        per_mode[mode] = summary
    scores = {"matcher": matcher, **_five(per_mode, "overall"), **per_mode}
    if any(s and "judge_seen" in s for s in per_mode.values()):
        scores["robust"] = _five(per_mode, "robust_overall" if matcher == "official" else "overall")
        scores["robust_judge"] = {**_five(per_mode, "robust_judge_overall"), "judge_decided": {
            m: s.get("judge_decided", 0) for m, s in per_mode.items() if s}}
    return scores


def _five(per_mode: Mapping[str, Any], key: str) -> dict[str, float | None]:
    s = {m: (per_mode[m] or {}).get(key) for m in MODES}
    mg, ml = gain_and_leakage(s["v"], s["wv"], s["t"])
    return {"S_v": s["v"], "S_wv": s["wv"], "S_t": s["t"], "MG": mg, "ML": ml}


def write_scores(run_dir: Path, matcher: str = "official") -> dict[str, Any]:
    scores = compute_scores(run_dir, matcher)
    atomic_write_text(run_dir / "scores.json", json.dumps(scores, indent=2, ensure_ascii=False) + "\n")
    return scores
