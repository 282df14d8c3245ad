"""Read benchmarks from every supported format into ``Benchmark`` objects.

Formats: Hugging Face hub ids (``Lin-Chen/MMStar``), ``save_to_disk`` folders, parquet,
VLMEvalKit TSV (base64 images, short pointer values, optional A-J columns and hint), the official
submission xlsx (no images) and JSONL with an images folder. Every reader yields raw rows; one
builder turns a row into a ``Sample`` or raises a ``DataError`` naming file and row, so that
loading (stop at the first fatal problem) and validation (collect all) share the same code.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DataError, require
from .options import OptionParseError, options_from_columns, parse_question
from .sample import Benchmark, ImageRef, Sample

_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+(?::[\w.-]+)?$")
_POINTER_MAX = 64  # VLMEvalKit: an image value this short is another row's index


@dataclass
class RawRow:
    rownum: int  # 1-based data row (header excluded) as a user would count in a spreadsheet
    fields: dict[str, Any]
    image: ImageRef | Exception | None  # an Exception: the image reference itself is bad


@dataclass
class RawTable:
    name: str
    origin: str
    rows: list[RawRow]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str:
    return "" if _is_missing(value) else str(value)


def _inside(root: Path, rel: str, origin: str, row: int) -> Path:
    """Resolve an image path relative to ``root``; refuse anything that escapes it."""
    if not rel:
        raise DataError(origin, "empty image path", row)
    if "\x00" in rel:  # no file system takes one; resolve() would raise a bare ValueError
        raise DataError(origin, f"image path {rel!r} holds a NUL character", row)
    candidate = (root / rel).resolve()
    if not candidate.is_relative_to(root.resolve()):
        raise DataError(origin, f"image path {rel!r} escapes the dataset folder {root}", row)
    return candidate


# ---------------------------------------------------------------- row -> Sample


def build_sample(table: RawTable, raw: RawRow) -> Sample:
    f, origin, row = raw.fields, table.origin, raw.rownum
    index_value = f.get("index")
    try:
        if isinstance(index_value, float) and not index_value.is_integer():
            raise ValueError
        index = int(str(index_value).strip()) if not isinstance(index_value, (int, float)) else int(index_value)
    except (TypeError, ValueError):
        raise DataError(origin, f"index {index_value!r} is not an integer", row) from None
    question = f.get("question")
    if _is_missing(question) or not isinstance(question, str) or not question.strip():
        raise DataError(origin, f"index {index}: missing question", row)
    answer = _text(f.get("answer")).strip()
    if not answer:
        raise DataError(origin, f"index {index}: missing answer", row)

    options = options_from_columns(f)
    embedded = not options
    if embedded:
        try:
            options = parse_question(question).options
        except OptionParseError as exc:
            raise DataError(origin, f"index {index}: cannot parse options from question ({exc})", row) from None

    if isinstance(raw.image, Exception):
        raise raw.image
    meta = dict(f.get("meta") or {})
    hint = None if _is_missing(f.get("hint")) or f.get("hint") in ("", None) else str(f["hint"])
    return Sample(
        index=index,
        question=question,
        options=options,
        answer=answer,
        category=_text(f.get("category")),
        l2_category=_text(f.get("l2_category", f.get("l2-category"))),
        source=_text(f.get("source", f.get("bench"))),
        image=raw.image,
        hint=hint,
        options_embedded=embedded,
        meta=meta,
    )


def build_benchmark(table: RawTable) -> Benchmark:
    return Benchmark(table.name, (build_sample(table, r) for r in table.rows), table.origin)


# ---------------------------------------------------------------- readers


def _read_tsv(path: Path) -> RawTable:
    import pandas as pd

    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[])
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(path, f"not a readable TSV file ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    _require_columns(df.columns, path, ("index", "question", "answer"))
    records = df.to_dict("records")
    by_index = {str(r["index"]).strip(): r.get("image", "") for r in records}
    rows = []
    for i, rec in enumerate(records, start=1):
        rows.append(RawRow(i, _blank_to_none(rec), _tsv_image(rec, by_index, path, i)))
    return RawTable(path.stem, str(path), rows)


def _tsv_image(rec: dict, by_index: dict[str, str], path: Path, row: int) -> ImageRef | Exception | None:
    value = (rec.get("image") or "").strip()
    if not value:
        return None
    if len(value) <= _POINTER_MAX:
        target = by_index.get(value)
        if target is None or len(target.strip()) <= _POINTER_MAX:
            return DataError(path, f"image pointer {value!r} names no row with an image", row)
        value = target.strip()
    return ImageRef(b64=value, origin=f"{path}, row {row}")


_KNOWN_COLUMNS = {"index", "question", "answer", "category", "l2_category", "l2-category", "bench", "source",
                  "hint", "image", "meta", "prediction", *"ABCDEFGHIJ"}


def _blank_to_none(rec: dict) -> dict:
    """Tabular cells (all strings) -> row fields; unknown columns are kept in ``meta``.

    An empty option cell ends the option list; an empty hint is no hint.
    """
    fields = {k: (None if v == "" and (k in "ABCDEFGHIJ" or k == "hint") else v)
              for k, v in rec.items() if k in _KNOWN_COLUMNS and k not in ("image", "meta")}
    meta: dict[str, Any] = {}
    if rec.get("meta"):
        try:
            loaded = json.loads(rec["meta"])
            meta = loaded if isinstance(loaded, dict) else {"meta": rec["meta"]}
        except json.JSONDecodeError:
            meta = {"meta": rec["meta"]}
    meta.update({k: v for k, v in rec.items() if k not in _KNOWN_COLUMNS and v != ""})
    fields["meta"] = meta
    return fields


def _require_columns(columns: Any, origin: Path | str, needed: tuple[str, ...]) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(origin, f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, columns))}")


def _read_xlsx(path: Path) -> RawTable:
    import pandas as pd

    try:
        df = pd.read_excel(path, dtype=str, keep_default_na=False, na_values=[])
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise DataError(path, f"not a readable xlsx file ({type(exc).__name__})") from None
    _require_columns(df.columns, path, ("index", "question", "answer"))
    rows = [RawRow(i, _blank_to_none(r), None) for i, r in enumerate(df.to_dict("records"), start=1)]
    return RawTable(path.stem, str(path), rows)


def _read_jsonl(path: Path) -> RawTable:
    root = path.parent
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append(RawRow(i, {}, DataError(path, f"invalid JSON ({exc.msg})", i)))
            continue
        if not isinstance(rec, dict):
            rows.append(RawRow(i, {}, DataError(path, "a line must be a JSON object", i)))
            continue
        opts = rec.pop("options", None)
        if isinstance(opts, dict) and not rec.get("options_embedded", True):
            rec.update(opts)
        image: ImageRef | Exception | None = None
        rel = rec.pop("image", None)
        if rel:
            try:
                image = ImageRef(path=_inside(root, str(rel), str(path), i), origin=f"{path}, row {i}")
            except DataError as exc:
                image = exc
        rows.append(RawRow(i, rec, image))
    return RawTable(path.stem, str(path), rows)


def _arrow_rows(records: list[dict], origin: str, root: Path | None) -> list[RawRow]:
    rows = []
    for i, rec in enumerate(records, start=1):
        rec = dict(rec)
        meta_info = rec.pop("meta_info", None) or {}
        meta = json.loads(rec.pop("meta")) if isinstance(rec.get("meta"), str) and rec.get("meta") else {}
        for key, value in meta_info.items():
            if key == "source":
                rec.setdefault("source", value)
            elif value not in (None, ""):
                meta[key] = value
        rec["meta"] = meta
        rows.append(RawRow(i, rec, _arrow_image(rec.pop("image", None), origin, i, root)))
    return rows


def _arrow_image(value: Any, origin: str, row: int, root: Path | None) -> ImageRef | Exception | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return ImageRef(data=bytes(value), origin=f"{origin}, row {row}")
    if isinstance(value, dict):
        if value.get("bytes"):
            return ImageRef(data=value["bytes"], origin=f"{origin}, row {row}")
        if value.get("path"):
            if root is None:
                return DataError(origin, "image given by path only, with no dataset folder", row)
            try:
                return ImageRef(path=_inside(root, value["path"], origin, row), origin=f"{origin}, row {row}")
            except DataError as exc:
                return exc
        return None
    return DataError(origin, f"unsupported image value of type {type(value).__name__}", row)


def _read_parquet(path: Path) -> RawTable:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # one file: ParquetFile, not read_table, whose dataset layer imports pandas (~0.5-1 s of a
        # run's start-up, measured in benchmarks/cpu_pipeline.py --timeline); a folder of parts: read_table
        table = pq.read_table(path) if path.is_dir() else pq.ParquetFile(path).read()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(path, f"not a readable parquet file ({exc})") from None
    _require_columns(table.column_names, path, ("index", "question", "answer"))
    return RawTable(path.stem, str(path), _arrow_rows(table.to_pylist(), str(path), path.parent))


def _hf_table(ds: Any, name: str, origin: str, root: Path | None) -> RawTable:
    datasets = require("datasets", "datasets")
    if isinstance(ds, datasets.DatasetDict):
        split = "val" if "val" in ds else next(iter(ds))
        ds = ds[split]
    if "image" in ds.column_names and isinstance(ds.features["image"], datasets.Image):
        ds = ds.cast_column("image", datasets.Image(decode=False))  # bytes stay encoded: lazy
    _require_columns(ds.column_names, origin, ("index", "question", "answer"))
    return RawTable(name, origin, _arrow_rows(list(ds), origin, root))


def _read_saved_dataset(path: Path) -> RawTable:
    datasets = require("datasets", "datasets")
    try:
        ds = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(path, f"not a datasets save_to_disk folder ({exc})") from None
    return _hf_table(ds, path.name, str(path), path)


def _read_hub(spec: str) -> RawTable:
    repo, _, split = spec.partition(":")
    split = split or "val"
    from .hub import prefer_offline_if_unreachable

    prefer_offline_if_unreachable()
    datasets = require("datasets", "datasets")
    try:
        ds = datasets.load_dataset(repo, split=split)
    except Exception as exc:  # hub/network errors come in many types
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise DataError(
            spec,
            f"cannot load {repo} (split {split}) from the Hugging Face hub: {first}. Without network, "
            "download it elsewhere and pass its save_to_disk folder or a parquet/TSV file",
        ) from None
    return _hf_table(ds, repo.split("/")[-1], f"hf:{repo}:{split}", None)


def _is_registered(spec: str | Path) -> bool:
    """A registry name, unless a data file or dataset folder of that name is right here."""
    from .benchmarks import REGISTRY

    if not isinstance(spec, str) or spec.lower() not in REGISTRY:
        return False
    path = Path(spec)
    return not (path.is_file() or (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists())


def _read_registered(name: str) -> tuple[RawTable, bool]:
    from .benchmarks import REGISTRY, fetch

    entry = REGISTRY[name]
    table = _read_hub(entry.location) if entry.kind == "hf" else _read_tsv(fetch(entry))
    if entry.split_filter:
        table.rows = [r for r in table.rows if str((r.fields.get("meta") or {}).get("split", r.fields.get("split")))
                      == entry.split_filter]
    table.name = entry.name
    return table, entry.multiple_choice_only


def read_table(spec: str | Path) -> RawTable:
    if _is_registered(spec):
        return _read_registered(str(spec).lower())[0]
    path = Path(spec)
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            return _read_saved_dataset(path)
        raise DataError(path, "folder is not a datasets save_to_disk folder (no dataset_info.json)")
    if path.is_file():
        suffix = path.suffix.lower()
        readers: dict[str, Callable[[Path], RawTable]] = {
            ".tsv": _read_tsv, ".xlsx": _read_xlsx, ".jsonl": _read_jsonl, ".parquet": _read_parquet,
        }
        if suffix not in readers:
            raise DataError(path, f"unsupported file type {suffix!r} (use .parquet, .tsv, .jsonl, .xlsx)")
        return readers[suffix](path)
    text = str(spec)
    if _HUB_ID.match(text):
        return _read_hub(text)
    raise DataError(text, "no such file or folder (and not a Hugging Face dataset id like Lin-Chen/MMStar)")


def load_benchmark(spec: str | Path) -> Benchmark:
    """Load a benchmark; raises ``DataError`` (file, row, problem) on the first fatal problem.

    A registered benchmark marked multiple-choice-only skips its rows without options, and says how
    many on stderr (never silently)."""
    if _is_registered(spec):
        table, mc_only = _read_registered(str(spec).lower())
        if mc_only:
            samples, skipped = [], 0
            for _raw, result in iter_problems(table):
                if isinstance(result, DataError):
                    if "cannot parse options" not in result.detail:
                        raise result
                    skipped += 1
                else:
                    samples.append(result)
            if skipped:
                import sys

                print(f"note: {spec}: skipped {skipped} question(s) without options (not multiple-choice)",
                      file=sys.stderr)
            return Benchmark(table.name, samples, table.origin)
    return build_benchmark(read_table(spec))


def iter_problems(table: RawTable) -> Iterator[tuple[RawRow, DataError | Sample]]:
    for raw in table.rows:
        try:
            yield raw, build_sample(table, raw)
        except DataError as exc:
            yield raw, exc
