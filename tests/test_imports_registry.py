"""Benchmarks by name (cache, checksum, offline) and importing VLMEvalKit / lmms-eval outputs."""

import hashlib
import json

import pandas as pd
import pytest
from conftest import assert_clean_error, make_samples, run_cli
from mmstar.app.cli import main

from mmstar import benchmarks
from mmstar.errors import DataError
from mmstar.loaders import load_benchmark
from mmstar.sample import Benchmark
from mmstar.writers import write_benchmark


def test_registry_lists_the_papers_seven_benchmarks():
    for name in ("mmstar", "mmbench", "seed", "ai2d", "scienceqa", "mmmu", "mathvista"):
        assert name in benchmarks.REGISTRY
    proc = run_cli("benchmarks")
    assert proc.returncode == 0 and "MMBench_DEV_EN.tsv" in proc.stdout


def test_fetch_verifies_caches_and_then_works_offline(tmp_path, monkeypatch):
    src = write_benchmark(Benchmark("x", make_samples(5, columns=True)), tmp_path / "src" / "TOY.tsv")
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    entry = benchmarks.BenchmarkEntry("toy", "toy", "tsv", src.resolve().as_uri(), md5)
    monkeypatch.setitem(benchmarks.REGISTRY, "toy", entry)
    monkeypatch.setenv("MMSTAR_CACHE", str(tmp_path / "cache"))
    bench = load_benchmark("toy")
    assert len(bench) == 5 and bench.name == "toy" and (tmp_path / "cache" / "TOY.tsv").exists()
    src.unlink()  # the "network" is gone; the cached copy is used
    assert len(load_benchmark("toy")) == 5
    (tmp_path / "cache" / "TOY.tsv").write_text("tampered")
    with pytest.raises(DataError, match="does not match the registry"):
        load_benchmark("toy")
    (tmp_path / "cache" / "TOY.tsv").unlink()
    with pytest.raises(DataError, match=r"not cached and cannot be downloaded.*put TOY.tsv \(md5 "):
        load_benchmark("toy")


def test_mc_only_benchmarks_skip_and_count_open_questions(tmp_path, monkeypatch, capsys):
    rows = [{"index": 0, "question": "Q?\nOptions: A: x, B: y", "answer": "A"},
            {"index": 1, "question": "What is 2+2?", "answer": "4"}]
    path = tmp_path / "MV.tsv"
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    entry = benchmarks.BenchmarkEntry("mv", "mv", "tsv", path.resolve().as_uri(), hashlib.md5(path.read_bytes())
                                      .hexdigest(), options="embedded", multiple_choice_only=True)
    monkeypatch.setitem(benchmarks.REGISTRY, "mv", entry)
    monkeypatch.setenv("MMSTAR_CACHE", str(tmp_path / "cache"))
    assert [s.index for s in load_benchmark("mv")] == [0]
    assert "skipped 1 question(s) without options" in capsys.readouterr().err


