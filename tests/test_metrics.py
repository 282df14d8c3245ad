"""Metrics and publishing, on run directories built from prediction JSONL files."""

import json
import random

import pandas as pd
import pytest
from conftest import assert_clean_error, run_cli
from mmstar.metrics.leaderboard import COLUMNS, build_rows
from mmstar.metrics.leakage import BenchScores, average_gain_leakage, leakage_rows
from mmstar.metrics.uncertainty import bootstrap_paired_difference, bootstrap_score

from mmstar.runs import open_run, write_manifest
from mmstar.scoring import gain_and_leakage
from mmstar.taxonomy import CAPABILITIES

QUESTION = "Q\nOptions: A: a, B: b, C: c, D: d"


def _record(i, correct, answer="A", cap=None, source="SEED"):
    cap = cap or CAPABILITIES[i % 6]
    wrong = "B" if answer != "B" else "C"
    return {"index": i, "prediction": answer if correct else wrong, "answer": answer, "category": cap.name,
            "l2_category": cap.axes[i % 3].name, "source": source, "question": f"{QUESTION} #{i}", "error": None}


def make_run(root, model, bench, hits_by_mode, shots=2):
    run_dir = root / model / bench
    run_dir.mkdir(parents=True)
    for mode, hits in hits_by_mode.items():
        lines = [_record(i, h) for i, h in enumerate(hits)]
        (run_dir / f"{mode}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    write_manifest(run_dir, {"model_label": model, "benchmark": bench, "prompt": "official", "shots": shots})
    return run_dir


def _hits(n, k, seed):
    """n samples of which exactly k are hits, in a seeded order."""
    hits = [True] * k + [False] * (n - k)
    random.Random(seed).shuffle(hits)
    return hits


# ------------------------------------------------------------------ the paper's arithmetic


@pytest.mark.parametrize(
    ("llm", "lvlm_text", "lvlm", "mg", "ml"),
    [(29.9, 29.9, 34.4, 4.5, 0.0),   # LLaVA-1.5-7B, MMMU (Table 7 -> Table 4)
     (32.6, 37.5, 65.6, 28.1, 4.9),  # LLaVA-1.5-7B, SEED
     (20.3, 22.7, 52.1, 29.4, 2.4)],  # LLaVA-Next-34B, MMStar
)
def test_paper_per_benchmark_mg_ml(llm, lvlm_text, lvlm, mg, ml):
    got_mg, got_ml = gain_and_leakage(lvlm, lvlm_text, llm)
    assert round(got_mg, 1) == mg and round(got_ml, 1) == ml


def test_paper_gpt4v_average_over_seven_benchmarks():
    mgs = [8.5, 52.0, 13.2, 12.8, 43.2, 19.3, 32.6]
    mls = [3.9, 5.4, 3.9, 2.8, 18.3, 1.2, 1.3]
    benches = [BenchScores(s_v=40 + mg, s_wv=40.0, s_t=40.0 - ml) for mg, ml in zip(mgs, mls)]
    mg, ml = average_gain_leakage(benches)
    assert round(mg, 1) == 25.9 and round(ml, 1) == 5.3


def test_ml_is_clipped_per_benchmark_before_averaging():
    benches = [BenchScores(50, 30, 35), BenchScores(50, 30, 20)]  # S_wv - S_t: -5 and +10
    assert average_gain_leakage(benches) == (20.0, 5.0)  # not (10 + -5) / 2 = 2.5


# ------------------------------------------------------------------ intervals


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    hits = dict(enumerate(_hits(200, 120, 0)))
    a, b = bootstrap_score(hits, seed=3), bootstrap_score(hits, seed=3)
    assert a == b and a.estimate == 60.0 and a.low < 60 < a.high
    assert 50 < a.low and a.high < 70  # about +-6.8 points for n=200, p=0.6


def test_paired_difference_flags_intervals_spanning_zero():
    v = dict(enumerate(_hits(300, 200, 1)))
    same = bootstrap_paired_difference(v, v)
    assert same.estimate == 0 and same.low == same.high == 0 and same.spans_zero
    wv = dict(enumerate(_hits(300, 80, 2)))
    big = bootstrap_paired_difference(v, wv)
    assert round(big.estimate, 6) == round(100 * (200 - 80) / 300, 6) and not big.spans_zero
    near = dict(v)
    for k in list(near)[:3]:
        near[k] = not near[k]
    assert bootstrap_paired_difference(v, near).spans_zero


# ------------------------------------------------------------------ leaderboard


def test_leaderboard_rows_average_and_stale_scores_json(tmp_path):
    a = make_run(tmp_path, "m1", "bench1", {"v": _hits(60, 45, 1), "wv": _hits(60, 30, 2), "t": _hits(60, 33, 3)})
    b = make_run(tmp_path, "m1", "bench2", {"v": _hits(60, 30, 4), "wv": _hits(60, 24, 5), "t": _hits(60, 15, 6)})
    (a / "scores.json").write_text(json.dumps({"S_v": 99.0, "MG": 99.0}))  # stale: must be ignored
    rows = build_rows([open_run(a), open_run(b)])
    r1, r2, avg = rows
    assert (r1["S_v"], r1["S_wv"], r1["S_t"], r1["MG"], r1["ML"]) == (75.0, 50.0, 55.0, 25.0, 0.0)
    assert (r2["S_v"], r2["S_wv"], r2["S_t"], r2["MG"], r2["ML"]) == (50.0, 40.0, 25.0, 10.0, 15.0)
    assert avg["benchmark"] == "average" and avg["MG"] == 17.5 and avg["ML"] == 7.5 and avg["n"] == 120
    assert r1["S_v_low"] < 75 < r1["S_v_high"] and r1["shots"] == 2
    assert r1["wv_minus_t"] == -5.0 and r1["ML_spans_zero"] is True


def test_leaderboard_cli_writes_csv_plots_submission_and_leakage(tmp_path, reference_xlsx):
    # a run whose v predictions are the reference submission's: per-capability scores must match the paper
    ref = pd.read_excel(reference_xlsx, dtype=str, keep_default_na=False)
    run_dir = tmp_path / "runs" / "llava-next-34b" / "MMStar"
    run_dir.mkdir(parents=True)
    base = [{"index": int(r["index"]), "question": r["question"], "answer": r["answer"], "category": r["category"],
             "l2_category": r["l2_category"], "source": r["bench"], "error": None} for r in ref.to_dict("records")]
    v = [{**b, "prediction": p} for b, p in zip(base, ref["prediction"])]
    wv = [{**b, "prediction": b["answer"] if i % 5 == 0 else "Z"} for i, b in enumerate(base)]
    t = [{**b, "prediction": b["answer"] if i % 10 == 0 else "Z"} for i, b in enumerate(base)]
    for mode, lines in (("v", v), ("wv", wv), ("t", t)):
        (run_dir / f"{mode}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    other = make_run(tmp_path / "runs", "toy", "MMStar", {"v": _hits(60, 40, 1), "wv": _hits(60, 20, 2)})
    out = tmp_path / "pub"
    proc = run_cli("leaderboard", str(run_dir), str(other), "--csv", str(out / "lb.csv"), "--radar",
                   str(out / "radar.png"), "--mg-ml", str(out / "mgml.png"), "--submission", str(out / "sub"),
                   "--leakage", str(out / "leak.csv"))
    assert proc.returncode == 0, proc.stderr
    lb = pd.read_csv(out / "lb.csv")
    assert list(lb.columns) == COLUMNS
    row = lb[lb.model == "llava-next-34b"].iloc[0]
    assert (row.S_v, row.CP, row.FP, row.IR, row.LR, row.ST, row.MA) == (52.07, 65.6, 52.0, 62.4, 46.0, 33.2, 53.2)
    assert (row.S_wv, row.S_t, row.MG, row.ML) == (20.0, 10.0, 32.07, 10.0)
    assert "average" not in set(lb.benchmark)  # one benchmark per model: no average row
    # submission files: the reference's columns, and they score like the run
    files = sorted(p.name for p in (out / "sub").iterdir())
    assert files == ["llava-next-34b_MMStar.xlsx", "llava-next-34b_MMStar_llm_base.xlsx",
                     "llava-next-34b_MMStar_wo_image.xlsx", "toy_MMStar.xlsx", "toy_MMStar_wo_image.xlsx"]
    sub = pd.read_excel(out / "sub" / "llava-next-34b_MMStar.xlsx", dtype=str, keep_default_na=False)
    assert list(sub.columns) == list(ref.columns)
    assert sub.equals(ref)
    scored = json.loads(run_cli("score", str(out / "sub" / "llava-next-34b_MMStar.xlsx"), "--json").stdout)
    assert scored["hits"] == 781
    leak = pd.read_csv(out / "leak.csv", keep_default_na=False)
    mine = leak[leak.model == "llava-next-34b"]
    assert len(mine) == 300 and set(mine["index"]) == {i for i in range(1500) if i % 5 == 0}
    assert (mine.backbone_missed == "True").sum() == 150  # t hits every 10th: half of the wv hits
    for png in ("radar.png", "mgml.png"):
        data = (out / png).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 20_000


def test_leakage_rows_need_both_modes(tmp_path):
    run = open_run(make_run(tmp_path, "m", "b", {"wv": [True, False, True]}))
    rows = leakage_rows(run)
    assert [r["index"] for r in rows] == [0, 2] and rows[0]["backbone_missed"] == ""


def test_leaderboard_bad_input_is_one_line(tmp_path):
    assert_clean_error(run_cli("leaderboard", str(tmp_path / "nope"), "--csv", str(tmp_path / "x.csv")),
                       "nope", "not a run directory")
    (tmp_path / "empty").mkdir()
    assert_clean_error(run_cli("leaderboard", str(tmp_path / "empty"), "--csv", str(tmp_path / "x.csv")),
                       "holds no v.jsonl")
    bad = make_run(tmp_path, "m", "b", {"v": [True, True]})
    with open(bad / "v.jsonl", "a") as fh:
        fh.write('{"index": 0, "prediction": "A", "answer": "A"}\n')
    assert_clean_error(run_cli("leaderboard", str(bad), "--csv", str(tmp_path / "x.csv")),
                       "v.jsonl", "row 3", "more than once")
    assert not (tmp_path / "x.csv").exists()
