"""Curation: pool -> filter (real tiny inspector LLMs) -> select, on real MMStar question texts."""

import json

import pandas as pd
import pytest
from conftest import assert_clean_error, make_samples, run_cli
from mmstar.app.cli import main
from mmstar.curation.report import abnormal_threshold
from mmstar.curation.select import _spread, difficulty, select_balanced

from mmstar.loaders import load_benchmark
from mmstar.sample import Benchmark
from mmstar.writers import write_benchmark


def test_pool_tags_sources_and_drops_exact_duplicates(tmp_path):
    a = write_benchmark(Benchmark("a", make_samples(6)), tmp_path / "a.parquet")
    b_samples = make_samples(4, columns=True)
    b_samples[0] = make_samples(6)[2].with_(index=77)  # same question, options and image as a's index 2
    b = write_benchmark(Benchmark("b", b_samples), tmp_path / "b.tsv")
    proc = run_cli("curate", "pool", f"{a}=SEED:test", f"{b}=MMBench:dev", "--out", str(tmp_path / "pool.parquet"))
    assert proc.returncode == 0, proc.stderr
    pool = load_benchmark(tmp_path / "pool.parquet")
    assert len(pool) == 9 and [s.index for s in pool] == list(range(9))
    assert [s.source for s in pool].count("MMBench") == 3
    assert pool[6].meta["orig_index"] == 1 and pool[6].meta["split"] == "dev"
    assert "dropped 1 exact duplicate" in proc.stdout
    dups = pd.read_csv(tmp_path / "pool.duplicates.csv")
    assert dups.to_dict("records") == [{"source": "MMBench", "index": 77, "duplicate_of_source": "SEED",
                                        "duplicate_of_index": 2}]


def test_pool_refuses_invalid_rows_unless_asked(tmp_path):
    path = tmp_path / "bad.tsv"
    pd.DataFrame([{"index": 0, "question": "Q\nOptions: A: x, B: y", "answer": "A"},
                  {"index": 1, "question": "no options", "answer": "A"}]).to_csv(path, sep="\t", index=False)
    assert_clean_error(run_cli("curate", "pool", str(path), "--out", str(tmp_path / "p.parquet")),
                       "row 2", "--skip-invalid")
    proc = run_cli("curate", "pool", str(path), "--out", str(tmp_path / "p.parquet"), "--skip-invalid")
    assert proc.returncode == 0 and "left out 1 invalid row" in proc.stdout


@pytest.fixture(scope="module")
def reference_pool(tmp_path_factory, reference_xlsx):
    """120 real MMStar questions (text only) as a pool."""
    bench = load_benchmark(reference_xlsx)
    path = tmp_path_factory.mktemp("pool") / "pool.parquet"
    write_benchmark(Benchmark("pool", list(bench)[::12][:120]), path)
    return path


def test_filter_hit_matrix_keep_rule_report_and_resume(tmp_path, tiny_pairs, reference_pool):
    llms = [str(tiny_pairs[f].backbone) for f in ("llava", "qwen2-vl", "gemma3")]
    out = tmp_path / "filter"
    args = ["curate", "filter", str(reference_pool), *[x for m in llms for x in ("--llm", m)], "--lvlm",
            str(tiny_pairs["llava"].vlm), "--max-hits", "1", "--shots", "2", "--out", str(out), "--no-progress",
            "--max-new-tokens", "4", "--batch-size", "16"]
    assert main(args) == 0
    matrix = pd.read_parquet(out / "hits.parquet")
    cols = [c for c in matrix.columns if c not in ("index", "source", "category", "l2_category", "n_hits",
                                                   "n_blind_hits")]
    assert len(cols) == 4 and sum(c.startswith("lvlm:") for c in cols) == 1
    # the matrix agrees with each inspector's own prediction file
    for run_file in (out / "runs").glob("*/pool/*.jsonl"):
        recs = {json.loads(x)["index"]: json.loads(x) for x in run_file.read_text().splitlines()}
        col = next(c for c in cols if c.replace(":", "-") == run_file.parent.parent.name)
        assert all(matrix.set_index("index")[col][i] == recs[i]["hit_official"] for i in recs)
    llm_cols = [c for c in cols if not c.startswith("lvlm:")]
    assert (matrix["n_hits"] == matrix[llm_cols].sum(axis=1)).all()
    kept = load_benchmark(out / "kept.parquet")
    assert {s.index for s in kept} == set(matrix[matrix.n_hits <= 1]["index"])
    if (out / "dropped.parquet").exists():
        assert {s.index for s in load_benchmark(out / "dropped.parquet")} == set(matrix[matrix.n_hits > 1]["index"])
    assert kept[0].meta["filter"]["n_inspectors"] == 3
    report = (out / "report.md").read_text()
    assert "abnormal: hit by at least 3 of 3" in report and "| ALL |" in report
    assert (out / "report.png").read_bytes().startswith(b"\x89PNG")
    # resume: nothing is re-run (the manifests record zero new samples)
    assert main(args) == 0
    for manifest in (out / "runs").glob("*/pool/manifest.json"):
        modes = json.loads(manifest.read_text())["modes"]
        assert all(m["ran"] == 0 and m["done_before"] == 120 for m in modes.values()), manifest