def test_import_vlmevalkit_reference_file(tmp_path, reference_xlsx):
    import shutil

    f = tmp_path / "llava_next_yi_34b_MMStar.xlsx"
    shutil.copy(reference_xlsx, f)
    proc = run_cli("import", "vlmevalkit", str(f), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr
    assert "official 52.07" in proc.stdout
    run = tmp_path / "runs" / "llava_next_yi_34b" / "MMStar"
    scores = json.loads((run / "scores.json").read_text())
    assert scores["v"]["hits"] == 781 and round(scores["v"]["categories"]["math"], 1) == 53.2
    assert_clean_error(run_cli("import", "vlmevalkit", str(f), "--out", str(tmp_path / "runs")), "already exists")


def test_import_vlmevalkit_mmbench_style_tsv(tmp_path):
    rows = [
        {"index": 1, "question": "Which colour?", "hint": "Look.", "A": "red", "B": "green", "C": "blue", "D": "",
         "answer": "B", "category": "attribute_recognition", "l2-category": "finegrained", "prediction": "B. green"},
        {"index": 2, "question": "How many?", "hint": "", "A": "1", "B": "2", "C": "3", "D": "4", "answer": "D",
         "category": "counting", "l2-category": "finegrained", "prediction": "The answer is 4"},
    ]
    f = tmp_path / "mymodel_MMBench_DEV_EN.tsv"
    pd.DataFrame(rows).to_csv(f, sep="\t", index=False)
    assert main(["import", "vlmevalkit", str(f), "--mode", "wv", "--out", str(tmp_path / "runs")]) == 0
    run = tmp_path / "runs" / "mymodel" / "MMBench_DEV_EN"
    lines = [json.loads(x) for x in (run / "wv.jsonl").read_text().splitlines()]
    assert lines[0]["options"] == {"A": "red", "B": "green", "C": "blue"}  # the 3-option row
    assert [r["hit_official"] for r in lines] == [True, False] and [r["hit"] for r in lines] == [True, True]
    scores = json.loads((run / "scores.json").read_text())
    assert scores["S_wv"] == 50.0 and scores["wv"]["robust_overall"] == 100.0


def test_import_lmms_eval_samples_log(tmp_path):
    lines = []
    for i, (resp, target, score) in enumerate([("A", "A", 1), (["(B) cat"], "B", 1), ([["C."]], "D", 0),
                                               ("The answer is D", "D", 1)]):
        lines.append({"doc_id": i, "target": target, "resps": [[resp]] if isinstance(resp, str) else [resp],
                      "filtered_resps": [resp] if isinstance(resp, str) else resp,
                      "input": f"Q{i}\nOptions: A: a, B: b, C: c, D: d\nAnswer with the option's letter.",
                      "average": {"question_id": 100 + i, "l2_category": "geometry", "score": score}})
    f = tmp_path / "20261126_samples_mmstar.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    proc = run_cli("import", "lmms-eval", str(f), "--model", "qwen", "--out", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr
    # official: A hit, (B) hit, C. miss, "The answer is D" hit; lmms-eval agrees on all four
    assert "official 75.00" in proc.stdout and "lmms-eval per-sample mean (micro) 75.00" in proc.stdout
    assert "lmms-eval headline (mean of axis means, its aggregation) 75.00" in proc.stdout
    assert "differs from our official one: 0" in proc.stdout
    run = tmp_path / "runs" / "qwen" / "mmstar"
    recs = [json.loads(x) for x in (run / "v.jsonl").read_text().splitlines()]
    assert [r["index"] for r in recs] == [100, 101, 102, 103] and recs[0]["category"] == "math"
    bad = tmp_path / "x_samples_t.jsonl"
    bad.write_text('{"doc_id": 0, "target": "A"}\n{broken\n')
    assert_clean_error(run_cli("import", "lmms-eval", str(bad), "--out", str(tmp_path / "r2")), "row 2", "invalid JSON")


def test_eval_over_several_benchmarks_gives_table4_layout(tmp_path, tiny_pairs, capsys):
    from mmstar.demo_data import generate

    a = write_benchmark(generate(per_axis=1, seed=5), tmp_path / "bench_a.parquet")
    b = write_benchmark(Benchmark("b", make_samples(6, columns=True)), tmp_path / "bench_b.tsv")
    pair = tiny_pairs["llava"]
    code = main(["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", f"{a},{b}",
                 "--out", str(tmp_path / "runs"), "--no-progress", "--max-new-tokens", "4"])
    assert code == 0
    out = capsys.readouterr().out
    runs = sorted(p.parent.name for p in (tmp_path / "runs").glob("*/*/manifest.json"))
    assert runs == ["bench_a", "bench_b"]
    table = [ln for ln in out.splitlines() if ln.split()[:1] == ["tiny-llava"]]
    assert [ln.split()[1] for ln in table] == ["bench_a", "bench_b", "average"]


def _lmms_lines(rows):
    """lmms-eval samples lines: per-metric dicts keyed by the capability name and "average"."""
    out = []
    for i, (resp, target, score, cap, axis) in enumerate(rows):
        metric = {"question_id": i, "l2_category": axis, "score": score}
        out.append({"doc_id": i, "target": target, "resps": [[resp]], "filtered_resps": [resp],
                    "input": f"Q{i}\nOptions: A: a, B: b, C: c, D: d", cap: metric, "average": metric})
    return out


def test_lmms_eval_headline_is_its_axis_mean_and_its_results_file_is_read(tmp_path):
    """3 samples on one axis (all right), 1 on another (wrong): the micro mean is 75, lmms-eval's
    headline (mean of the two axis means) is 50, and its results JSON says so too."""
    rows = [("A", "A", 1.0, "math", "geometry")] * 3 + [("B", "C", 0.0, "coarse perception", "image emotion")]
    lines = _lmms_lines(rows)
    for i, line in enumerate(lines):
        line["doc_id"] = line["average"]["question_id"] = i
    folder = tmp_path / "logs" / "qwen"
    folder.mkdir(parents=True)
    f = folder / "20261126_101010_samples_mmstar.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    (folder / "20261126_101010_results.json").write_text(json.dumps(
        {"results": {"mmstar": {"alias": "mmstar", "average,none": 0.5, "math,none": 1.0}}}))
    proc = run_cli("import", "lmms-eval", str(f), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr
    assert "official 75.00" in proc.stdout and "per-sample mean (micro) 75.00" in proc.stdout
    assert "headline (mean of axis means, its aggregation) 50.00" in proc.stdout
    assert "lmms-eval reported 50.00 in " in proc.stdout and "20261126_101010_results.json" in proc.stdout
    manifest = json.loads((tmp_path / "runs" / "qwen" / "mmstar" / "manifest.json").read_text())
    assert manifest["modes"]["v"]["peer_headline"] == 50.0 and manifest["modes"]["v"]["peer_reported"] == 50.0


def test_vlmevalkit_acc_file_is_shown_beside_ours(tmp_path):
    rows = [{"index": i, "question": f"Q{i}?", "A": "x", "B": "y", "answer": "A", "category": "c",
             "l2-category": "d", "prediction": p} for i, p in enumerate(["A", "The answer is (A)", "B"])]
    f = tmp_path / "m_MMBench_DEV_EN.tsv"
    pd.DataFrame(rows).to_csv(f, sep="\t", index=False)
    pd.DataFrame([{"split": "dev", "Overall": 0.6667, "c": 0.6667}]).to_csv(tmp_path / "m_MMBench_DEV_EN_acc.csv",
                                                                           index=False)
    proc = run_cli("import", "vlmevalkit", str(f), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr
    assert "official 33.33, robust 66.67" in proc.stdout and "VLMEvalKit reported 66.67 in" in proc.stdout
    bad = tmp_path / "other_acc.csv"
    bad.write_text("split,Accuracy\ndev,0.5\n")
    assert_clean_error(run_cli("import", "vlmevalkit", str(f), "--acc", str(bad), "--out", str(tmp_path / "r2")),
                       "other_acc.csv", "Overall")
