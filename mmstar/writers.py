"""Write benchmarks to parquet (the released HF schema), VLMEvalKit TSV, JSONL + images, xlsx and
``save_to_disk`` folders. Every writer is atomic: readers never see a half-written file."""

from __future__ import annotations

import base64
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .atomic import atomic_path, atomic_write_text
from .errors import DataError, require
from .options import LETTERS
from .sample import Benchmark, Sample, image_format

_META_INFO_KEYS = ("split", "image_path")
# control characters that the xlsx format cannot store (openpyxl refuses them)
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def xlsx_safe(value: Any) -> Any:
    """Replace characters xlsx cannot hold with U+FFFD, so one odd model output cannot sink a file."""
    return _XLSX_ILLEGAL.sub("\ufffd", value) if isinstance(value, str) else value


# a cell a spreadsheet may take for a formula when it starts with one of these (OWASP's CSV injection list)
FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a string that starts like a formula gains a leading ``'``
    (strip one leading ``'`` from such a cell to get the original). Numbers pass unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_LEAD) else value


def write_xlsx_table(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """One sheet, atomically: a header row, then ``rows``. Every string is a string cell, never a formula,
    even one that starts with ``=`` (pandas' ``to_excel`` makes that a live formula, which pandas then reads
    back as an empty cell); such cells also get Excel's quote prefix, so an edit keeps them text. The value
    read back (openpyxl, pandas) is the string written, character for character."""
    from openpyxl import Workbook  # a core dependency

    book = Workbook()
    sheet = book.active
    sheet.title = "Sheet1"  # the name pandas' to_excel gave the files before
    sheet.append(columns)
    for row in rows:
        sheet.append([_xlsx_value(row.get(c)) for c in columns])
    for line in sheet.iter_rows(min_row=2):
        for cell in line:
            if isinstance(cell.value, str) and cell.value.startswith(FORMULA_LEAD):
                cell.data_type = "s"  # openpyxl typed it "f" (formula) when the value began with "="
                cell.quotePrefix = True
    with atomic_path(path, suffix=".xlsx") as tmp:
        book.save(tmp)


def _xlsx_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):  # None and NaN: an empty cell
        return None
    return xlsx_safe(value)


def _option_columns(bench: Benchmark) -> list[str]:
    width = max((len(s.options) for s in bench if not s.options_embedded), default=0)
    return list(LETTERS[:width])


def _base_record(s: Sample, option_cols: list[str]) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "index": s.index,
        "question": s.question,
        "hint": s.hint,
        "answer": s.answer,
        "category": s.category,
        "l2_category": s.l2_category,
    }
    for letter in option_cols:
        rec[letter] = None if s.options_embedded else s.options.get(letter)
    return rec


def _extra_meta(s: Sample) -> str:
    return json.dumps({k: v for k, v in s.meta.items() if k not in _META_INFO_KEYS}, ensure_ascii=False)


def _arrow_records(bench: Benchmark) -> list[dict[str, Any]]:
    cols = _option_columns(bench)
    out = []
    for s in bench:
        rec = _base_record(s, cols)
        rec["image"] = None if s.image is None else {"bytes": s.image.data(), "path": None}
        rec["meta_info"] = {
            "source": s.source,
            **{k: str(s.meta.get(k, "")) for k in _META_INFO_KEYS},
        }
        rec["meta"] = _extra_meta(s)
        out.append(rec)
    return out


def write_parquet(bench: Benchmark, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(_arrow_records(bench))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_tsv(bench: Benchmark, path: Path) -> None:
    """VLMEvalKit layout: ``bench`` for the source, base64 ``image``; a repeated image is written
    once and later rows point at the first row's index (VLMEvalKit's short-value convention)."""
    import pandas as pd

    cols = _option_columns(bench)
    first_with: dict[str, int] = {}
    records = []
    for s in bench:
        rec = _base_record(s, cols)
        rec["bench"] = s.source
        if s.image is None:
            rec["image"] = ""
        else:
            digest = s.image.digest()
            if digest in first_with:
                rec["image"] = str(first_with[digest])
            else:
                first_with[digest] = s.index
                rec["image"] = base64.b64encode(s.image.data()).decode("ascii")
        rec["meta"] = _extra_meta(s)
        rec.update({k: str(s.meta[k]) for k in _META_INFO_KEYS if k in s.meta})
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False)


def write_xlsx(bench: Benchmark, path: Path, predictions: dict[int, str] | None = None) -> None:
    """The official submission layout: every column but ``image`` (+ ``prediction`` if given)."""
    records = []
    for s in bench:
        rec = {"index": s.index, "question": s.question, "answer": s.answer, "category": s.category,
               "l2_category": s.l2_category, "bench": s.source}
        if predictions is not None:
            rec["prediction"] = predictions.get(s.index, "")
        records.append(rec)
    columns = ["index", "question", "answer", "category", "l2_category", "bench"]
    write_xlsx_table(path, columns + (["prediction"] if predictions is not None else []), records)


def write_jsonl(bench: Benchmark, path: Path) -> None:
    """JSONL beside an ``<stem>_images/`` folder; image paths in rows are relative to the file."""
    image_dir_name = f"{path.stem}_images"
    image_dir = path.parent / image_dir_name
    image_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for s in bench:
        rec = s.record()
        if s.options_embedded:
            rec.pop("options")
        if s.image is not None:
            ext = {"jpeg": "jpg"}.get(image_format(s.image.data()), image_format(s.image.data()))
            name = f"{s.index}.{ext}"
            with atomic_path(image_dir / name) as tmp:
                tmp.write_bytes(s.image.data())
            rec["image"] = f"{image_dir_name}/{name}"
        lines.append(json.dumps(rec, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + "\n")


def write_saved_dataset(bench: Benchmark, path: Path) -> None:
    """``datasets.save_to_disk`` with an ``Image`` feature, written to a temp folder then renamed."""
    datasets = require("datasets", "datasets")
    records = _arrow_records(bench)
    ds = datasets.Dataset.from_list(records)
    if any(r["image"] is not None for r in records):
        ds = ds.cast_column("image", datasets.Image())
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent if path.parent.exists() else None))
    try:
        ds.save_to_disk(str(tmp / "data"))
        if path.exists():
            shutil.rmtree(path)
        (tmp / "data").rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_benchmark(bench: Benchmark, out: str | Path) -> Path:
    out = Path(out)
    suffix = out.suffix.lower()
    writers = {".parquet": write_parquet, ".tsv": write_tsv, ".jsonl": write_jsonl, ".xlsx": write_xlsx}
    if suffix in writers:
        out.parent.mkdir(parents=True, exist_ok=True)
        writers[suffix](bench, out)
    elif suffix == "":
        out.parent.mkdir(parents=True, exist_ok=True)
        write_saved_dataset(bench, out)
    else:
        raise DataError(out, f"cannot write {suffix!r}; use .parquet, .tsv, .jsonl, .xlsx or a folder name")
    return out
