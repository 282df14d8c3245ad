"""Structured fuzzing of each loader in mmstar/loaders.py (parquet, xlsx, a datasets save_to_disk
folder, TSV, JSONL): typed columns with hostile values (wrong types, formulas, escaping and NUL image
paths, corrupt images, decompression bombs). Every input gets a benchmark or one ``DataError`` naming
the file, never another exception; every image of a loaded benchmark decodes or is one ``DataError``.
Seeded and bounded (test_fuzz.py fuzzes bytes and rows without types)."""

import base64
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import png_bytes
from hostile import bomb_png
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from mmstar.errors import DataError
from mmstar.loaders import load_benchmark

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PNG, BOMB = png_bytes((9, 9, 9)), bomb_png()
QUESTION = "What is it?\nOptions: A: red, B: green"
images = st.sampled_from([PNG, BOMB, PNG[:40], b"", b"GIF89a", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30])
paths = st.sampled_from(["img.png", "../secret.png", "/etc/hosts", "a\x00b.png", "", "missing.png", "sub/../img.png"])
texts = st.one_of(st.text(max_size=30), st.just(QUESTION), st.sampled_from(["=1+1", "nan", "A", "", "@SUM(A1)"]))
ints = st.one_of(st.integers(-3, 10**15), st.just(0))
# per column: a kind, then values of that kind (arrow columns have one type), None anywhere
KINDS = {
    "index": {"int": ints, "text": texts, "float": st.floats(allow_nan=True)},
    "question": {"text": st.one_of(st.just(QUESTION), texts), "int": ints},  # half parse: loads get far
    "answer": {"text": st.sampled_from(["A", "B", "Z", "", "a"]), "int": ints},
    "category": {"text": texts},
    "options": {"text": texts, "map": st.dictionaries(st.sampled_from("ABCDE"), st.text(max_size=8), max_size=4)},
    "image": {"bytes": images, "struct": st.fixed_dictionaries({"bytes": st.one_of(st.none(), images),
                                                                 "path": st.one_of(st.none(), paths)})},
}


@st.composite
def columns(draw, names=tuple(KINDS)):
    n = draw(st.integers(0, 3))
    out = {}
    for name in names:
        if name not in ("index", "question", "answer") and draw(st.booleans()):
            continue  # optional columns come and go
        kind = draw(st.sampled_from(sorted(KINDS[name])))
        out[name] = draw(st.lists(st.one_of(st.none(), KINDS[name][kind]), min_size=n, max_size=n))
    return out


def _only_data_errors(fn, path):
    """``fn()``, or None after one DataError naming the file; any other exception fails the test."""
    try:
        return fn()
    except DataError as exc:
        assert path.name in str(exc) and "\n" not in str(exc).strip(), str(exc)
        return None


def _load_and_decode(path, name_in_error=None):
    bench = _only_data_errors(lambda: load_benchmark(path), name_in_error or path)
    event("loaded" if bench is not None else "one DataError")  # --hypothesis-show-statistics
    for s in bench or []:
        if s.image is not None:
            _only_data_errors(s.image.pil, name_in_error or path)
    return bench


def _folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("d")
    (root / "img.png").write_bytes(PNG)
    (root.parent / "secret.png").write_bytes(PNG)
    return root


@SETTINGS
@given(cols=columns())
def test_parquet_columns(tmp_path_factory, cols):
    path = _folder(tmp_path_factory) / "x.parquet"
    try:
        table = pa.table(cols)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        event("not writable")
        return  # not a table arrow can write: nothing for the loader to read
    pq.write_table(table, path)
    _load_and_decode(path)


@settings(SETTINGS, max_examples=20)  # each case writes and reads a workbook (~0.2 s)
@given(cols=columns(("index", "question", "answer", "category")))
def test_xlsx_cells(tmp_path_factory, cols):
    import pandas as pd

    path = _folder(tmp_path_factory) / "x.xlsx"
    frame = pd.DataFrame(cols) if any(cols.values()) else pd.DataFrame(columns=list(cols))
    from openpyxl.utils.exceptions import IllegalCharacterError

    try:
        frame.to_excel(path, index=False)
    except (ValueError, TypeError, IllegalCharacterError):  # test side: a cell openpyxl will not write
        event("not writable")
        return
    _load_and_decode(path)


@settings(SETTINGS, max_examples=15)
@given(cols=columns())
@example(cols={"index": [0, 1], "question": [QUESTION] * 2, "answer": ["A", "B"],  # one that loads, with a bomb
               "image": [{"bytes": BOMB, "path": None}, {"bytes": PNG, "path": None}]})
def test_datasets_save_to_disk_folder(tmp_path_factory, cols):
    datasets = pytest.importorskip("datasets")
    root = _folder(tmp_path_factory) / "saved"
    if not cols["index"]:
        return  # datasets itself cannot build an empty table from an empty dict
    try:
        ds = datasets.Dataset.from_dict(cols)
        if "image" in cols and all(isinstance(v, dict) or v is None for v in cols["image"]):
            ds = ds.cast_column("image", datasets.Image(decode=False))
        ds.save_to_disk(str(root))
    except Exception:  # test side: not a dataset that datasets can write (its errors come in many types)
        event("not writable")
        return
    _load_and_decode(root, root)


@SETTINGS
@given(cols=columns(("index", "question", "answer", "category", "image")))
def test_tsv_typed_columns(tmp_path_factory, cols):
    import pandas as pd

    path = _folder(tmp_path_factory) / "x.tsv"
    if "image" in cols:  # TSV images are base64 (or a pointer to another row's index)
        cols["image"] = [base64.b64encode(v).decode() if isinstance(v, bytes) else
                         None if v is None else str(v.get("path")) for v in cols["image"]]
    pd.DataFrame(cols or {"index": []}).to_csv(path, sep="\t", index=False)
    _load_and_decode(path)


@SETTINGS
@given(cols=columns())
def test_jsonl_typed_fields(tmp_path_factory, cols):
    path = _folder(tmp_path_factory) / "x.jsonl"
    rows = [{k: v[i] for k, v in cols.items()} for i in range(len(cols["index"]))]
    for row in rows:  # JSONL images are paths inside the folder
        image = row.get("image")
        if image is not None:
            row["image"] = image.get("path") if isinstance(image, dict) else base64.b64encode(image).decode()
    path.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
    _load_and_decode(path)


def test_a_bomb_is_a_data_error_in_every_format(tmp_path):
    """The fuzzers draw bombs among other images; here each format holds one for certain."""
    from mmstar.sample import Benchmark, ImageRef, Sample
    from mmstar.writers import write_benchmark

    sample = Sample(0, QUESTION, {"A": "red", "B": "green"}, "A", image=ImageRef(data=BOMB))
    for suffix in (".parquet", ".tsv", ".jsonl"):
        path = write_benchmark(Benchmark("b", [sample]), tmp_path / f"b{suffix}")
        (loaded,) = load_benchmark(path)
        with pytest.raises(DataError, match="400,000,000 pixels, over the cap"):
            loaded.image.pil()
