"""The review app's login gate through Streamlit's AppTest: nothing of the data before a login, one-time
passwords replaced, sessions that end, attribution to the session's account, blind review and leads."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("sqlalchemy")

from mmstar.review_app.accounts import GENERIC_FAILURE, Accounts
from mmstar.review_app.gate import plain
from mmstar.review_app.store import Store

APP = os.path.join(os.path.dirname(__file__), "..", "review_app", "app.py")
NEW_PASSWORD = "correct horse battery"  # noqa: S105  a test account's password, on a throwaway store
MARK = "Zanzibar-marker"  # in every candidate's question: its absence shows no sample text reached the page


@pytest.fixture
def team(tmp_path, monkeypatch):
    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    bench = generate(per_axis=1, seed=0)
    for i, s in enumerate(bench):
        bench._samples[i] = s.with_(question=f"{MARK} {i}. {s.question}")
    cands = write_benchmark(bench, tmp_path / "cands.parquet")
    db = str(tmp_path / "team.db")
    accounts = Accounts(Store(db))
    passwords = {name: accounts.add(name, role, actor="cli:test")
                 for name, role in (("alice", "reviewer"), ("bob", "reviewer"), ("carol", "lead"))}
    monkeypatch.setenv("MMSTAR_REVIEW_CANDIDATES", str(cands))
    monkeypatch.setenv("MMSTAR_REVIEW_DB", db)
    monkeypatch.setenv("MMSTAR_REVIEW_REVIEWER", "")
    return db, passwords


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=60).run()


def _page_text(at) -> str:
    """Every element the script sent, as protobuf text: labels, values, options, captions and all."""
    out = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def _login(at, name: str, password: str):
    at.text_input(key="login-user").input(name)
    at.text_input(key="login-password").input(password)
    return at.button(key="FormSubmitter:login-Log in").click().run()


def _first_login(at, name: str, password: str):
    _login(at, name, password)
    at.text_input(key="pw-new").input(NEW_PASSWORD)
    at.text_input(key="pw-repeat").input(NEW_PASSWORD)
    return at.button(key="FormSubmitter:choose-password-Set password").click().run()


def _assert_login_page_only(at, me: str | None = None) -> None:
    """Only the login (or choose-a-password) form: no sample, count or reviewer name but one's own."""
    text = _page_text(at)
    assert not at.exception
    assert MARK not in text and "Ground truth" not in text and "of 18" not in text and "index 0" not in text
    assert not [n for n in ("alice", "bob", "carol", "lead1", "solo") if n in text and n != me], text
    assert len(at.sidebar.children) == 0  # no filters, counts or progress either
    assert [b.label for b in at.button] in (["Log in"], ["Set password"])


def test_nothing_but_the_login_form_until_a_valid_login(team):
    _db, passwords = team
    at = _app()
    _assert_login_page_only(at)
    at.query_params["reviewer"] = "alice"  # naming a reviewer in the URL opens nothing
    at.session_state["reviewer"] = "alice"
    at.run()
    _assert_login_page_only(at)
    _login(at, "alice", "not her password")
    assert [e.value for e in at.error] == [plain(GENERIC_FAILURE)]
    _assert_login_page_only(at)
    _login(at, "alice", "")
    assert [e.value for e in at.error] == ["empty password"]
    # the one-time password only leads to choosing a password: still no data
    _login(at, "alice", passwords["alice"])
    assert any("one-time password" in i.value for i in at.info)
    _assert_login_page_only(at, me="alice")
    at.text_input(key="pw-new").input("")
    at.button(key="FormSubmitter:choose-password-Set password").click().run()
    assert [e.value for e in at.error] == ["empty password"]
    at.text_input(key="pw-new").input(NEW_PASSWORD)
    at.text_input(key="pw-repeat").input(NEW_PASSWORD)
    at.button(key="FormSubmitter:choose-password-Set password").click().run()
    assert not at.exception
    assert MARK in _page_text(at) and any(c.value == "signed in as alice (reviewer)" for c in at.sidebar.text)


def test_repeated_failures_lock_the_account(team):
    at = _app()
    db, passwords = team
    for _ in range(5):  # locked and unknown names get the same line as a wrong password
        _login(at, "bob", "guess")
        assert [e.value for e in at.error] == [plain(GENERIC_FAILURE)]
    assert Accounts(Store(db)).get("bob").locked_until is not None
    _login(at, "bob", passwords["bob"])  # the right password, too late
    assert [e.value for e in at.error] == [plain(GENERIC_FAILURE)]
    _assert_login_page_only(at)


