"""Review app: the store (append-only, concurrent), consensus and kappa, export, and the Streamlit
app through AppTest."""

import json
import os

import pytest

from mmstar.errors import MmstarError
from mmstar.loaders import load_benchmark
from mmstar.writers import write_benchmark

pytest.importorskip("streamlit")
pytest.importorskip("sqlalchemy")

from mmstar.review_app.export import export
from mmstar.review_app.store import Store, Vote, fleiss_kappa, status

APP = os.path.join(os.path.dirname(__file__), "..", "review_app", "app.py")
SCRIPT_Q = "<script>window.pwned=1</script><b>bold</b> What colour?\nOptions: A: red, B: green, C: blue, D: yellow"


@pytest.fixture
def candidates(tmp_path):
    from mmstar.demo_data import generate

    bench = generate(per_axis=2, seed=0)
    bench._samples[0] = bench[0].with_(question=SCRIPT_Q)
    bench._samples[1] = bench[1].with_(meta={**bench[1].meta, "filter": {
        "text_only_hits": ["qwen2-7b"], "blind_lvlm_hits": ["llava"], "n_hits": 1, "n_inspectors": 8}})
    return write_benchmark(bench, tmp_path / "cands.parquet")


def _vote(r, d, cat=None, axis=None, i=0):
    return Vote(r, d, None if d == "keep" else "other", cat, axis, {}, "", i)


def test_consensus_rules():
    keep = ("math", "geometry")
    assert status({}) == "unreviewed"
    assert status({"a": _vote("a", "keep", *keep)}) == "needs votes"
    assert status({"a": _vote("a", "keep", *keep), "b": _vote("b", "keep", *keep)}) == "accepted"
    assert status({"a": _vote("a", "keep", *keep), "b": _vote("b", "keep", "math", "statistical reasoning")}) == \
        "disputed"
    assert status({"a": _vote("a", "keep", *keep), "b": _vote("b", "drop")}) == "disputed"
    assert status({"a": _vote("a", "drop"), "b": _vote("b", "drop")}) == "rejected"
    assert status({"a": _vote("a", "keep", *keep), "b": _vote("b", "keep", *keep)}, quorum=3) == "needs votes"


def test_fleiss_kappa_known_values():
    assert fleiss_kappa([["k", "k"], ["d", "d"], ["k", "k"]]) == pytest.approx(1.0)
    # Fleiss (1971)-style check: 2 raters, perfect disagreement on balanced categories -> -1
    assert fleiss_kappa([["k", "d"], ["d", "k"]]) == pytest.approx(-1.0)
    assert fleiss_kappa([["k"]]) is None


def test_store_is_append_only_and_validates(tmp_path):
    store = Store(str(tmp_path / "r.db"))
    store.add_decision(3, "alice", "keep", category="math", l2_category="geometry")
    store.add_decision(3, "alice", "drop", reason="ambiguous")
    assert [r["decision"] for r in store.all_rows()] == ["keep", "drop"]
    assert store.latest_votes()[3]["alice"].decision == "drop"
    with pytest.raises(MmstarError, match="one of its axes"):
        store.add_decision(3, "bob", "keep", category="math", l2_category="recognition")
    with pytest.raises(MmstarError, match="needs a reason"):
        store.add_decision(3, "bob", "drop")
    with pytest.raises(MmstarError, match="invalid reviewer name"):
        store.add_decision(3, "<img src=x>", "drop", reason="other")
    form_key = "t1"  # a form's double-submit key
    assert store.add_decision(4, "bob", "drop", reason="other", client_token=form_key) is not None
    assert store.add_decision(4, "bob", "drop", reason="other", client_token=form_key) is None  # double submit
    assert len(store.all_rows()) == 3
    mode = store.engine.connect().exec_driver_sql("PRAGMA journal_mode").scalar()
    assert mode == "wal"


def test_two_concurrent_writer_processes_lose_nothing(tmp_path):
    from reliability import finish_writers, start_writers

    db = str(tmp_path / "c.db")
    Store(db)
    counts = finish_writers(start_writers(db, ["alice", "bob"], count=150), timeout=120)
    assert counts == [150, 150]
    rows = Store(db).all_rows()
    assert len(rows) == 300 and len({r["id"] for r in rows}) == 300
    assert sorted((r["reviewer"], r["sample_index"]) for r in rows) == sorted(
        (n, i) for n in ("alice", "bob") for i in range(150))
    # every decision has its audit row, written in the decision's own transaction
    audited = [r["detail"]["decision_id"] for r in Store(db).audit_rows() if r["event"] == "decision"]
    assert sorted(audited) == sorted(r["id"] for r in rows)


