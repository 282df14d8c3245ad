"""Loopback pages against DNS rebinding, and the production settings every reviewer and viewer gets.

A real ``mmstar review`` / ``mmstar view`` server on a free loopback port, and a raw Streamlit WebSocket
client (tests/streamlit_ws.py) that names the ``Host`` a rebound attacker's page would send."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from conftest import free_port, streamlit_healthy
from streamlit_ws import Refused, read_page

pytest.importorskip("streamlit")
pytest.importorskip("websockets")

MARK = b"Zanzibar-marker"


def _start(cmd: list[str], port: int, cwd=None) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("server exited: " + proc.stdout.read().decode()[-2000:])
        try:
            if streamlit_healthy(port):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail("server did not start within 90 s")


@pytest.fixture
def server():
    procs: list[subprocess.Popen] = []

    def start(cmd: list[str], port: int, cwd=None) -> None:
        procs.append(_start(cmd, port, cwd))

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(20)


def _candidates(tmp_path):
    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    bench = generate(per_axis=1, seed=0)
    bench._samples[0] = bench[0].with_(question=f"{MARK.decode()} What colour?\nOptions: A: red, B: green")
    return write_benchmark(bench, tmp_path / "cands.parquet")


def _assert_host_checked(port: int, mark: bytes) -> None:
    with pytest.raises(Refused):
        read_page(port, f"evil.example:{port}", seconds=8, until=mark)
    with pytest.raises(Refused):  # the same rebound name without a port
        read_page(port, "evil.example", seconds=8, until=mark)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert mark in read_page(port, host, until=mark), host


def test_single_user_review_refuses_a_foreign_host(tmp_path, server):
    port = free_port()
    server([sys.executable, "-m", "mmstar", "review", str(_candidates(tmp_path)), "--db", str(tmp_path / "r.db"),
            "--reviewer", "alice", "--port", str(port)], port)
    _assert_host_checked(port, MARK)


def test_view_refuses_a_foreign_host(tmp_path, server):
    from test_viewer import write_runs

    runs = write_runs(tmp_path)
    port = free_port()
    server([sys.executable, "-m", "mmstar", "view", str(runs["alpha"]), "--port", str(port)], port)
    _assert_host_checked(port, b"alpha")


def test_production_settings_hide_the_toolbar_and_tracebacks(tmp_path, server):
    """The options ``review`` and ``view`` launch with, on a real server running a script that fails: the
    session gets the viewer toolbar (no rerun / clear-cache menu) and the page no traceback or message."""
    from streamlit.proto.NewSession_pb2 import Config

    from mmstar.launch import streamlit_options

    script = tmp_path / "fails.py"
    script.write_text("import streamlit as st\nst.text('page-start')\nraise RuntimeError('secret-detail')\n")
    port = free_port()
    server([sys.executable, "-m", "streamlit", "run", str(script), *streamlit_options("127.0.0.1", port)], port)
    data = read_page(port, f"127.0.0.1:{port}", seconds=30)  # until the run finished
    assert b"page-start" in data  # the script did run and its page came
    for leak in (b"secret-detail", b"Traceback", b"RuntimeError"):
        assert leak not in data, (leak, data[data.find(leak) - 200:data.find(leak) + 200])
    assert _first_new_session(port).new_session.config.toolbar_mode == Config.ToolbarMode.VIEWER


def _first_new_session(port: int):
    import socket

    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    with connect(f"ws://127.0.0.1:{port}/_stcore/stream", sock=sock, subprotocols=["streamlit"]) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        ws.send(msg.SerializeToString())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            fwd = ForwardMsg.FromString(ws.recv(timeout=20))
            if fwd.WhichOneof("type") == "new_session":
                return fwd
    pytest.fail("no new_session message")


def _hosts(options: list[str]) -> list[str]:
    return [options[i + 1] for i, o in enumerate(options) if o == "--server.allowedHosts"]


def test_host_names_checked_per_bind():
    from mmstar.launch import LOOPBACK_HOSTS, streamlit_options

    loop = list(LOOPBACK_HOSTS)
    assert _hosts(streamlit_options("127.0.0.1", 1)) == loop
    # a TLS proxy in front sends its own public name: the operator adds it
    assert _hosts(streamlit_options("localhost", 1, ["review.example.org"])) == [*loop, "review.example.org"]
    # beyond loopback (accounts or a token guard the data): the names given, if any
    assert _hosts(streamlit_options("0.0.0.0", 1, ["review.example.org"])) == ["review.example.org"]
    assert _hosts(streamlit_options("0.0.0.0", 1)) == []


def test_team_review_on_loopback_refuses_a_foreign_host_and_admits_the_proxy_name(tmp_path, server):
    """With accounts a rebound page would reach the login form; it gets no WebSocket either. The TLS
    proxy's own name, given with --allowed-host, is admitted."""
    from mmstar.review_app.accounts import Accounts
    from mmstar.review_app.store import Store

    db = str(tmp_path / "team.db")
    Accounts(Store(db)).add("alice", actor="cli:test")
    port = free_port()
    server([sys.executable, "-m", "mmstar", "review", str(_candidates(tmp_path)), "--db", db, "--port", str(port),
            "--allowed-host", "review.example.org"], port)
    with pytest.raises(Refused):
        read_page(port, f"evil.example:{port}", seconds=8, until=b"User name")
    for host in (f"127.0.0.1:{port}", "review.example.org"):
        page = read_page(port, host, until=b"User name")
        assert b"User name" in page and MARK not in page, host


def test_an_anonymous_clear_caches_message_does_not_reload_the_runs(tmp_path, server):
    """Streamlit lets any client send "clear caches" (no setting turns it off). The viewer keeps what it
    loaded in a process memo that message cannot reach: a run folder removed after the first load is still
    shown, not reread as missing (only the viewer's own "Reload runs" rereads)."""
    from streamlit_ws import clear_caches
    from test_viewer import write_runs

    runs = write_runs(tmp_path, images=False)
    port = free_port()
    server([sys.executable, "-m", "mmstar", "view", str(runs["alpha"]), str(runs["beta"]), "--port", str(port)],
           port)
    host = f"127.0.0.1:{port}"
    first = read_page(port, host, seconds=30)
    assert b"Leaderboard" in first and b"no such folder" not in first
    runs["beta"].rename(runs["beta"].with_name("gone"))
    clear_caches(port)
    again = read_page(port, host, seconds=30)
    assert b"Leaderboard" in again and b"no such folder" not in again


def test_a_config_file_cannot_open_the_agent_api(tmp_path, server):
    """Streamlit's agent API drives an app over plain HTTP; a .streamlit/config.toml in the folder the viewer
    starts from turns it on. The options on the command line pin it off (they override the file)."""
    from test_viewer import write_runs

    runs = write_runs(tmp_path, images=False)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text("[server]\nenableAgentApi = true\n")
    port = free_port()
    server([sys.executable, "-m", "mmstar", "view", str(runs["alpha"]), "--port", str(port)], port, cwd=tmp_path)
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}/_stcore/agent/interact", data=b"{}",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)  # noqa: S310  a fixed loopback URL
    assert refused.value.code == 403
