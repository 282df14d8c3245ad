"""One exception type for every bad-input condition: the CLI prints its message as one line."""

from __future__ import annotations

from pathlib import Path


class MmstarError(Exception):
    """A user-facing error: the message names the file, the row and what is wrong."""


class DataError(MmstarError):
    def __init__(self, source: str | Path, message: str, row: int | None = None) -> None:
        where = f"{source}" + (f", row {row}" if row is not None else "")
        super().__init__(f"{where}: {message}")
        self.source = str(source)
        self.row = row
        self.detail = message


class MissingDependency(MmstarError):
    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f"this needs the '{module}' package: pip install 'mmstar[{extra}]'")


def require(module: str, extra: str):
    """Import an optional dependency or raise a clear install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(module, extra) from exc
