"""`mmstar data validate|info|convert` and `mmstar score` through the real command."""

import json

import pandas as pd
import pytest
from conftest import assert_clean_error, make_samples, png_bytes, run_cli

from mmstar.sample import Benchmark
from mmstar.writers import write_benchmark


def _b64(color):
    import base64

    return base64.b64encode(png_bytes(color)).decode()


def test_validate_reports_every_problem_with_its_row(tmp_path):
    good = _b64((1, 1, 1))
    q = "Q\nOptions: A: x, B: y, C: z, D: nan"
    rows = [
        {"index": 0, "question": q, "answer": "A", "category": "math", "l2_category": "geometry", "image": good},
        {"index": 1, "question": q, "answer": "A", "category": "maths", "l2_category": "geometry", "image": good},
        {"index": 2, "question": q, "answer": "A", "category": "math", "l2_category": "recognition", "image": good},
        {"index": 3, "question": q, "answer": "E", "category": "math", "l2_category": "geometry", "image": good},
        {"index": 3, "question": q, "answer": "B", "category": "math", "l2_category": "geometry", "image": good},
        {"index": 5, "question": q, "answer": "B", "category": "math", "l2_category": "geometry", "image": ""},
        {"index": 6, "question": q, "answer": "B", "category": "math", "l2_category": "geometry",
         "image": "bm90IGFuIGltYWdlIGF0IGFsbCwganVzdCBzb21lIHRleHQgdGhhdCBpcyBsb25nIGVub3VnaA=="},
        {"index": 7, "question": q, "answer": "B", "category": "math", "l2_category": "geometry", "image": "42"},
        {"index": 8, "question": "no options", "answer": "B", "category": "math", "l2_category": "geometry",
         "image": good},
    ]
    path = tmp_path / "bad.tsv"
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    proc = run_cli("data", "validate", str(path))
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    expected = [
        "row 2: index 1: unknown category 'maths'",
        "row 3: index 2: l2_category 'recognition' belongs to 'fine-grained perception'",
        "row 4: index 3: answer 'E' is not among the options",
        "row 4: index 3: duplicate index (rows 4, 5)",
        "row 6: index 5: missing image",
        "row 7: index 6: corrupt or unsupported image",
        "row 8: image pointer '42' names no row with an image",
        "row 9: index 8: cannot parse options",
        "row 1: index 0: option D is the literal text 'nan'",
    ]
    for fragment in expected:
        assert fragment in out, (fragment, out)
    assert "INVALID" in out and "Traceback" not in proc.stderr


def test_validate_and_info_on_a_clean_file(tmp_path):
    path = write_benchmark(Benchmark("demo", make_samples(12)), tmp_path / "ok.parquet")
    proc = run_cli("data", "validate", str(path))
    assert proc.returncode == 0 and ": valid" in proc.stdout, proc.stdout
    info = run_cli("data", "info", str(path))
    assert info.returncode == 0
    assert "12 samples, 12 with images" in info.stdout
    assert "      2  math" in info.stdout and "     12  demo" in info.stdout


def test_validate_taxonomy_only_for_mmstar_data(tmp_path):
    rows = [{"index": i, "question": "Q", "A": "x", "B": "y", "answer": "A", "category": "ocr",
             "l2-category": "text"} for i in range(3)]
    path = tmp_path / "mmbench.tsv"
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    assert run_cli("data", "validate", str(path)).returncode == 0
    forced = run_cli("data", "validate", str(path), "--taxonomy", "mmstar")
    assert forced.returncode == 1 and "unknown category 'ocr'" in forced.stdout


