"""Fuzzed inputs for every reader: each case ends in a correct load or one clear error naming the
file (and the row where there is one) — never another exception, a hang or a partial output."""

import base64
import json
import string

import pytest
from conftest import make_samples, png_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmstar.errors import MmstarError
from mmstar.loaders import load_benchmark
from mmstar.predictions import read_predictions
from mmstar.sample import Benchmark
from mmstar.validate import validate_table
from mmstar.writers import write_benchmark

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
cell = st.one_of(text, st.integers(-5, 10**12).map(str), st.just(""), st.just("nan"), st.text(max_size=3000))


def _must_be_clean(fn, path):
    """Run ``fn``; a failure must be our one-line error naming the file."""
    try:
        return fn()
    except MmstarError as exc:
        msg = str(exc)
        assert path.name in msg, msg
        assert "\n" not in msg.strip(), msg
        return None


@SETTINGS
@given(rows=st.lists(st.fixed_dictionaries({
    "index": cell, "question": cell, "answer": cell, "category": cell, "A": cell, "B": cell,
    "image": st.one_of(cell, st.just(base64.b64encode(png_bytes((1, 2, 3))).decode()),
                       st.just(base64.b64encode(png_bytes((1, 2, 3))[:40]).decode())),
}), max_size=6))
def test_tsv_rows(tmp_path_factory, rows):
    import pandas as pd

    path = tmp_path_factory.mktemp("f") / "x.tsv"
    pd.DataFrame(rows or [{"index": "0"}]).to_csv(path, sep="\t", index=False)
    bench = _must_be_clean(lambda: load_benchmark(path), path)
    from mmstar.loaders import read_table

    table = _must_be_clean(lambda: read_table(path), path)
    if table is not None:
        _samples, problems = validate_table(table)  # images decoded: corrupt ones become problems
        assert all(p.row is None or 1 <= p.row <= len(table.rows) for p in problems)
    if bench is not None:
        assert len(bench) == len(rows or [1])


@SETTINGS
@given(lines=st.lists(st.one_of(
    st.dictionaries(st.sampled_from(["index", "question", "answer", "image", "options", "options_embedded"]),
                    st.one_of(cell, st.integers(), st.none(), st.booleans(), st.lists(st.integers(), max_size=2),
                              st.just("../../etc/passwd"), st.just("/etc/hosts")), max_size=6).map(json.dumps),
    text, st.just("{"), st.just("[1, 2]")), max_size=5))
def test_jsonl_lines(tmp_path_factory, lines):
    root = tmp_path_factory.mktemp("j")
    path = root / "x.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    _must_be_clean(lambda: load_benchmark(path), path)


def test_an_image_path_with_a_nul_is_one_clear_error(tmp_path):
    """Found by test_jsonl_lines: {"image": "\\u0000"} raised a bare ValueError from pathlib."""
    from mmstar.errors import DataError

    path = tmp_path / "x.jsonl"
    path.write_text('{"index": 1, "question": "Q?\\nOptions: A: a, B: b", "answer": "A", "image": "\\u0000"}\n')
    with pytest.raises(DataError, match="NUL character"):
        load_benchmark(path)


@SETTINGS
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".parquet", ".xlsx", ".tsv", ".jsonl"]))
def test_random_bytes_in_every_format(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("b") / f"x{suffix}"
    path.write_bytes(data)
    _must_be_clean(lambda: load_benchmark(path), path)


@SETTINGS
@given(cut=st.integers(1, 5000), flip=st.integers(0, 255))
def test_truncated_and_corrupt_files(tmp_path_factory, cut, flip):
    root = tmp_path_factory.mktemp("t")
    for suffix in (".parquet", ".xlsx", ".tsv"):
        good = write_benchmark(Benchmark("x", make_samples(3)), root / f"good{suffix}")
        data = bytearray(good.read_bytes())
        bad = root / f"bad{suffix}"
        damaged = data[: min(cut, len(data) - 1)]
        if damaged:
            damaged[len(damaged) // 2] ^= flip
        bad.write_bytes(bytes(damaged))
        bench = _must_be_clean(lambda bad=bad: load_benchmark(bad), bad)
        if bench is not None:
            for s in bench:  # a load that succeeds may still hold a damaged image: it fails cleanly
                if s.image is not None:
                    _must_be_clean(s.image.pil, bad)


@SETTINGS
@given(lines=st.lists(st.one_of(
    st.dictionaries(st.sampled_from(["index", "prediction", "answer", "question", "category", "error"]),
                    st.one_of(cell, st.integers(), st.none(), st.floats(allow_nan=True)), max_size=6).map(json.dumps),
    st.text(alphabet=string.printable, max_size=30)), max_size=6))
def test_prediction_files(tmp_path_factory, lines):
    from mmstar.scoring import score_records

    path = tmp_path_factory.mktemp("p") / "v.jsonl"
    path.write_text("\n".join(lines) + "\n")
    records = _must_be_clean(lambda: read_predictions(path), path)
    if records is not None:
        summary = score_records(records)
        assert summary["n"] == len(records)


def test_huge_field_and_wrong_encoding(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"index": 0, "question": "Q" * 2_000_000 + "\nOptions: A: x, B: y", "answer": "A"}))
    assert len(load_benchmark(path)) == 1
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"index": 0, "question": "caf\xe9\\nOptions: A: x, B: y", "answer": "A"}'.encode("latin-1"))
    with pytest.raises(MmstarError, match=r"latin.jsonl: not UTF-8"):
        load_benchmark(latin)
    utf16 = tmp_path / "u.tsv"
    utf16.write_text("index\tquestion\tanswer\n0\tQ\tA\n", encoding="utf-16")
    with pytest.raises(MmstarError, match=r"u\.tsv"):
        load_benchmark(utf16)
