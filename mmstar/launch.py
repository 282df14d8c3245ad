"""Hand the process over to a Streamlit server (``mmstar review``, ``mmstar view``)."""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def exec_streamlit(app: Path, options: Sequence[str], env: Mapping[str, str]) -> int:
    """Replace this process with ``streamlit run APP OPTIONS``.

    Running Streamlit as a child left it orphaned (still serving its port) whenever the ``mmstar``
    parent was stopped by SIGTERM or SIGKILL, as a supervisor or a test does; with exec the signal
    reaches the server itself. Returns only where exec is unavailable (then it waits for the child)."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), *options]
    sys.stdout.flush()
    sys.stderr.flush()
    if hasattr(os, "execve"):
        os.execve(sys.executable, cmd, dict(env))  # noqa: S606  our own interpreter, a fixed argv, no shell
    import subprocess  # pragma: no cover - platforms without exec

    return subprocess.call(cmd, env=dict(env))  # noqa: S603  our own interpreter, a fixed argv, no shell


# Names a browser uses for this machine. Streamlit's ``server.allowedHosts`` (1.5x+) checks the WebSocket's
# ``Host`` header against them, ports ignored: a page whose own name was rebound to 127.0.0.1 (DNS
# rebinding) sends its own name and gets no WebSocket, so it can read none of the data the app streams.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
# For every user of review and view: no developer menu (rerun, clear cache, settings), no tracebacks or
# source lines on the page, no telemetry, no browser opened on a server. Pinned on the command line, which
# overrides a config.toml: CORS and XSRF checks on, no agent API (an HTTP door to the app), no static folder,
# and no st.user filled from request headers a client can set.
PRODUCTION_OPTIONS = {"server.headless": "true", "browser.gatherUsageStats": "false", "client.toolbarMode": "viewer",
                      "client.showErrorDetails": "none", "server.enableXsrfProtection": "true",
                      "server.enableCORS": "true", "server.enableAgentApi": "false",
                      "server.enableStaticServing": "false", "server.trustedUserHeaders": "{}"}


def streamlit_options(address: str, port: int, allowed_hosts: Sequence[str] = ()) -> list[str]:
    """``streamlit run`` options for ``mmstar review`` and ``mmstar view``. A loopback bind accepts only
    loopback names in ``Host``, plus ``allowed_hosts`` (a TLS proxy in front sends its own public name);
    a bind beyond loopback checks ``allowed_hosts`` when given (there a login or a token guards the data)."""
    hosts = [*LOOPBACK_HOSTS, *allowed_hosts] if is_loopback(address) else list(allowed_hosts)
    options = ["--server.port", str(port), "--server.address", address]
    for key, value in PRODUCTION_OPTIONS.items():
        options += [f"--{key}", value]
    for host in hosts:
        options += ["--server.allowedHosts", host]
    return options


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or 'localhost'; anything else (0.0.0.0, a LAN address, a name) reaches further."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServerMemo:
    """A process-wide memo for what a Streamlit app loads once (the store, the candidates, the runs).

    Not ``st.cache_resource``: any client, logged in or not, can send Streamlit's "clear caches" message,
    and no setting turns it off; it empties every st.cache_* of the server, so a stranger could make it
    read all the runs or candidates again, over and over. This memo lives in an imported module, which
    that message does not reach; the app clears it itself (the viewer's "Reload runs")."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._values: dict[Hashable, Any] = {}

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:  # one load per key even when sessions start together
            if key not in self._values:
                self._values[key] = make()
            return self._values[key]

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


SERVER_MEMO = ServerMemo()
