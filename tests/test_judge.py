"""The LLM judge, with real local judges: the trained demo LLM through the HF backend, the same model
behind `mmstar serve`'s server through the openai backend, and a tiny random model (which names no
option). The judge fills `judge` / `judge_choice` and never touches the extractor's `choice`."""

import json
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import assert_clean_error, run_cli
from mmstar.data import DEMO_MODELS
from mmstar.evaluators.backends.base import GenerationConfig
from mmstar.evaluators.run.judge import JudgeConfig, judge_prompt, parse_judge_reply, run_judge, select

from mmstar.matching import extract_answer
from mmstar.predictions import read_predictions
from mmstar.scoring import score_records

FIXTURE = Path(__file__).parent / "data" / "reasoning_replies.jsonl"
JUDGE = DEMO_MODELS / "base"
needs_demo = pytest.mark.skipif(not (JUDGE / "config.json").exists(), reason="demo models not built")
ENV = {"HF_HUB_OFFLINE": "1"}


def _records():
    return read_predictions(FIXTURE)  # typed records, read afresh on every call


def test_prompt_lists_options_allows_none_and_hides_thinking():
    text = judge_prompt({"A": "red", "B": "blue"}, "<think>secret musing about A</think>\n\nIt is the sky colour.")
    assert "A. red\nB. blue" in text and "none" in text and "It is the sky colour." in text
    assert "secret musing" not in text
    assert parse_judge_reply("none", {"A": "x", "B": "y"}) is None
    assert parse_judge_reply("None of them", {"A": "x", "B": "y"}) is None
    assert parse_judge_reply(" B", {"A": "x", "B": "y"}) == "B"
    assert parse_judge_reply("A or B", {"A": "x", "B": "y"}) is None


def test_selection_unparsed_only_all_and_seeded_audit():
    recs = _records()
    extractions = [extract_answer(r.prediction, r.options) for r in recs]
    unparsed = {i for i, x in enumerate(extractions) if x.choice is None and x.rule != "truncated_reasoning"}
    todo, audit = select(recs, JudgeConfig("m"))
    assert set(todo) == unparsed and not audit
    todo_all, _ = select(recs, JudgeConfig("m", judge_all=True))
    assert len(todo_all) == len(recs) - 1  # all but the truncated reply
    todo_a, audit_a = select(recs, JudgeConfig("m", audit=4, seed=7))
    assert len(audit_a) == 4 and audit_a.isdisjoint(unparsed) and set(todo_a) == unparsed | audit_a
    assert select(recs, JudgeConfig("m", audit=4, seed=7))[1] == audit_a  # seeded
    assert select(recs, JudgeConfig("m", audit=4, seed=8))[1] != audit_a
    # thinking with no answer after it, and failed requests, are never sent: the thinking is no answer
    extra = [replace(recs[0], index=90, prediction="<think>The answer is B.</think>"),
             replace(recs[0], index=91, prediction="", error="timeout")]
    assert select(recs + extra, JudgeConfig("m", judge_all=True))[0] == todo_all


@needs_demo
@pytest.mark.slow
def test_hf_judge_fills_its_fields_and_leaves_the_extractor_alone():
    from mmstar.evaluators.backends.hf import HFBackend

    recs = _records()
    before = [extract_answer(r.prediction, r.options) for r in recs]
    backend = HFBackend(str(JUDGE), "llm", GenerationConfig(max_new_tokens=8), device="cpu")
    stats = run_judge(recs, backend, JudgeConfig(str(JUDGE), audit=3))
    judged = [r for r in recs if r.judge_seen]
    assert stats["sent"] == len(judged) == stats["decided"] + stats["no_option"]
    assert stats["audit"] == sum(r.judge_audit for r in recs) == 3
    for rec, x in zip(recs, before):
        assert extract_answer(rec.prediction, rec.options) == x
        if rec.judge_seen:
            assert rec.judge_choice == parse_judge_reply(rec.judge, rec.options)
            assert "judge_choice" in rec.to_dict()  # written, null or not
    summary = score_records(recs, "robust")
    expect = sum(((x.choice or r.judge_choice) == r.answer) for r, x in zip(recs, before))
    assert summary["robust_judge_overall"] == pytest.approx(100 * expect / len(recs))
    assert summary["judge_decided"] == sum(x.choice is None and r.judge_choice is not None
                                           for r, x in zip(recs, before))
    assert summary["judge_agreement"]["n"] == 3