def test_session_expiry_logout_and_disable_end_access(team):
    db, passwords = team
    store = Store(db)
    at = _first_login(_app(), "alice", passwords["alice"])
    assert MARK in _page_text(at)
    with store.engine.begin() as conn:  # the session table's clock says the session is over
        conn.execute(store.sessions.update().values(expires="2000-01-01T00:00:00.000000+00:00"))
    at.run()
    _assert_login_page_only(at)
    assert any("session has ended" in i.value for i in at.info)
    _login(at, "alice", NEW_PASSWORD)
    assert MARK in _page_text(at)
    at.sidebar.button(key="logout").click().run()
    _assert_login_page_only(at)
    _login(at, "alice", NEW_PASSWORD)
    Accounts(store).disable("alice", actor="cli:test")
    at.run()
    _assert_login_page_only(at)
    events = [r["event"] for r in store.audit_rows()]
    assert events.count("login") == 3 and "logout" in events and "password_change" in events


def test_decision_goes_to_the_session_account_whatever_the_page_claims(team):
    db, passwords = team
    store = Store(db)
    at = _first_login(_app(), "alice", passwords["alice"])
    # a tampered page: the display-only reviewer field, a URL parameter and a stray state key all say bob
    at.session_state["reviewer-shown"] = "bob"
    at.session_state["reviewer"] = "bob"
    at.query_params["reviewer"] = "bob"
    at.button(key="s0-submit").click().run()
    assert not at.exception
    (row,) = store.all_rows()
    alice = Accounts(store).get("alice")
    assert row["reviewer"] == "alice" and row["account_id"] == alice.id and row["kind"] == "vote"
    tampered = [r for r in store.audit_rows() if r["event"] == "tampered_form"]
    assert [(r["account"], r["detail"]["claimed_reviewer"]) for r in tampered] == [("alice", "bob")]
    assert any("recorded as alice" in w.value for w in at.warning)


def test_reviewers_are_blind_and_a_lead_sees_all_and_adjudicates(team):
    db, passwords = team
    store = Store(db)
    alice = _first_login(_app(), "alice", passwords["alice"])
    alice.button(key="s0-submit").click().run()
    bob = _first_login(_app(), "bob", passwords["bob"])
    text = _page_text(bob)
    assert f"{MARK} 0." in text and "alice" not in text  # sample 0, with no trace of alice's vote
    assert bob.selectbox(key="f_status").options == ["all", "needs my vote", "voted by me"]
    assert "kappa" not in text.lower() and "Accepted per axis" not in text
    bob.radio(key="s0-decision").set_value("drop").run()
    bob.selectbox(key="s0-reason").set_value("ambiguous").run()
    bob.button(key="s0-submit").click().run()
    bob.button(key="prev").click().run()
    text = _page_text(bob)
    assert "Your vote: drop (ambiguous)" in text and "alice" not in text
    assert not [b for b in bob.button if b.key == "s0-adjudicate"]  # reviewers cannot adjudicate
    carol = _first_login(_app(), "carol", passwords["carol"])
    text = _page_text(carol)
    assert "alice: keep" in text and "bob: drop (ambiguous)" in text and "kappa" in text.lower()
    assert "disputed" in carol.selectbox(key="f_status").options
    carol.button(key="s0-adjudicate").click().run()
    assert not at_exception(carol)
    adj = store.adjudications()[0]
    assert adj.reviewer == "carol" and adj.account_id == Accounts(store).get("carol").id
    assert set(store.latest_votes()[0]) == {"alice", "bob"}  # the adjudication is not a third vote
    carol.button(key="prev").click().run()
    assert "Adjudicated by carol: keep" in _page_text(carol)


def at_exception(at) -> list:
    return list(at.exception)


def test_a_store_without_accounts_is_single_user_and_switches_to_login_once_accounts_exist(tmp_path, monkeypatch):
    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    cands = write_benchmark(generate(per_axis=1, seed=0), tmp_path / "c.parquet")
    db = str(tmp_path / "solo.db")
    monkeypatch.setenv("MMSTAR_REVIEW_CANDIDATES", str(cands))
    monkeypatch.setenv("MMSTAR_REVIEW_DB", db)
    monkeypatch.setenv("MMSTAR_REVIEW_REVIEWER", "")
    at = _app()
    assert any("--reviewer NAME" in e.value for e in at.error) and not at.text
    monkeypatch.setenv("MMSTAR_REVIEW_REVIEWER", "solo")
    at = _app()
    at.button(key="s0-submit").click().run()
    (row,) = Store(db).all_rows()
    assert row["reviewer"] == "solo" and row["account_id"] is None
    assert Store(db).audit_rows()[-1]["actor"] == "local:solo"
    Accounts(Store(db)).add("lead1", "lead", actor="cli:test")
    at.run()  # the running app now asks for a login; the --reviewer name no longer opens anything
    _assert_login_page_only(at)
