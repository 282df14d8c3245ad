import base64
import json
import time

import pandas as pd
import pytest
from conftest import make_samples, png_bytes

from mmstar.errors import DataError
from mmstar.loaders import load_benchmark
from mmstar.sample import Benchmark
from mmstar.writers import write_benchmark

FORMATS = ["b.parquet", "b.tsv", "b.jsonl", "saved"]


def _same(a: Benchmark, b: Benchmark) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x == y, (x, y)
    assert a.fingerprint() == b.fingerprint()


@pytest.mark.parametrize("columns", [False, True], ids=["embedded", "columns"])
@pytest.mark.parametrize("first", FORMATS)
def test_round_trip_through_every_format(tmp_path, first, columns):
    original = Benchmark("demo", make_samples(7, columns=columns))
    path = write_benchmark(original, tmp_path / "one" / first)
    loaded = load_benchmark(path)
    _same(original, loaded)
    for second in FORMATS:
        again = load_benchmark(write_benchmark(loaded, tmp_path / "two" / second))
        _same(original, again)


def test_xlsx_has_no_images_but_keeps_the_rest(tmp_path):
    original = Benchmark("demo", make_samples(5))
    loaded = load_benchmark(write_benchmark(original, tmp_path / "sub.xlsx"))
    assert [s.image for s in loaded] == [None] * 5
    assert [s.with_(image=None, meta={}) for s in original] == [s.with_(meta={}) for s in loaded]


def test_images_are_not_decoded_on_load(tmp_path, monkeypatch):
    write_benchmark(Benchmark("demo", make_samples(4)), tmp_path / "b.tsv")
    import PIL.Image

    def refuse(*a, **k):
        raise AssertionError("an image was decoded during load")

    monkeypatch.setattr(PIL.Image, "open", refuse)
    bench = load_benchmark(tmp_path / "b.tsv")
    bench.fingerprint()  # hashes encoded bytes, does not decode
    monkeypatch.undo()
    assert bench[0].image.pil().size == (16, 16)


def _tsv(tmp_path, rows, name="v.tsv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


def _b64(color):
    return base64.b64encode(png_bytes(color)).decode()


def test_vlmevalkit_tsv_pointers_hint_and_three_options(tmp_path):
    rows = [
        {"index": 10, "question": "Q1", "hint": "", "A": "a", "B": "b", "C": "c", "D": "d", "answer": "A",
         "category": "ocr", "l2-category": "text", "image": _b64((1, 2, 3))},
        {"index": 11, "question": "Q2", "hint": "H", "A": "a", "B": "b", "C": "c", "D": "", "answer": "C",
         "category": "ocr", "l2-category": "text", "image": "10"},
    ]
    bench = load_benchmark(_tsv(tmp_path, rows))
    s10, s11 = bench
    assert s11.options == {"A": "a", "B": "b", "C": "c"} and not s11.options_embedded
    assert s11.hint == "H" and s10.hint is None
    assert s11.l2_category == "text"
    assert s11.image.data() == s10.image.data()


def test_dangling_pointer_names_file_and_row(tmp_path):
    rows = [{"index": 1, "question": "Q\nOptions: A: x, B: y", "answer": "A", "image": "99"}]
    with pytest.raises(DataError, match=r"v.tsv, row 1: image pointer '99' names no row"):
        load_benchmark(_tsv(tmp_path, rows))


def test_jsonl_image_paths_cannot_escape_the_folder(tmp_path):
    (tmp_path / "secret.png").write_bytes(png_bytes((0, 0, 0)))
    root = tmp_path / "ds"
    root.mkdir()
    line = {"index": 0, "question": "Q\nOptions: A: x, B: y", "answer": "A", "image": "../secret.png"}
    (root / "b.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(DataError, match=r"row 1: image path '../secret.png' escapes the dataset folder"):
        load_benchmark(root / "b.jsonl")
    line["image"] = "/etc/passwd"
    (root / "b.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(DataError, match="escapes the dataset folder"):
        load_benchmark(root / "b.jsonl")


def test_bad_rows_name_the_row(tmp_path):
    rows = [
        {"index": 0, "question": "Q\nOptions: A: x, B: y", "answer": "A"},
        {"index": "seven", "question": "Q\nOptions: A: x, B: y", "answer": "A"},
    ]
    with pytest.raises(DataError, match=r"row 2: index 'seven' is not an integer"):
        load_benchmark(_tsv(tmp_path, rows))
    rows[1] = {"index": 1, "question": "no options here", "answer": "A"}
    with pytest.raises(DataError, match=r"row 2: index 1: cannot parse options"):
        load_benchmark(_tsv(tmp_path, rows))


def test_missing_columns_and_unknown_types(tmp_path):
    path = _tsv(tmp_path, [{"idx": 1, "q": "x"}])
    with pytest.raises(DataError, match="missing column"):
        load_benchmark(path)
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported file type"):
        load_benchmark(tmp_path / "x.csv")
    with pytest.raises(DataError, match="no such file"):
        load_benchmark(tmp_path / "missing.tsv")


def test_hub_unreachable_fails_fast_with_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        load_benchmark("Lin-Chen/MMStar")
    assert time.monotonic() - start < 30
    message = str(info.value)
    assert "\n" not in message and "Lin-Chen/MMStar" in message and "save_to_disk" in message


def test_hub_schema_from_a_saved_dataset(tmp_path):
    """The released schema: meta_info{source, split, image_path}, Image feature."""
    import datasets

    rows = {
        "index": [0, 1],
        "question": ["Q0\nOptions: A: x, B: y", "Q1\nOptions: A: x, B: y"],
        "image": [{"bytes": png_bytes((9, 9, 9)), "path": None}] * 2,
        "answer": ["A", "B"],
        "category": ["math", "math"],
        "l2_category": ["geometry", "geometry"],
        "meta_info": [{"source": "MathVista", "split": "testmini", "image_path": "images/1.jpg"}] * 2,
    }
    ds = datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image())
    datasets.DatasetDict({"val": ds}).save_to_disk(str(tmp_path / "mmstar"))
    bench = load_benchmark(tmp_path / "mmstar")
    assert [s.source for s in bench] == ["MathVista", "MathVista"]
    assert bench[1].meta == {"split": "testmini", "image_path": "images/1.jpg"}
    assert bench[0].image.pil().size == (16, 16)


def test_reference_submission_loads(reference_xlsx):
    bench = load_benchmark(reference_xlsx)
    assert len(bench) == 1500
    assert bench[855].options == {"A": "A", "B": "B", "C": "C"}
    assert {s.source for s in bench} >= {"MMBench", "MathVista", "SEEDBench_IMG"}
