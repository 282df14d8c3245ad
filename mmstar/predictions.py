"""Read prediction files: our run JSONL (``v.jsonl`` ...) and the official submission xlsx."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .errors import DataError

REQUIRED = ("index", "prediction", "answer")


def read_jsonl_predictions(path: Path, *, warn: bool = True) -> list[dict[str, Any]]:
    """Prediction lines in file order. A torn last line (a run killed mid-write, no newline) is
    skipped with a warning; a bad line anywhere else is an error naming the row."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read ({exc.strerror})") from None
    lines = data.split(b"\n")
    records = []
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        last_unterminated = i == len(lines)  # split leaves "" after a final newline
        try:
            rec = json.loads(raw.decode("utf-8"))
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except (UnicodeDecodeError, ValueError) as exc:
            if last_unterminated:
                if warn:
                    print(f"warning: {path}: ignoring torn last line {i} (run interrupted?)", file=sys.stderr)
                continue
            raise DataError(path, f"invalid prediction line ({exc})", i) from None
        missing = [k for k in REQUIRED if k not in rec]
        if missing:
            raise DataError(path, f"prediction line lacks {', '.join(missing)}", i)
        records.append(_normalise(rec, path, i))
    return records


def _normalise(rec: dict[str, Any], path: Path, row: int) -> dict[str, Any]:
    """Types a scorer relies on: an integer index, text for prediction/answer/labels."""
    index = rec["index"]
    if isinstance(index, bool) or not isinstance(index, int):
        if isinstance(index, str) and index.strip().lstrip("-").isdigit():
            index = int(index)
        else:
            raise DataError(path, f"index {index!r} is not an integer", row)
    rec["index"] = index
    rec["prediction"] = "" if rec["prediction"] is None else str(rec["prediction"])
    rec["answer"] = "" if rec["answer"] is None else str(rec["answer"])
    for key in ("category", "l2_category", "question", "source"):
        if key in rec and rec[key] is not None and not isinstance(rec[key], str):
            rec[key] = str(rec[key])
    return rec


def read_xlsx_predictions(path: Path) -> list[dict[str, Any]]:
    import pandas as pd

    try:
        df = pd.read_excel(path, dtype=str, keep_default_na=False, na_values=[])
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise DataError(path, f"not a readable xlsx file ({type(exc).__name__})") from None
    missing = [c for c in (*REQUIRED, "question") if c not in df.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}")
    records = df.to_dict("records")
    for i, rec in enumerate(records, start=1):
        try:
            rec["index"] = int(rec["index"])
        except ValueError:
            raise DataError(path, f"index {rec['index']!r} is not an integer", i) from None
        rec.setdefault("source", rec.get("bench", ""))
    return records


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such prediction file")
    if path.suffix.lower() == ".xlsx":
        return read_xlsx_predictions(path)
    if path.suffix.lower() == ".jsonl":
        return read_jsonl_predictions(path)
    raise DataError(path, "prediction files are .jsonl (ours) or .xlsx (official submission format)")


def check_unique(records: list[dict[str, Any]], origin: str | Path) -> list[dict[str, Any]]:
    """One record per index; a repeated index is an error (a run never writes one twice, so the
    file was edited or concatenated by hand)."""
    seen: set[Any] = set()
    for i, rec in enumerate(records, start=1):
        if rec["index"] in seen:
            raise DataError(origin, f"index {rec['index']} appears more than once", i)
        seen.add(rec["index"])
    return records
