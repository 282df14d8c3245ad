"""The review store on a real PostgreSQL server (a throwaway cluster started by the test)."""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("psycopg")

INITDB = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = _free_port()
    subprocess.run([*as_user, f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "mmstar"], check=True,
                   capture_output=True)
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
    subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
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
    assert store.add_decision(0, "carol", "drop", reason="other", client_token="tok") is not None
    assert store.add_decision(0, "carol", "drop", reason="other", client_token="tok") is None
    cands = write_benchmark(generate(per_axis=4, seed=0), tmp_path / "c.parquet")
    store.set_setting("candidates", str(cands))
    paths, n = export(pg_url, tmp_path / "out", fmt="parquet")
    assert [p.name for p in paths] == ["reviewed.parquet"]
    # the writers keep 2 of every 3 samples and drop the third (index 0, 3, ...): 40 accepted, 20 rejected
    assert n == 40
    assert "accepted 40" in stats_text(pg_url) and "rejected 20" in stats_text(pg_url)
