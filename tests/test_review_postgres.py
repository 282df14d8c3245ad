"""The review store on a real PostgreSQL server (a throwaway cluster started by the test)."""

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import free_port

pytest.importorskip("sqlalchemy")
pytest.importorskip("psycopg")

INITDB = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


@pytest.fixture(scope="module")
def pg_url():
    if not INITDB:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    bindir = os.path.dirname(INITDB[-1])
    # not under pytest's 0700 root-owned temp folder: the server user must reach its data folder
    root = Path(tempfile.mkdtemp(prefix="mmstar-pg-"))
    data = root / "data"
    data.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser")
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    # S603: fixed argument lists for the PostgreSQL binaries, no shell
    subprocess.run([*as_user, f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "mmstar"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    url = f"postgresql+psycopg://mmstar@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    import sqlalchemy as sa

    while True:
        try:
            sa.create_engine(url).connect().close()
            break
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    yield url
    subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"],
                   capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def test_postgres_store_concurrent_writers_consensus_and_export(pg_url, tmp_path):
    from mmstar.review_app.export import export, stats_text
    from mmstar.review_app.store import Store
    from reliability import finish_writers, start_writers

    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    store = Store(pg_url)
    assert finish_writers(start_writers(pg_url, ["alice", "bob"], count=60), timeout=120) == [60, 60]
    rows = store.all_rows()
    assert len(rows) == 120 and len({r["id"] for r in rows}) == 120
    form_key = "tok"  # a form's double-submit key
    assert store.add_decision(0, "carol", "drop", reason="other", client_token=form_key) is not None
    assert store.add_decision(0, "carol", "drop", reason="other", client_token=form_key) is None
    audited = [r["detail"]["decision_id"] for r in store.audit_rows() if r["event"] == "decision"]
    assert sorted(audited) == sorted(r["id"] for r in store.all_rows())  # one audit row per decision, no more
    cands = write_benchmark(generate(per_axis=4, seed=0), tmp_path / "c.parquet")
    store.set_setting("candidates", str(cands))
    paths, n = export(pg_url, tmp_path / "out", fmt="parquet")
    assert [p.name for p in paths] == ["reviewed.parquet"]
    # the writers keep 2 of every 3 samples and drop the third (index 0, 3, ...): 40 accepted, 20 rejected
    assert n == 40
    assert "accepted 40" in stats_text(pg_url) and "rejected 20" in stats_text(pg_url)


@pytest.fixture
def fresh_pg(pg_url, request):
    """A database of its own on the shared throwaway server, so each check starts from empty tables."""
    import sqlalchemy as sa

    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "")[:50]
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return pg_url.rsplit("/", 1)[0] + "/" + name


def test_postgres_accounts_and_password_storage(fresh_pg):
    from test_review_accounts import check_accounts_and_password_storage

    check_accounts_and_password_storage(fresh_pg)


def test_postgres_login_sessions_and_lockout(fresh_pg, monkeypatch):
    from test_review_accounts import check_login_sessions_and_lockout

    check_login_sessions_and_lockout(fresh_pg, monkeypatch)


def test_postgres_decisions_attributed_and_audited(fresh_pg):
    from test_review_accounts import check_decisions_attributed_and_audited

    check_decisions_attributed_and_audited(fresh_pg)


def test_postgres_users_cli(fresh_pg):
    from conftest import assert_clean_error, run_cli
    from mmstar.review_app.accounts import Accounts
    from mmstar.review_app.store import Store

    proc = run_cli("review", "users", "add", "alice", "--db", fresh_pg, "--role", "lead")
    assert proc.returncode == 0, proc.stderr
    password = proc.stdout.split("one-time password: ")[1].split()[0]
    Accounts(Store(fresh_pg)).login("alice", password)
    assert_clean_error(run_cli("review", "users", "add", "alice", "--db", fresh_pg), "user 'alice' already exists")
    proc = run_cli("review", "users", "list", "--db", fresh_pg)
    assert proc.stdout.startswith("alice\tlead\tactive"), proc.stdout


def test_postgres_concurrent_wrong_logins_get_at_most_the_limit(fresh_pg, monkeypatch):
    from test_review_security import check_concurrent_wrong_logins_get_at_most_the_limit

    check_concurrent_wrong_logins_get_at_most_the_limit(fresh_pg, monkeypatch)


def test_postgres_oidc_needs_a_verified_email_and_binds_the_subject(fresh_pg):
    from test_review_security import check_oidc_needs_a_verified_email_and_binds_the_subject

    check_oidc_needs_a_verified_email_and_binds_the_subject(fresh_pg)


def test_postgres_locked_and_unknown_names_get_the_same_answer_and_work(fresh_pg, monkeypatch):
    from test_review_security import check_locked_and_unknown_names_get_the_same_answer_and_work

    check_locked_and_unknown_names_get_the_same_answer_and_work(fresh_pg, monkeypatch)


def test_postgres_unknown_names_are_not_stored(fresh_pg):
    from test_review_security import check_unknown_names_are_not_stored

    check_unknown_names_are_not_stored(fresh_pg)