@needs_demo
@pytest.mark.slow
def test_score_with_judge_through_hf_and_through_serve_agree(tmp_path):
    """The same demo LLM judges through the HF backend and through `mmstar serve` + openai: greedy
    decoding gives the same judge replies, hence the same figures."""
    pytest.importorskip("httpx")  # the openai backend's client (extra "openai")
    from mmstar.evaluators.backends.hf import HFBackend
    from mmstar.evaluators.backends.serve import make_server, serve_in_thread

    local = run_cli("score", str(FIXTURE), "--judge", str(JUDGE), "--judge-audit", "2", "--json", env=ENV)
    assert local.returncode == 0, local.stderr
    via_hf = json.loads(local.stdout)
    backend = HFBackend(str(JUDGE), "llm", GenerationConfig(max_new_tokens=8), device="cpu")
    srv = make_server({"judge-lm": backend}, batch_wait_s=0.0)
    stop = serve_in_thread(srv)
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    try:
        remote = run_cli("score", str(FIXTURE), "--judge", "judge-lm", "--judge-backend", "openai",
                         "--judge-base-url", url, "--judge-audit", "2", "--json", env=ENV)
        assert remote.returncode == 0, remote.stderr
        unknown = run_cli("score", str(FIXTURE), "--judge", "nope", "--judge-backend", "openai",
                          "--judge-base-url", url, env=ENV)
        assert_clean_error(unknown, "judge nope", "404")
    finally:
        stop()
    via_api = json.loads(remote.stdout)
    for key in ("robust_judge_overall", "judge_seen", "judge_decided", "judge_no_option", "judge_agreement"):
        assert via_api[key] == via_hf[key], key
    assert via_hf["judge_seen"] == via_hf["rules"].get("none", 0) + via_hf["rules"].get("ambiguous", 0) + \
        via_hf["rules"].get("refusal", 0) + 2
    assert via_hf["judge"]["prompt_version"] == "mmstar-judge-v1"
    plain = json.loads(run_cli("score", str(FIXTURE), "--json", env=ENV).stdout)
    assert "robust_judge_overall" not in plain and "judge" not in plain
    assert plain["rules"] == via_hf["rules"]


def test_judge_bad_input_gets_one_clear_line(tmp_path):
    assert_clean_error(run_cli("score", str(FIXTURE), "--judge", "no-such-judge", env=ENV), "no-such-judge")
    assert_clean_error(run_cli("score", str(FIXTURE), "--judge-all", env=ENV), "--judge-all needs --judge")
    missing = run_cli("score", str(FIXTURE), "--judge", str(tmp_path / "absent"), env=ENV)
    assert_clean_error(missing, "absent")


def test_a_judge_server_that_refuses_gets_one_clear_line():
    pytest.importorskip("httpx")
    with socket.socket() as s:  # a port nobody listens on: the server refuses the connection
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = run_cli("score", str(FIXTURE), "--judge", "m", "--judge-backend", "openai",
                      "--judge-base-url", f"http://127.0.0.1:{port}/v1", env=ENV)
    assert_clean_error(refused, "judge m (openai) failed", "Connect")


def test_a_judge_failing_after_import_leaves_the_run_as_it_was(tmp_path):
    """No half-judged files: the run keeps its imported records and its manifest names no judge."""
    pytest.importorskip("httpx")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lines = [{"doc_id": r.index, "target": r.answer, "resps": [[r.prediction]], "input": r.question,
              "average": {"question_id": r.index, "l2_category": r.l2_category, "score": 0.0}}
             for r in _records()]
    f = tmp_path / "x_samples_mmstar.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    failed = run_cli("import", "lmms-eval", str(f), "--model", "m", "--out", str(tmp_path / "runs"), "--judge", "m",
                     "--judge-backend", "openai", "--judge-base-url", f"http://127.0.0.1:{port}/v1", env=ENV)
    assert_clean_error(failed, "judge m (openai) failed")
    run_dir = tmp_path / "runs" / "m" / "mmstar"
    recs = [json.loads(x) for x in (run_dir / "v.jsonl").read_text().splitlines()]
    assert len(recs) == 20 and not any("judge" in r or "judge_choice" in r for r in recs)
    assert "judge" not in json.loads((run_dir / "manifest.json").read_text())