def test_loglik_scoring_agrees_with_generation(tmp_path):
    """On the trained demo base LLM (it answers with a letter), next-token log-likelihood over the
    option letters must pick what greedy generation picks."""
    from mmstar.data import DEMO_MODELS, DEMO_TEST

    base = DEMO_MODELS / "base"
    if not (base / "model.safetensors").exists():
        pytest.skip("demo models not built")
    pool = write_benchmark(Benchmark("pool", list(load_benchmark(DEMO_TEST))[:72]), tmp_path / "pool.parquet")
    common = ["--llm", str(base), "--shots", "0", "--no-progress", "--max-new-tokens", "4", "--batch-size", "24"]
    assert main(["curate", "filter", str(pool), *common, "--out", str(tmp_path / "g")]) == 0
    assert main(["curate", "filter", str(pool), *common, "--scoring", "loglik", "--out", str(tmp_path / "l")]) == 0

    def records(folder):
        path = next((tmp_path / folder).glob("runs/*/pool/t.jsonl"))
        return {r["index"]: r for r in map(json.loads, path.read_text().splitlines())}

    gen, ll = records("g"), records("l")
    assert all(r["prediction"] in "ABCD" and len(r["logprobs"]) == 4 for r in ll.values())
    lettered = [i for i, r in gen.items() if r["choice"] is not None]
    assert len(lettered) >= 60  # the base model answers with a letter
    agree = sum(gen[i]["choice"] == ll[i]["choice"] for i in lettered)
    assert agree == len(lettered)


def test_difficulty_bins_follow_the_paper():
    # of 16 LVLMs: easy 12-16, moderate 8-11, hard 4-7, tough 0-3
    assert [difficulty(k, 16) for k in (16, 12, 11, 8, 7, 4, 3, 0)] == [
        "easy", "easy", "moderate", "moderate", "hard", "hard", "tough", "tough"]
    assert abnormal_threshold(8, 0.75) == 6


def test_selection_is_balanced_deterministic_and_prefers_hard(tmp_path):
    from mmstar.demo_data import generate

    bench = list(generate(per_axis=12, seed=3))
    hits = {s.index: (s.index * 7) % 5 for s in bench}  # 0..4 hits of 4 LVLMs
    a, summary = select_balanced(bench, hits, 4, per_capability=12, seed=5)
    b, _ = select_balanced(bench, hits, 4, per_capability=12, seed=5)
    assert [s.index for s in a] == [s.index for s in b]
    assert all(sum(axes.values()) == 12 and set(axes.values()) == {4} for axes in summary.values())
    chosen = {s.index for s in a}
    for s in a:
        assert s.meta["difficulty"] == difficulty(hits[s.index], 4)
    # no easier sample was picked while a harder one of the same axis was left out
    order = {"tough": 0, "hard": 1, "moderate": 2, "easy": 3}
    for axis in {s.l2_category for s in bench}:
        picked = [order[difficulty(hits[s.index], 4)] for s in bench if s.l2_category == axis and s.index in chosen]
        left = [order[difficulty(hits[s.index], 4)] for s in bench if s.l2_category == axis and s.index not in chosen]
        assert max(picked) <= min(left)
    assert _spread(10, {"x": 2, "y": 10, "z": 10}) == {"x": 2, "y": 4, "z": 4}


def test_select_cli_from_existing_runs(tmp_path):
    from mmstar.demo_data import generate

    kept = write_benchmark(generate(per_axis=6, seed=2), tmp_path / "kept.parquet")
    runs = []
    for m in range(3):
        lines = [{"index": s.index, "prediction": s.answer if (s.index + m) % 3 else "Z", "answer": s.answer,
                  "hit_official": bool((s.index + m) % 3)} for s in load_benchmark(kept)]
        path = tmp_path / f"m{m}.jsonl"
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        runs += ["--runs", str(path)]
    proc = run_cli("curate", "select", str(kept), *runs, "--per-capability", "9", "--out", str(tmp_path / "c.parquet"))
    assert proc.returncode == 0, proc.stderr
    cands = load_benchmark(tmp_path / "c.parquet")
    assert len(cands) == 54 and {s.meta["n_lvlms"] for s in cands} == {3}
    assert_clean_error(run_cli("curate", "select", str(kept), "--out", str(tmp_path / "x.parquet")), "--lvlm")
