"""A sweep's models on servers: every run at once, the runs on one server through one request window.

Run one model after another against a server (``vllm serve`` behind a router, SGLang, a provider's
API) and the server idles through each model's tail and between models, as it did between batches
before the pool. Here every (model, benchmark) run of the sweep whose backend ``streams`` starts at
once, each in its own thread running the ordinary :func:`run_eval` into its own run directory (its
records appended and fsynced as they arrive, its manifest and scores as a single run writes them).
The runs whose servers are the same (equal ``pool_key``: URL, key, limits) share one
:class:`~mmstar.evaluators.backends.pool.Feed`: one window of requests, fed from every run in turn,
over the endpoint's one client and one adaptive limit, so up to ``--concurrency`` requests stay in
flight across models. Runs on other servers get their own window and run beside them.

Resume is the single run's: each run directory keeps its own append-only files, so a sweep killed at
any moment loses only the requests in flight and a re-run sends exactly those again. A run that fails
is reported at the end; the others go on (they run side by side, so none is skipped).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmstar.evaluators.backends import registry as backends
from mmstar.evaluators.backends.pool import Feed
from mmstar.evaluators.models.registry import ModelEntry

from mmstar.sample import Benchmark

from .kept import Kept, KeptBackends
from .probes import ProbePlan
from .probes import after_modes as probe_hook
from .runner import EvalConfig, run_eval, run_folder


def streams(config: EvalConfig) -> bool:
    """Whether a run goes to a server as one stream (and may share a window with other runs)."""
    from . import distributed as dp

    spec = backends.get(config.backend)
    return spec.streams and not spec.local and config.scoring == "generate" and dp.world()[1] == 1


@dataclass
class _Model:
    entry: ModelEntry
    config: EvalConfig
    make: KeptBackends | None = None
    kept: list[Kept] = field(default_factory=list)
    error: str | None = None


def _prepare(entry: ModelEntry, config: EvalConfig, factory: Callable[[str, str], Any],
             first_line: Callable[[BaseException], str]) -> _Model:
    """The model's backends, built now (a server backend connects only when it first sends)."""
    model = _Model(entry, config)
    if "t" in config.modes and not config.backbone:  # fail before the others spend their time
        model.error = (f"MmstarError: mode t needs the LLM backbone of {config.model}: give it a backbone "
                       "(--backbone, or {model, backbone} in the config) or leave t out")
        return model
    make = KeptBackends(factory)  # kept open for every run of the sweep
    try:
        if any(m != "t" for m in config.modes):
            make(config.model, "vlm")
        if "t" in config.modes:
            make(config.backbone, "llm")  # type: ignore[arg-type]
    except Exception as exc:  # a model that cannot be set up fails alone
        model.error = first_line(exc)
    model.make, model.kept = make, list(make.kept.values())
    return model


def _key(backend: Kept) -> Hashable:
    key = backend.pool_key  # a streaming backend's server (base.Streams)
    return key if key is not None else ("backend", id(backend))


def _share_windows(models: Sequence[_Model]) -> list[Feed]:
    """One window per set of runs that meet on a server (a run whose LVLM and backbone sit on two
    servers joins the two): as wide as the windows of its servers together."""
    parent: dict[Hashable, Hashable] = {}

    def root(k: Hashable) -> Hashable:
        while parent.setdefault(k, k) != k:
            k = parent[k]
        return k

    for model in models:
        keys = [_key(b) for b in model.kept]
        for k in keys[1:]:
            parent[root(k)] = root(keys[0])
    widths: dict[Hashable, int] = {}
    for model in models:
        for b in model.kept:
            widths[_key(b)] = max(widths.get(_key(b), 0), int(b.window))
    members: dict[Hashable, list[Hashable]] = defaultdict(list)
    for k in widths:
        members[root(k)].append(k)
    feeds = {r: Feed(sum(widths[k] for k in ks)) for r, ks in members.items()}
    for model in models:
        for b in model.kept:
            b.feed = feeds[root(_key(b))]
    return list(feeds.values())


def run_pooled(entries: Sequence[ModelEntry], benches: Sequence[Benchmark], out: Path,
               make_config: Callable[[ModelEntry], EvalConfig],
               make_factory: Callable[[ModelEntry], Callable[[str, str], Any]],
               first_line: Callable[[BaseException], str],
               probes: ProbePlan | None = None) -> list[tuple[ModelEntry, Benchmark, Path | None,
                                                            dict[str, Any], str | None]]:
    """Every (model, benchmark) run at once, the runs on one server through one window; returns
    ``(entry, benchmark, run dir, scores, error)`` in sweep order. ``probes``: each run's leakage
    probes go through the same window once its modes are done."""
    models = [_prepare(e, make_config(e), make_factory(e), first_line) for e in entries]
    feeds = _share_windows([m for m in models if m.error is None])
    results: list[list[Any]] = [[m.entry, b, None, {}, m.error] for m in models for b in benches]
    # runs that would write the same folder (a model named twice) go one after the other, never side by side
    lanes: dict[Path, list[int]] = defaultdict(list)
    for i, (model, bench) in enumerate((m, b) for m in models for b in benches):
        if model.error is None:
            lanes[run_folder(out, model.config, bench)].append(i)

    def lane(indices: list[int]) -> None:
        for i in indices:
            model, bench = models[i // len(benches)], benches[i % len(benches)]
            try:
                hook = None if probes is None else probe_hook(probes, model.config, True, strict=False)
                results[i][2], results[i][3] = run_eval(bench, model.config, out, model.make,  # type: ignore[arg-type]
                                                        after_modes=hook)
            except Exception as exc:  # one run's failure must not end the others
                results[i][4] = first_line(exc)

    # daemon threads: Ctrl-C ends the sweep at once; every answer so far is on disk and a re-run resumes
    threads = [threading.Thread(target=lane, args=(ix,), daemon=True, name="mmstar-sweep-run")
               for ix in lanes.values()]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for model in models:
            if model.make is not None:
                model.make.release()
        for feed in feeds:
            feed.close()
    return [tuple(r) for r in results]  # type: ignore[misc]
