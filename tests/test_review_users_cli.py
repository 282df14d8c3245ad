"""``mmstar review users ...``, ``review audit`` and the binding rules of ``mmstar review``, through the real
command line: one clear line for each kind of bad input."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("sqlalchemy")

from conftest import assert_clean_error, run_cli
from mmstar.review_app.accounts import Accounts
from mmstar.review_app.store import Store


def _password(stdout: str) -> str:
    match = re.search(r"one-time password: (\S+)", stdout)
    assert match, stdout
    return match.group(1)


def test_users_add_list_disable_reset_and_their_errors(tmp_path):
    db = str(tmp_path / "u.db")
    proc = run_cli("review", "users", "add", "alice", "--db", db, "--role", "lead")
    assert proc.returncode == 0, proc.stderr
    first = _password(proc.stdout)
    assert "added alice (lead)" in proc.stdout
    Accounts(Store(db)).login("alice", first)  # the printed password is the stored one
    assert_clean_error(run_cli("review", "users", "add", "alice", "--db", db), "user 'alice' already exists")
    assert_clean_error(run_cli("review", "users", "disable", "bob", "--db", db), "unknown user 'bob'")
    assert_clean_error(run_cli("review", "users", "reset", "bob", "--db", db), "unknown user 'bob'")
    assert_clean_error(run_cli("review", "users", "add", "a b", "--db", db), "invalid reviewer name")
    assert_clean_error(run_cli("review", "users", "rename", "alice", "--db", db), "unknown action 'rename'")
    assert_clean_error(run_cli("review", "users", "add", "--db", db), "needs exactly one NAME")
    assert_clean_error(run_cli("review", "users", "list"), "--db is required")
    assert run_cli("review", "users", "add", "bob", "--db", db).returncode == 0
    assert run_cli("review", "users", "disable", "bob", "--db", db).returncode == 0
    assert_clean_error(run_cli("review", "users", "disable", "bob", "--db", db), "user 'bob' is already disabled")
    assert_clean_error(run_cli("review", "users", "reset", "bob", "--db", db), "user 'bob' is disabled")
    proc = run_cli("review", "users", "list", "--db", db)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("alice\tlead\tactive") and lines[1].startswith("bob\treviewer\tdisabled")
    assert first not in proc.stdout
    proc = run_cli("review", "users", "reset", "alice", "--db", db)
    assert proc.returncode == 0, proc.stderr
    second = _password(proc.stdout)
    assert second != first
    accounts = Accounts(Store(db))
    accounts.login("alice", second)
    with pytest.raises(Exception, match="wrong user name or password"):
        accounts.login("alice", first)
    proc = run_cli("review", "audit", "--db", db)
    assert proc.returncode == 0, proc.stderr
    events = [line.split("\t")[1:3] for line in proc.stdout.splitlines()]
    assert events[:5] == [["user_add", "alice"], ["login", "alice"], ["user_add", "bob"], ["user_disable", "bob"],
                          ["user_reset", "alice"]]
    assert all("\tby cli:" in line for line in proc.stdout.splitlines() if "user_" in line)
    assert first not in proc.stdout and second not in proc.stdout


def test_binding_beyond_loopback_needs_accounts(tmp_path):
    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    cands = str(write_benchmark(generate(per_axis=1, seed=0), tmp_path / "c.parquet"))
    db = str(tmp_path / "b.db")
    for address in ("0.0.0.0", "192.168.1.20", "::"):
        assert_clean_error(run_cli("review", cands, "--db", db, "--reviewer", "alice", "--address", address),
                           f"refusing --address {address}: this store has no accounts")
    assert_clean_error(run_cli("review", cands, "--db", db), "this store has no accounts: pass --reviewer NAME")
    assert_clean_error(run_cli("review", cands, "--db", db, "--auth", "oidc"), "--auth oidc logs reviewers in")
    Accounts(Store(db)).add("alice", actor="cli:test")
    assert_clean_error(run_cli("review", cands, "--db", db, "--reviewer", "alice"),
                       "--reviewer is for a store without accounts")
    # with accounts it may listen beyond loopback: tests/test_review_team_browser.py drives such a server
