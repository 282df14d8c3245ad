"""Read prediction files as typed records (``mmstar.records``): our run JSONL (``v.jsonl`` ...) and
the official submission xlsx."""

from __future__ import annotations

from pathlib import Path

from .errors import DataError
from .records import REQUIRED, PredictionRecord, check_unique, read_records

__all__ = ["check_unique", "read_predictions", "read_records", "read_xlsx_predictions"]


def read_xlsx_predictions(path: Path) -> list[PredictionRecord]:
    """The official submission format: every data column but ``image``, plus ``prediction``. Columns
    a record has no field for (``bench``, ``hint``, ``A`` ...) are kept in its ``extra``."""
    import pandas as pd

    try:
        df = pd.read_excel(path, dtype=str, keep_default_na=False, na_values=[])
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise DataError(path, f"not a readable xlsx file ({type(exc).__name__})") from None
    missing = [c for c in (*REQUIRED, "question") if c not in df.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}")
    records = []
    for i, row in enumerate(df.to_dict("records"), start=1):
        row.setdefault("source", row.get("bench", ""))
        records.append(PredictionRecord.from_dict(row, path, i))
    return records


def read_predictions(path: str | Path) -> list[PredictionRecord]:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such prediction file")
    if path.suffix.lower() == ".xlsx":
        return read_xlsx_predictions(path)
    if path.suffix.lower() == ".jsonl":
        return read_records(path)
    raise DataError(path, "prediction files are .jsonl (ours) or .xlsx (official submission format)")
