"""Run directories written by mmstar 0.1.0 keep loading with identical figures.

``tests/data/runs-0.1.0/`` was written by the 0.1.0 code (commit b13ca56, installed from its wheel;
``make_fixture.sh`` there says how): demo runs (one judged with --judge-all, one tiny random model
judged on its unparsed replies plus an audit, one with samples lacking an image, so failed v
requests), a VLMEvalKit and an lmms-eval import, the leaderboard CSVs and JSON, and ``mmstar score
--json`` of each v.jsonl. Everything here is recomputed by today's code from the prediction files and
must equal what 0.1.0 wrote, exactly."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from mmstar.app.cli import main
from mmstar.metrics.leaderboard import build_rows, write_csv
from mmstar.viewer import data

from mmstar.records import SCHEMA_0_1_0, SCHEMA_VERSION, Manifest, read_records
from mmstar.runs import open_run

FIXTURE = Path(__file__).parent / "data" / "runs-0.1.0"
RUN_DIRS = sorted(p.parent for p in (FIXTURE / "rundirs").glob("*/*/manifest.json"))
# What today's code adds beside 0.1.0's figures, named one by one: every 0.1.0 figure must still be
# there and equal, and nothing else may appear. Per mode summary (scores.json, mmstar score --json):
ADDED_SUMMARY_KEYS = {"format_compliance"}  # % of replies the official matcher can read (issue 21.3)
# leaderboard columns, appended after 0.1.0's:
ADDED_COLUMNS = ["format_v", "format_wv", "format_t"]


def _without_additions(summary):
    """A per-mode summary less the keys added since 0.1.0 (each must be present, a percentage or None)."""
    if summary is None:
        return None
    out = dict(summary)
    for key in ADDED_SUMMARY_KEYS:
        value = out.pop(key)
        assert value is None or 0 <= value <= 100, (key, value)
    return out


def _scores_without_additions(scores):
    return {k: _without_additions(v) if k in ("v", "wv", "t") else v for k, v in scores.items()}


def test_the_fixture_is_what_0_1_0_wrote():
    assert (FIXTURE / "written-by.txt").read_text().strip() == "0.1.0"
    assert len(RUN_DIRS) == 7
    for run_dir in RUN_DIRS:
        manifest = Manifest.from_json((run_dir / "manifest.json").read_text())
        assert manifest.schema == SCHEMA_0_1_0 and "schema" not in (run_dir / "manifest.json").read_text()
        for file in run_dir.glob("*.jsonl"):
            assert {r.schema for r in read_records(file)} == {SCHEMA_0_1_0}


@pytest.mark.parametrize("run_dir", RUN_DIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scores_equal_what_0_1_0_wrote(run_dir):
    assert _scores_without_additions(open_run(run_dir).scores) == json.loads((run_dir / "scores.json").read_text())


def test_a_0_1_0_run_reads_and_rewrites_without_losing_a_key(tmp_path):
    for run_dir in RUN_DIRS:
        run = open_run(run_dir)
        text = (run_dir / "manifest.json").read_text()
        assert run.manifest.to_json() == text.replace("{\n", f'{{\n  "schema": {SCHEMA_VERSION},\n', 1)
        for mode, records in run.records.items():
            lines = [json.loads(x) for x in (run_dir / f"{mode}.jsonl").read_text().splitlines()]
            for line, rec in zip(lines, records, strict=True):
                written = rec.to_dict()
                assert written.pop("schema") == SCHEMA_VERSION
                assert {k: v for k, v in written.items() if k in line} == line  # nothing lost, nothing changed


def test_leaderboard_rows_equal_what_0_1_0_wrote(tmp_path):
    for matcher, name in (("official", "leaderboard.csv"), ("robust", "leaderboard-robust.csv")):
        rows = build_rows([open_run(d) for d in RUN_DIRS], matcher)
        old_header = (FIXTURE / name).read_text().splitlines()[0].split(",")
        write_csv(rows, tmp_path / name, fields=old_header)  # 0.1.0's columns: byte for byte
        assert (tmp_path / name).read_text() == (FIXTURE / name).read_text(), matcher
        write_csv(rows, tmp_path / name)  # today's: 0.1.0's columns, then the additions, and no other change
        assert (tmp_path / name).read_text().splitlines()[0].split(",") == old_header + ADDED_COLUMNS
    rows = build_rows([open_run(d) for d in RUN_DIRS])
    assert all(set(ADDED_COLUMNS) <= set(r) for r in rows)
    rows = [{k: v for k, v in r.items() if k not in ADDED_COLUMNS} for r in rows]
    assert json.loads(json.dumps(rows)) == json.loads((FIXTURE / "leaderboard.json").read_text())


def test_the_viewer_shows_the_0_1_0_leaderboard_figures():
    view = data.load([FIXTURE / "rundirs"])
    want = json.loads((FIXTURE / "leaderboard.json").read_text())
    got = view.leaderboard("official")
    assert len(got) == len(want)
    for row, ref in zip(got, want):
        assert {k: row[k] for k in ref} == ref
    # the judged runs: the viewer's judge matcher is scores.json's robust_judge, figure for figure
    for key in ("contaminated / test", "tiny-llava / test"):
        scores = view.run(key).run.scores
        assert view.summary(key, "v", "judge")["overall"] == scores["robust_judge"]["S_v"]
        assert view.summary(key, "v", "judge")["judge_decided"] == scores["robust_judge"]["judge_decided"]["v"]


@pytest.mark.parametrize("run_dir", [d for d in RUN_DIRS if (d / "v.jsonl").exists()],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_mmstar_score_json_equals_what_0_1_0_printed(run_dir, capsys):
    assert main(["score", str(run_dir / "v.jsonl"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert _without_additions(printed) == json.loads((run_dir / "v.score.json").read_text())


def test_importing_the_peer_logs_again_gives_the_same_records_and_scores(tmp_path):
    from mmstar.app.peerlogs import import_lmms_eval, import_vlmevalkit

    peer = FIXTURE / "peer"
    v = import_vlmevalkit(peer / "demo-peer_MMStar.xlsx", tmp_path, "v")
    t = import_lmms_eval(peer / "demo-lmms" / "20250101_120000_samples_mmstar.jsonl", tmp_path, "t")
    for result, mode in ((v, "v"), (t, "t")):
        old_dir = FIXTURE / "rundirs" / result.run_dir.parent.name / result.run_dir.name
        old, new = open_run(old_dir), open_run(result.run_dir)
        assert [replace(r, schema=SCHEMA_VERSION) for r in old.records[mode]] == new.records[mode]
        assert result.scores == new.scores
        assert _scores_without_additions(new.scores) == json.loads((old_dir / "scores.json").read_text())
        moved = ("imported", "imported_from", "peer_reported_from")  # when and from where: this test's paths
        old_stats = {k: v for k, v in old.manifest.modes[mode].to_dict().items() if k not in moved and v is not None}
        assert {k: v for k, v in new.manifest.modes[mode].to_dict().items() if k not in moved} == old_stats


def test_a_0_1_0_run_resumes_without_loading_a_model(tmp_path):
    """The finished 0.1.0 run, resumed by today's runner: same identity, nothing pending, same scores.
    It ran on 0.1.0's demo benchmark (one option order per question type), regenerated byte for byte
    here: the bundled one has each sample's own option order since."""
    from mmstar.evaluators.backends.base import GenerationConfig
    from mmstar.evaluators.run.runner import EvalConfig, run_eval

    from mmstar.demo_data import generate
    from mmstar.loaders import load_benchmark
    from mmstar.prompts import PromptConfig
    from mmstar.writers import write_benchmark

    old_dir = FIXTURE / "rundirs" / "clean" / "test"
    shutil.copytree(old_dir, tmp_path / "clean" / "test")
    old = Manifest.from_json((old_dir / "manifest.json").read_text())
    config = EvalConfig(model=old.model, backbone=old.backbone, prompt=PromptConfig("official", 0),
                        gen=GenerationConfig(max_new_tokens=8), batch_size=8, model_label="clean", limit=18,
                        progress=False, dtype="float32")

    def no_model(model_id, kind):
        raise AssertionError(f"nothing is pending, yet {kind} {model_id} was loaded")

    data = write_benchmark(generate(per_axis=20, seed=0, split="test"), tmp_path / "data-0.1.0" / "test.parquet")
    run_dir, scores = run_eval(load_benchmark(str(data)), config, tmp_path, no_model, model_slug="clean")
    assert run_dir == tmp_path / "clean" / "test"
    assert _scores_without_additions(scores) == json.loads((old_dir / "scores.json").read_text())
    new = Manifest.from_json((run_dir / "manifest.json").read_text())
    assert new.schema == SCHEMA_VERSION and set(old.to_dict()) <= set(new.to_dict())
    assert all(new.get(k) == old.get(k) for k in ("model", "backbone", "decoding", "dtype", "dataset_fingerprint"))
    assert new.modes["v"].done_before == 18 and new.modes["v"].started == old.modes["v"].started
    for mode in ("v", "wv", "t"):  # the prediction files are untouched
        assert (run_dir / f"{mode}.jsonl").read_bytes() == (old_dir / f"{mode}.jsonl").read_bytes()
