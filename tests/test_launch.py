"""`mmstar view` hands its process to Streamlit: stopping it stops the server (no orphan on the port)."""

import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from screenshots import free_port, start_viewer
from test_viewer import write_runs


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_stopping_mmstar_view_stops_the_server(tmp_path):
    write_runs(tmp_path)
    port = free_port()
    proc = start_viewer([str(tmp_path / "runs")], port)
    try:
        # the process we started is the server itself, not a parent that would leave it behind
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"streamlit" in cmdline and b"run" in cmdline
        proc.terminate()
        proc.wait(20)
        deadline = time.monotonic() + 10
        while _port_open(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _port_open(port), "the Streamlit server outlived `mmstar view`"
    finally:
        if proc.poll() is None:
            proc.kill()