def test_export_applies_corrections_and_is_loadable(tmp_path, candidates):
    db = str(tmp_path / "r.db")
    store = Store(db)
    store.set_setting("candidates", str(candidates))
    bench = load_benchmark(candidates)
    s = bench[2]
    store.add_decision(s.index, "alice", "keep", category="math", l2_category="geometry",
                       corrections={"answer": "D", "question": s.question.replace("emotion", "feeling")})
    store.add_decision(s.index, "bob", "keep", category="math", l2_category="geometry")
    store.add_decision(bench[3].index, "alice", "keep", category="math", l2_category="geometry")
    store.add_decision(bench[3].index, "bob", "drop", reason="ambiguous")
    paths, n = export(db, tmp_path / "out")
    assert n == 1 and len(paths) == 3
    for path in paths:
        (got,) = list(load_benchmark(path))
        assert got.answer == "D" and "feeling" in got.question and got.l2_category == "geometry"
        assert got.meta["original"]["answer"] == s.answer and got.image == s.image


def test_app_records_a_decision_and_shows_html_as_text(tmp_path, candidates, monkeypatch):
    from streamlit.testing.v1 import AppTest

    db = tmp_path / "app.db"
    monkeypatch.setenv("MMSTAR_REVIEW_CANDIDATES", str(candidates))
    monkeypatch.setenv("MMSTAR_REVIEW_DB", str(db))
    monkeypatch.setenv("MMSTAR_REVIEW_REVIEWER", "alice")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any(t.value.startswith("<script>window.pwned=1</script><b>bold</b>") for t in at.text)
    assert not [m for m in at.markdown if "<script>" in m.value]
    # the axis list follows the capability
    at.selectbox(key="s0-cap").set_value("math").run()
    assert at.selectbox(key="s0-axis").options == ["geometry", "numeric commonsense and calculation",
                                                    "statistical reasoning"]
    at.selectbox(key="s0-axis").set_value("statistical reasoning").run()
    at.text_input(key="s0-oB").set_value("dark green").run()
    at.button(key="s0-submit").click().run()
    assert not at.exception
    rows = Store(str(db)).all_rows()
    assert len(rows) == 1 and rows[0]["reviewer"] == "alice" and rows[0]["l2_category"] == "statistical reasoning"
    assert json.loads(rows[0]["corrections"]) == {"options": {"A": "red", "B": "dark green", "C": "blue",
                                                              "D": "yellow"}}
    # the flow moved on to the next sample needing alice's vote, which shows the filter evidence
    assert any("Text-only inspector hits (1/8): qwen2-7b" in t.value for t in at.text)
    at.radio(key="s1-decision").set_value("drop").run()
    at.selectbox(key="s1-reason").set_value("answerable without the image").run()
    at.button(key="s1-submit").click().run()
    assert [r["reason"] for r in Store(str(db)).all_rows()] == [None, "answerable without the image"]
    # filters: nothing is disputed yet; "needs my vote" hides what alice voted on
    at.selectbox(key="f_status").set_value("disputed").run()
    assert any("no sample matches" in i.value for i in at.info)
    at.selectbox(key="f_status").set_value("needs my vote").run()
    assert "sample 1 of 34" in at.caption[-1].value or any("of 34 matching" in c.value for c in at.caption)


def test_review_cli_errors_and_stats(tmp_path, candidates):
    from conftest import assert_clean_error, run_cli

    assert_clean_error(run_cli("review", str(tmp_path / "missing.parquet"), "--db", str(tmp_path / "x.db")),
                       "missing.parquet")
    assert_clean_error(run_cli("review", str(candidates), "--db", str(tmp_path / "x.db"), "--reviewer", "a b"),
                       "invalid reviewer name")
    store = Store(str(tmp_path / "s.db"))
    for r in ("alice", "bob"):
        store.add_decision(0, r, "keep", category="math", l2_category="geometry")
        store.add_decision(1, r, "drop", reason="other")
    proc = run_cli("review", "stats", "--db", str(tmp_path / "s.db"))
    assert proc.returncode == 0, proc.stderr
    assert "4 decisions by 2 reviewer(s)" in proc.stdout and "accepted 1" in proc.stdout
    assert "Fleiss' kappa keep/drop 1.000" in proc.stdout
    assert_clean_error(run_cli("review", "export", "--db", str(tmp_path / "s.db"), "--out", str(tmp_path / "o")),
                       "candidates")