def test_convert_round_trip_via_cli(tmp_path):
    src = write_benchmark(Benchmark("demo", make_samples(6)), tmp_path / "a.tsv")
    proc = run_cli("data", "convert", str(src), str(tmp_path / "b.jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "b_images" / "0.png").exists()
    proc = run_cli("data", "convert", str(tmp_path / "b.jsonl"), str(tmp_path / "c.parquet"))
    assert proc.returncode == 0, proc.stderr
    from mmstar.loaders import load_benchmark

    assert load_benchmark(src).fingerprint() == load_benchmark(tmp_path / "c.parquet").fingerprint()


def test_score_reference_matches_the_paper(reference_xlsx):
    proc = run_cli("score", str(reference_xlsx), "--json")
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert set(s) == {"overall", "macro", "n", "hits", "unparsed", "categories", "l2_categories", "rules",
                      "format_compliance"}
    assert s["format_compliance"] == 100.0  # every reply of the real submission starts with its letter
    assert sum(s["rules"].values()) == s["n"]
    assert (s["hits"], s["n"]) == (781, 1500)
    assert round(s["overall"], 2) == 52.07
    cats = {k: round(v, 1) for k, v in s["categories"].items()}
    assert cats == {"coarse perception": 65.6, "fine-grained perception": 52.0, "instance reasoning": 62.4,
                    "logical reasoning": 46.0, "science & technology": 33.2, "math": 53.2}
    assert len(s["l2_categories"]) == 18
    assert s["macro"] == pytest.approx(sum(s["l2_categories"].values()) / 18)
    table = run_cli("score", str(reference_xlsx))
    assert "overall 52.07  (781/1500" in table.stdout and "statistical reasoning" in table.stdout
    assert "unparsed 0" in table.stdout


def test_score_our_jsonl_with_both_matchers(tmp_path):
    lines = [
        {"index": 0, "prediction": "The answer is (B)", "answer": "B", "category": "math", "l2_category": "geometry",
         "question": "Q\nOptions: A: x, B: y", "error": None},
        {"index": 1, "prediction": "A", "answer": "A", "category": "math", "l2_category": "geometry",
         "question": "Q\nOptions: A: x, B: y", "error": None},
        {"index": 2, "prediction": "", "answer": "A", "category": "math", "l2_category": "geometry",
         "question": "Q\nOptions: A: x, B: y", "error": "CUDA out of memory"},
        {"index": 3, "prediction": "I can't tell", "answer": "A", "category": "math", "l2_category": "geometry",
         "question": "Q\nOptions: A: x, B: y", "error": None},
    ]
    path = tmp_path / "v.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    official = json.loads(run_cli("score", str(path), "--json").stdout)
    robust = json.loads(run_cli("score", str(path), "--json", "--matcher", "robust").stdout)
    assert (official["hits"], robust["hits"]) == (1, 2)
    assert official["unparsed"] == robust["unparsed"] == 1  # index 3; the error row is not "unparsed"


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ('{"index": 0, "prediction": "A", "answer": "A"}\nnot json\n{"index": 2}\n', ["row 2", "invalid"]),
        ('{"index": 0, "prediction": "A"}\n', ["row 1", "lacks answer"]),
        ('{"index": 0, "prediction": "A", "answer": "A"}\n{"index": 0, "prediction": "B", "answer": "A"}\n',
         ["row 2", "more than once"]),
    ],
)
def test_score_bad_input_is_one_clear_line(tmp_path, content, fragments):
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    assert_clean_error(run_cli("score", str(path)), str(path), *fragments)


def test_score_ignores_a_torn_last_line(tmp_path):
    path = tmp_path / "v.jsonl"
    path.write_text('{"index": 0, "prediction": "A", "answer": "A"}\n{"index": 1, "predic')
    proc = run_cli("score", str(path), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["n"] == 1
    assert "torn last line 2" in proc.stderr


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["score", "nope.jsonl"], ["nope.jsonl", "no such prediction file"]),
        (["data", "info", "nope.parquet"], ["nope.parquet", "no such file"]),
        (["data", "validate", "missing/dir/x.tsv"], ["no such file"]),
        (["data", "convert", "nope.tsv", "out.parquet"], ["nope.tsv"]),
    ],
)
def test_commands_fail_with_one_line(args, fragments, tmp_path):
    assert_clean_error(run_cli(*args, cwd=tmp_path), *fragments)


def test_corrupt_files_fail_with_one_line(tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"PAR1 not really")
    assert_clean_error(run_cli("data", "info", str(tmp_path / "x.parquet")), "x.parquet", "parquet")
    (tmp_path / "x.xlsx").write_bytes(b"garbage")
    assert_clean_error(run_cli("score", str(tmp_path / "x.xlsx")), "x.xlsx", "xlsx")
    (tmp_path / "x.tsv").write_bytes(b"\xff\xfe\x00bad")
    assert_clean_error(run_cli("data", "info", str(tmp_path / "x.tsv")), "x.tsv")
