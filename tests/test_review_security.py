"""Issue 32's account findings: the lockout reserves each attempt before the password check (no race),
locked and unknown names get the same line after the same work, an unknown name's typed text never reaches
the audit trail, OIDC needs a verified e-mail and binds the provider's subject, and notices that quote data
escape markdown. The ``check_*`` functions take a store URL; tests/test_review_postgres.py runs them on a
real PostgreSQL server too."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest

pytest.importorskip("sqlalchemy")

from mmstar.review_app import accounts as accounts_module
from mmstar.review_app.accounts import GENERIC_FAILURE, Accounts, LoginError
from mmstar.review_app.store import Store

WRONG = 20  # concurrent wrong logins
LIMIT = 5


def check_concurrent_wrong_logins_get_at_most_the_limit(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = Accounts(Store(db), max_failures=LIMIT)
    accounts.add("alice", actor="cli:test")
    real = accounts_module.verify_password
    checked: list[int] = []
    lock = threading.Lock()

    def counting(password: str, hashed: str, salt: str, params: str) -> bool:
        if hashed != accounts_module._DUMMY[0]:  # a check against the account's own hash
            with lock:
                checked.append(1)
            time.sleep(0.2)  # a slow hash widens the window in which the guesses overlap
        return real(password, hashed, salt, params)

    monkeypatch.setattr(accounts_module, "verify_password", counting)
    start = threading.Barrier(WRONG)
    answers: list[str] = []

    def guess(i: int) -> None:
        start.wait()
        try:
            Accounts(Store(db), max_failures=LIMIT).login("alice", f"wrong guess {i}")
        except LoginError as exc:
            answers.append(str(exc))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(WRONG)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert 1 <= len(checked) <= LIMIT, f"{len(checked)} password checks for {WRONG} concurrent guesses"
    assert len(answers) == WRONG and set(answers) == {GENERIC_FAILURE}
    assert accounts.get("alice").locked_until is not None
    events = Store(db).audit_rows()
    assert sum(r["event"] == "lockout" for r in events) == 1
    assert sum(r["detail"].get("why") == "wrong password" for r in events) == len(checked)
    assert sum(r["detail"].get("why") == "locked" for r in events) == WRONG - len(checked)


def check_oidc_needs_a_verified_email_and_binds_the_subject(db: str) -> None:
    store = Store(db)
    accounts = Accounts(store)
    accounts.add("alice@example.org", actor="cli:test")
    for verified in (False, None, "false", "", 1):
        with pytest.raises(LoginError, match="not verified"):
            accounts.identity_login("alice@example.org", subject="https://idp 111", email_verified=verified)
    token = accounts.identity_login("alice@example.org", subject="https://idp 111", email_verified=True)
    assert accounts.session_account(token).name == "alice@example.org"  # bound now
    with pytest.raises(LoginError, match="bound to another identity"):
        accounts.identity_login("alice@example.org", subject="https://idp 999", email_verified=True)
    with pytest.raises(LoginError, match="no subject"):
        accounts.identity_login("alice@example.org", subject="", email_verified=True)
    again = accounts.identity_login("alice@example.org", subject="https://idp 111", email_verified="true")
    assert accounts.session_account(again) is not None
    accounts.reset("alice@example.org", actor="cli:test")  # a lead clears the binding
    assert accounts.identity_login("alice@example.org", subject="https://idp 999", email_verified=True)
    whys = [r["detail"].get("why") for r in store.audit_rows() if r["event"] == "login_failed"]
    assert whys == ["e-mail not verified"] * 5 + ["another subject"]


def check_locked_and_unknown_names_get_the_same_answer_and_work(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = Accounts(Store(db), max_failures=2)
    accounts.add("alice", actor="cli:test")
    for _ in range(2):
        with pytest.raises(LoginError):
            accounts.login("alice", "wrong guess")
    assert accounts.get("alice").locked_until is not None
    real = accounts_module._scrypt
    costs: list[tuple[int, int, int]] = []

    def counting(password: str, salt: bytes, params: dict[str, int]) -> bytes:
        costs.append((params["n"], params["r"], params["p"]))
        return real(password, salt, params)

    monkeypatch.setattr(accounts_module, "_scrypt", counting)
    answers = {}
    for case, name in (("locked", "alice"), ("unknown", "nobody-here"), ("wrong", "alice")):
        if case == "wrong":
            accounts.reset("alice", actor="cli:test")
        costs.clear()
        with pytest.raises(LoginError) as err:
            accounts.login(name, "some guess")
        answers[case] = (str(err.value), list(costs))
    assert answers["locked"] == answers["unknown"] == answers["wrong"]
    assert answers["unknown"] == (GENERIC_FAILURE, [(2**14, 8, 1)])  # one scrypt each, at the same cost


def check_unknown_names_are_not_stored(db: str) -> None:
    store = Store(db)
    accounts = Accounts(store)
    accounts.add("alice", actor="cli:test")
    typed = "Hunter2-typed-into-the-name"  # a password typed into the name field
    with pytest.raises(LoginError):
        accounts.login(typed, "whatever", ip="10.0.0.9")
    rows = store.audit_rows()
    assert typed.lower() not in json.dumps(rows, default=str).lower()
    failed = [r for r in rows if r["event"] == "login_failed"]
    assert len(failed) == 1 and failed[0]["detail"] == {"ip": "10.0.0.9", "why": "unknown user"}


def test_concurrent_wrong_logins_get_at_most_the_limit_sqlite(tmp_path, monkeypatch):
    check_concurrent_wrong_logins_get_at_most_the_limit(str(tmp_path / "r.db"), monkeypatch)


def test_oidc_needs_a_verified_email_and_binds_the_subject_sqlite(tmp_path):
    check_oidc_needs_a_verified_email_and_binds_the_subject(str(tmp_path / "r.db"))


def test_locked_and_unknown_names_get_the_same_answer_and_work_sqlite(tmp_path, monkeypatch):
    check_locked_and_unknown_names_get_the_same_answer_and_work(str(tmp_path / "r.db"), monkeypatch)


def test_unknown_names_are_not_stored_sqlite(tmp_path):
    check_unknown_names_are_not_stored(str(tmp_path / "r.db"))


def test_store_from_before_oidc_binding_gains_the_column(tmp_path):
    db = tmp_path / "old.db"
    Accounts(Store(str(db))).add("alice@example.org", actor="cli:test")
    with sqlite3.connect(db) as conn:  # the accounts table as 0.2.0 made it
        conn.execute("ALTER TABLE accounts DROP COLUMN oidc_subject")
    accounts = Accounts(Store(str(db)))
    assert accounts.identity_login("alice@example.org", subject="idp 1", email_verified=True)


def test_notices_quoting_data_render_no_markdown():
    from markdown_it import MarkdownIt
    from mmstar.review_app.gate import plain

    data = "[log in again](http://evil.example/x) ![p](http://evil.example/p.png) **b** <img src=x> http://evil.example"
    html = MarkdownIt("commonmark").render(plain(f"image cannot be shown: {data}"))
    assert "<a" not in html and "<img" not in html and "<strong" not in html
    assert "[log in again](http://evil.example/x)" in html  # the characters themselves are all there


def test_oidc_gate_in_the_app_needs_a_verified_email_and_the_bound_subject(tmp_path, monkeypatch):
    """Through the app (AppTest's simulated ``st.user``): the claims the provider sent decide."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest
    from test_review_login import APP, MARK, _page_text

    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    bench = generate(per_axis=1, seed=0)
    for i, s in enumerate(bench):
        bench._samples[i] = s.with_(question=f"{MARK} {i}. {s.question}")
    cands = write_benchmark(bench, tmp_path / "cands.parquet")
    db = str(tmp_path / "team.db")
    Accounts(Store(db)).add("alice@example.org", actor="cli:test")
    for key, value in (("CANDIDATES", str(cands)), ("DB", db), ("REVIEWER", ""), ("AUTH", "oidc")):
        monkeypatch.setenv(f"MMSTAR_REVIEW_{key}", value)

    def visit(**claims):
        at = AppTest.from_file(APP, default_timeout=60)
        at.user = {"is_logged_in": True, "email": "alice@example.org", "iss": "https://idp.example", **claims}
        return at.run()

    at = visit(sub="111", email_verified=False)
    assert not at.exception and MARK not in _page_text(at) and "not verified" in at.error[0].value
    at = visit(sub="111")  # no email_verified claim at all
    assert MARK not in _page_text(at) and "not verified" in at.error[0].value
    at = visit(sub="111", email_verified=True)  # the first login binds sub 111
    assert not at.exception and not at.error and MARK in _page_text(at)
    at = visit(sub="222", email_verified=True)  # the same e-mail from another subject
    assert MARK not in _page_text(at) and "bound to another identity" in at.error[0].value
