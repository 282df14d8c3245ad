"""Backends kept open across runs: ``run_eval`` closes its backends after each run, and a sweep must
not reload a model per benchmark (minutes each) nor reopen a server's client per run. One wrapper for
both kinds of sweep: models loaded here keep their weights over the model's benchmarks
(``sweep.py``); models on servers keep their backend for every run of the sweep and carry the
request window those runs share (``feed``, set by ``sweep_pool.py``, read by ``stream.request_window``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mmstar.evaluators.backends.pool import Feed


class Kept:
    """A backend whose ``close`` waits for :meth:`release`; every other member is the backend's."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.feed: Feed | None = None  # the sweep's shared request window, once it gives one

    def __getattr__(self, name: str) -> Any:  # generate, prepare, submit, window, describe, ...
        return getattr(self._backend, name)

    def close(self) -> None:  # deferred to release(): other runs still use it
        pass

    def release(self) -> None:
        self._backend.close()


class KeptBackends:
    """A ``(model_id, kind) -> backend`` factory for ``run_eval`` that builds each backend once and
    keeps it until :meth:`release`."""

    def __init__(self, factory: Callable[[str, str], Any]) -> None:
        self._factory = factory
        self.kept: dict[tuple[str, str], Kept] = {}

    def __call__(self, model_id: str, kind: str) -> Kept:
        if (model_id, kind) not in self.kept:
            self.kept[(model_id, kind)] = Kept(self._factory(model_id, kind))
        return self.kept[(model_id, kind)]

    def release(self) -> None:
        for backend in self.kept.values():
            backend.release()
        self.kept.clear()
