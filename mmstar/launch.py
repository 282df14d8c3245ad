"""Hand the process over to a Streamlit server (``mmstar review``, ``mmstar view``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


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
