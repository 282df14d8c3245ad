"""Review accounts, sessions, lockout, attribution and the audit trail, on SQLite here.

The ``check_*`` functions take a store URL; tests/test_review_postgres.py runs the same checks on a real
PostgreSQL server, so both backends pass the very same assertions."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import pytest

pytest.importorskip("sqlalchemy")

from mmstar.review_app import accounts as accounts_module
from mmstar.review_app.accounts import GENERIC_FAILURE, UNKNOWN_NAME, Accounts, LoginError, is_loopback
from mmstar.review_app.store import Store, agreement, final_status, utcnow

from mmstar.errors import MmstarError

NEW_PASSWORD = "correct horse battery"  # noqa: S105  a test account's password, on a throwaway store


def _events(store: Store) -> list[tuple[str, str | None]]:
    return [(r["event"], r["account"]) for r in store.audit_rows()]


def check_accounts_and_password_storage(db: str) -> None:
    store = Store(db)
    accounts = Accounts(store)
    assert not accounts.has_accounts()
    pw_a = accounts.add("alice", "reviewer", actor="cli:test")
    pw_c = accounts.add("carol", "lead", actor="cli:test")
    assert accounts.has_accounts() and len(pw_a) >= 16 and pw_a != pw_c
    with store.engine.connect() as conn:
        rows = {r["name"]: dict(r) for r in conn.execute(store.sa.select(store.accounts)).mappings()}
    # only a salted scrypt hash is stored, with its parameters beside it; never the password
    for name, pw in (("alice", pw_a), ("carol", pw_c)):
        row = rows[name]
        assert pw not in json.dumps(row, default=str)
        assert row["password_params"] == "scrypt:n=16384,r=8,p=1,dklen=32"  # noqa: S105  hash parameters
        expected = hashlib.scrypt(pw.encode(), salt=base64.b64decode(row["password_salt"]), n=16384, r=8, p=1,
                                  dklen=32)
        assert base64.b64decode(row["password_hash"]) == expected
    assert rows["alice"]["password_salt"] != rows["carol"]["password_salt"]
    assert [(a.name, a.role, a.must_change, a.disabled) for a in accounts.list()] == [
        ("alice", "reviewer", True, False), ("carol", "lead", True, False)]
    with pytest.raises(MmstarError, match="user 'alice' already exists"):
        accounts.add("alice", actor="cli:test")
    with pytest.raises(MmstarError, match="invalid reviewer name"):
        accounts.add("a b", actor="cli:test")
    with pytest.raises(MmstarError, match="role must be reviewer or lead"):
        accounts.add("dave", "admin", actor="cli:test")
    with pytest.raises(MmstarError, match="unknown user 'nobody'"):
        accounts.disable("nobody", actor="cli:test")
    with pytest.raises(MmstarError, match="unknown user 'nobody'"):
        accounts.reset("nobody", actor="cli:test")
    accounts.disable("alice", actor="cli:test")
    with pytest.raises(MmstarError, match="user 'alice' is already disabled"):
        accounts.disable("alice", actor="cli:test")
    with pytest.raises(MmstarError, match="user 'alice' is disabled"):
        accounts.reset("alice", actor="cli:test")
    new = accounts.reset("alice", actor="cli:test", enable=True, role="lead")
    alice = accounts.get("alice")
    assert new != pw_a and alice is not None and not alice.disabled and alice.role == "lead" and alice.must_change
    assert [(e, a) for e, a in _events(store)] == [
        ("user_add", "alice"), ("user_add", "carol"), ("user_disable", "alice"), ("user_reset", "alice")]
    assert {r["actor"] for r in store.audit_rows()} == {"cli:test"}
    assert all(r["created"].endswith("+00:00") for r in store.audit_rows())


def check_login_sessions_and_lockout(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(db)
    accounts = Accounts(store, max_failures=3, lockout=timedelta(minutes=15), session_ttl=timedelta(hours=1))
    pw = accounts.add("alice", actor="cli:test")
    for name, password, message in (("", pw, "empty user name"), ("alice", "", "empty password"),
                                    ("nobody", "whatever", GENERIC_FAILURE)):
        with pytest.raises(LoginError, match=f"^{message}$"):
            accounts.login(name, password)
    token = accounts.login("alice", pw, ip="10.0.0.7")
    account = accounts.session_account(token)
    assert account is not None and account.name == "alice" and account.must_change
    assert accounts.session_account("forged-token") is None and accounts.session_account(None) is None
    for new, repeat, message in (("", "", "empty password"), ("short", "short", "at least 10"),
                                 (NEW_PASSWORD, NEW_PASSWORD + "!", "differ"), (pw, pw, "one-time password")):
        with pytest.raises(LoginError, match=message):
            accounts.change_password(token, new, repeat)
    other = accounts.login("alice", pw)
    accounts.change_password(token, NEW_PASSWORD, NEW_PASSWORD)
    assert accounts.session_account(other) is None  # a password change ends the account's other sessions
    assert not accounts.get("alice").must_change
    with pytest.raises(LoginError, match=GENERIC_FAILURE):  # the one-time password is spent
        accounts.login("alice", pw)
    with pytest.raises(LoginError, match=f"^{GENERIC_FAILURE}$"):
        accounts.login("alice", "wrong guess")
    with pytest.raises(LoginError, match=f"^{GENERIC_FAILURE}$"):  # the third: the lock, and the same line
        accounts.login("alice", "another guess")
    assert accounts.get("alice").locked_until is not None
    with pytest.raises(LoginError, match=f"^{GENERIC_FAILURE}$"):  # while locked even the right password is refused
        accounts.login("alice", NEW_PASSWORD)
    later = utcnow() + timedelta(minutes=16)
    monkeypatch.setattr(accounts_module, "utcnow", lambda: later)
    fresh = accounts.login("alice", NEW_PASSWORD)
    assert accounts.get("alice").failed_logins == 0 and accounts.get("alice").locked_until is None
    assert accounts.session_account(token) is not None  # 16 minutes into a 1-hour session
    monkeypatch.setattr(accounts_module, "utcnow", lambda: later + timedelta(hours=2))
    assert accounts.session_account(token) is None and accounts.session_account(fresh) is None  # expired
    monkeypatch.undo()
    token = accounts.login("alice", NEW_PASSWORD)
    accounts.logout(token)
    assert accounts.session_account(token) is None
    token = accounts.login("alice", NEW_PASSWORD)
    accounts.disable("alice", actor="cli:test")
    assert accounts.session_account(token) is None and accounts.has_accounts()  # still a store with accounts
    with pytest.raises(LoginError, match="this account is disabled"):
        accounts.login("alice", NEW_PASSWORD)
    with store.engine.connect() as conn:  # the table keys sessions by the token's hash, never the token
        hashes = {r[0] for r in conn.execute(store.sa.select(store.sessions.c.token_hash))}
    assert token not in hashes and hashlib.sha256(token.encode()).hexdigest() in hashes
    events = store.audit_rows()
    whys = [r["detail"].get("why") for r in events if r["event"] == "login_failed"]
    assert whys == ["unknown user", "wrong password", "wrong password", "wrong password", "locked", "disabled"]
    assert [r["event"] for r in events].count("lockout") == 1
    assert [r["event"] for r in events].count("login") == 5
    assert {"password_change", "logout", "user_disable"} <= {r["event"] for r in events}
    assert next(r for r in events if r["event"] == "login")["detail"] == {"ip": "10.0.0.7", "method": "password"}
    assert next(r for r in events if r["event"] == "login_failed")["account"] == UNKNOWN_NAME


def check_decisions_attributed_and_audited(db: str) -> None:
    store = Store(db)
    accounts = Accounts(store)
    for name, role in (("alice", "reviewer"), ("bob", "reviewer"), ("carol", "lead")):
        accounts.add(name, role, actor="cli:test")
    ids = {a.name: a.id for a in accounts.list()}
    geometry = {"category": "math", "l2_category": "geometry"}
    store.add_decision(0, "alice", "keep", **geometry, account_id=ids["alice"])
    form_key = "t0"  # a form's double-submit key
    store.add_decision(0, "bob", "drop", reason="ambiguous", account_id=ids["bob"], client_token=form_key)
    assert store.add_decision(0, "bob", "drop", reason="ambiguous", account_id=ids["bob"], client_token=form_key) \
        is None
    store.add_decision(1, "alice", "keep", **geometry, account_id=ids["alice"])
    store.add_decision(1, "bob", "keep", **geometry, account_id=ids["bob"])
    before = agreement(store.latest_votes())
    with pytest.raises(MmstarError, match="only an enabled lead account can adjudicate"):
        store.add_decision(0, "alice", "keep", **geometry, account_id=ids["alice"], kind="adjudication")
    with pytest.raises(MmstarError, match="only an enabled lead account can adjudicate"):  # a name is no lead
        store.add_decision(0, "carol", "keep", **geometry, account_id=ids["alice"], kind="adjudication")
    adj_id = store.add_decision(0, "carol", "keep", **geometry, account_id=ids["carol"], kind="adjudication")
    latest = store.latest_votes()
    assert set(latest[0]) == {"alice", "bob"} and latest[0]["alice"].account_id == ids["alice"]
    assert agreement(latest) == before  # an adjudication is not a rating: kappa is unchanged
    adjudicated = store.adjudications()
    assert adjudicated[0].row_id == adj_id and adjudicated[0].reviewer == "carol"
    assert final_status(latest[0], adjudicated.get(0)) == "accepted"
    assert final_status(latest[1], adjudicated.get(1)) == "accepted"
    decided = [r for r in store.audit_rows() if r["event"] in ("decision", "adjudication")]
    assert [(r["event"], r["account"], r["account_id"], r["detail"]["sample_index"]) for r in decided] == [
        ("decision", "alice", ids["alice"], 0), ("decision", "bob", ids["bob"], 0),
        ("decision", "alice", ids["alice"], 1), ("decision", "bob", ids["bob"], 1),
        ("adjudication", "carol", ids["carol"], 0)]  # the double submit and the refused ones left no row
    assert [r["detail"]["decision_id"] for r in decided] == [r["id"] for r in store.all_rows()]


def test_accounts_and_password_storage_sqlite(tmp_path):
    check_accounts_and_password_storage(str(tmp_path / "a.db"))


def test_login_sessions_and_lockout_sqlite(tmp_path, monkeypatch):
    check_login_sessions_and_lockout(str(tmp_path / "l.db"), monkeypatch)


def test_decisions_attributed_and_audited_sqlite(tmp_path):
    check_decisions_attributed_and_audited(str(tmp_path / "d.db"))


def test_loopback_addresses():
    assert all(is_loopback(a) for a in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost", "LOCALHOST"))
    beyond = ("0.0.0.0", "::", "192.168.1.5", "review.example.org", "", None)
    assert not any(is_loopback(a) for a in beyond)


def test_store_from_before_accounts_gains_the_new_columns(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:  # the decisions table exactly as 0.1.0 created it
        conn.execute("CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, sample_index INTEGER NOT NULL, "
                     "reviewer VARCHAR(40) NOT NULL, created VARCHAR(40) NOT NULL, decision VARCHAR(8) NOT NULL, "
                     "reason VARCHAR(64), category VARCHAR(64), l2_category VARCHAR(64), corrections TEXT NOT NULL, "
                     "client_token VARCHAR(64) UNIQUE)")
        conn.execute("INSERT INTO decisions (sample_index, reviewer, created, decision, category, l2_category, "
                     "corrections) VALUES (3, 'alice', '2024-01-01T00:00:00.000000+00:00', 'keep', 'math', "
                     "'geometry', '{}')")
    store = Store(str(db))
    (vote,) = store.latest_votes()[3].values()
    assert vote.reviewer == "alice" and vote.account_id is None and store.all_rows()[0]["kind"] == "vote"
    store.add_decision(3, "bob", "keep", category="math", l2_category="geometry")
    assert len(Store(str(db)).latest_votes()[3]) == 2


def test_export_names_the_reviewer_of_every_decision(tmp_path):
    from mmstar.review_app.export import export

    from mmstar.demo_data import generate
    from mmstar.loaders import load_benchmark
    from mmstar.writers import write_benchmark

    db = str(tmp_path / "e.db")
    store = Store(db)
    accounts = Accounts(store)
    for name, role in (("alice", "reviewer"), ("bob", "reviewer"), ("carol", "lead")):
        accounts.add(name, role, actor="cli:test")
    ids = {a.name: a.id for a in accounts.list()}
    bench = generate(per_axis=1, seed=0)
    store.set_setting("candidates", str(write_benchmark(bench, tmp_path / "c.parquet")))
    a, b = bench[0], bench[1]
    labels = {"category": a.category, "l2_category": a.l2_category}
    store.add_decision(a.index, "alice", "keep", **labels, account_id=ids["alice"])
    store.add_decision(a.index, "bob", "keep", **labels, account_id=ids["bob"])
    # a dispute on b, settled by the lead with her own correction
    store.add_decision(b.index, "alice", "keep", category=b.category, l2_category=b.l2_category,
                       account_id=ids["alice"], corrections={"answer": "D"})
    store.add_decision(b.index, "bob", "drop", reason="ambiguous", account_id=ids["bob"])
    store.add_decision(b.index, "carol", "keep", category=b.category, l2_category=b.l2_category,
                       account_id=ids["carol"], kind="adjudication",
                       corrections={"question": "Fixed: " + b.question})
    paths, n = export(db, tmp_path / "out", fmt="parquet")
    assert n == 2
    got = {s.index: s for s in load_benchmark(paths[0])}
    review = got[a.index].meta["review"]
    assert [(d["reviewer"], d["account_id"], d["kind"]) for d in review["decisions"]] == [
        ("alice", ids["alice"], "vote"), ("bob", ids["bob"], "vote")]
    review = got[b.index].meta["review"]
    assert review["adjudicated_by"] == "carol"
    assert [(d["reviewer"], d["decision"], d["kind"]) for d in review["decisions"]] == [
        ("alice", "keep", "vote"), ("bob", "drop", "vote"), ("carol", "keep", "adjudication")]
    # the agreeing vote's correction and the lead's own
    assert got[b.index].answer == "D" and got[b.index].question == "Fixed: " + b.question
    log = [json.loads(line) for line in (tmp_path / "out" / "decisions.jsonl").read_text().splitlines()]
    assert [(r["reviewer"], r["account_id"], r["kind"]) for r in log] == [
        ("alice", ids["alice"], "vote"), ("bob", ids["bob"], "vote"), ("alice", ids["alice"], "vote"),
        ("bob", ids["bob"], "vote"), ("carol", ids["carol"], "adjudication")]