@pytest.mark.slow
def test_a_judge_that_names_no_option_is_counted_not_an_error(tiny_pairs, tmp_path):
    """A tiny random LLM as judge: its replies name no option; judge_choice is null and counted."""
    out = run_cli("score", str(FIXTURE), "--judge", str(tiny_pairs["llava"].backbone), "--json", env=ENV)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["judge_seen"] == summary["judge_no_option"] + summary["judge_decided"] > 0
    assert summary["judge_no_option"] > 0


@needs_demo
@pytest.mark.slow
def test_eval_with_judge_writes_fields_manifest_and_side_by_side_scores(tmp_path, demo_parquet):
    clean = DEMO_MODELS / "clean"
    args = ("eval", "--model", str(clean), "--backbone", str(JUDGE), "--data", str(demo_parquet), "--modes", "v,t",
            "--limit", "12", "--out", str(tmp_path), "--no-progress", "--batch-size", "12")
    plain = run_cli(*args, env={**ENV, "OMP_NUM_THREADS": "1"})
    assert plain.returncode == 0, plain.stderr
    run_dir = next(p.parent for p in tmp_path.rglob("scores.json"))
    scores_plain = json.loads((run_dir / "scores.json").read_text())
    assert "robust_judge" not in scores_plain and "judge" not in json.loads((run_dir / "manifest.json").read_text())
    judged = run_cli(*args, "--judge", str(JUDGE), "--judge-all", env={**ENV, "OMP_NUM_THREADS": "1"})
    assert judged.returncode == 0, judged.stderr
    assert "robust+judge" in judged.stdout
    scores = json.loads((run_dir / "scores.json").read_text())
    for key in ("S_v", "S_t", "MG", "ML"):
        assert scores[key] == scores_plain[key]  # the official figures do not move
    assert set(scores["robust_judge"]) >= {"S_v", "S_t", "judge_decided"}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["judge"]["prompt_version"] == "mmstar-judge-v1" and manifest["judge"]["judge_all"]
    recs = [json.loads(x) for x in (run_dir / "v.jsonl").read_text().splitlines()]
    assert all("judge_choice" in r and "extract_rule" in r for r in recs)
    from mmstar.metrics.leaderboard import format_table, publish

    row = publish([run_dir])[0]
    assert row["S_v_robust_judge"] == round(scores["robust_judge"]["S_v"], 2)
    assert row["S_v_official"] == round(scores["S_v"], 2) and row["S_v_robust"] == round(scores["robust"]["S_v"], 2)
    assert row["judge_decided_v"] == scores["robust_judge"]["judge_decided"]["v"]
    assert "S_v_robust_judge" in format_table([row])


@needs_demo
@pytest.mark.slow
def test_import_with_judge(tmp_path):
    """lmms-eval samples with reasoning-style replies, imported and judged in one command."""
    recs = _records()[10:18]  # three unparsed replies and a truncated one among them
    lines = [{"doc_id": r.index, "target": r.answer, "resps": [[r.prediction]],
              "filtered_resps": [r.prediction], "input": r.question,
              "average": {"question_id": r.index, "l2_category": r.l2_category, "score": 0.0}} for r in recs]
    f = tmp_path / "x_samples_mmstar.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = run_cli("import", "lmms-eval", str(f), "--model", "m", "--out", str(tmp_path / "runs"), "--judge", str(JUDGE),
                  env=ENV)
    assert out.returncode == 0, out.stderr
    assert "robust+judge" in out.stdout
    run_dir = tmp_path / "runs" / "m" / "mmstar"
    scores = json.loads((run_dir / "scores.json").read_text())
    assert scores["v"]["judge_seen"] == scores["v"]["unparsed"] - scores["v"]["rules"].get("truncated_reasoning", 0) > 0
    assert json.loads((run_dir / "manifest.json").read_text())["judge"]["model"] == str(JUDGE)
