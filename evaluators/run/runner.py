"""The evaluation loop: benchmark x modes -> run directory, batched, resumable.

Resume is the default: finished indices are skipped; a run whose model, prompt, decoding or data
differ from the manifest refuses to mix into the old files unless ``overwrite`` is set.
"""

from __future__ import annotations

import importlib.metadata as md
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmstar.evaluators.backends import registry as backends
from mmstar.evaluators.backends.autobatch import DEFAULT_CAP, BatchSizer, BatchTooLarge
from mmstar.evaluators.backends.base import Backend, Request, Response
from mmstar.evaluators.backends.registry import BackendFactory

from mmstar.errors import MmstarError
from mmstar.records import Manifest
from mmstar.runs import (
    MODES,
    append_predictions,
    done_indices,
    prediction_path,
    prune_errors,
    read_manifest,
    run_dir,
    write_manifest,
    write_scores,
)
from mmstar.sample import Benchmark, Sample

from .steps import DEFAULT_BATCH, EvalConfig, _progress, _requests, prediction_record

# the run dir, its manifest, the benchmark as run (limited) and a mode -> backend loader
AfterModes = Callable[[Path, Manifest, Benchmark, Callable[[str], Backend]], None]


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("mmstar", "torch", "transformers", "vllm", "datasets", "pandas"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def prepare_run_dir(run_dir: Path, config: EvalConfig, bench: Benchmark) -> Manifest:
    identity = config.identity(bench.fingerprint())
    old = read_manifest(run_dir)
    if old is not None and not config.overwrite:
        if not old.has("dtype"):  # a run from before dtype joined the identity
            old.dtype = _recorded_dtype(old, identity["dtype"])
        changed = [k for k, v in identity.items() if old.get(k) != v]
        if changed:
            detail = "; ".join(f"{k}: {old.get(k)!r} -> {identity[k]!r}" for k in changed)[:300]
            raise MmstarError(f"{run_dir} holds a different run ({detail}); use another --out or --overwrite "
                              "to start over")
    if config.overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = old if old is not None and not config.overwrite else Manifest.new({
        **identity, "model_label": config.model_label or config.model, "benchmark": bench.name,
        "dataset": bench.origin, "n_samples": len(bench), "created": _now(), "modes": {}})
    from mmstar.evaluators.models.backbone import backbone_label

    # backbone_label: "extracted" (S_t is not the original LLM's) and where it was cut from
    manifest.update(versions=_versions(), batch_size=config.batch_size, **backbone_label(config.backbone))
    write_manifest(run_dir, manifest)
    return manifest


def _recorded_dtype(manifest: Manifest, current: str | None) -> str | None:
    """The dtype of a run written before dtype joined the identity: what its backends recorded, or,
    when they recorded nothing (no model ever loaded), the current one."""
    seen = {b.get("dtype") for b in (manifest.backends or {}).values() if isinstance(b, dict)} - {None}
    if not seen:
        return current
    return seen.pop() if len(seen) == 1 else "mixed"


def _prompt_chars(s: Sample) -> int:
    return len(s.question) + sum(map(len, s.options.values()))


def _sizer(config: EvalConfig, n_pending: int, recorded: int | None, backend: Backend) -> BatchSizer:
    if config.batch_size != "auto":
        return BatchSizer(fixed=int(config.batch_size))
    if recorded:
        return BatchSizer(fixed=recorded)
    if not backends.get(config.backend).auto_batch:  # only a backend that reports a batch too large can probe
        return BatchSizer(fixed=DEFAULT_BATCH)
    return BatchSizer(cap=min(DEFAULT_CAP, n_pending))


def _run_batches(pending: list[Any], mode: str, config: EvalConfig, backend: Backend, sizer: BatchSizer,
                 write: Callable[[list[Any], list[Response | None]], None],
                 build: Callable[[list[Any], str, EvalConfig], tuple[list[Request], list[int]]] = _requests,
                 ) -> Iterator[int]:
    """Run ``pending`` in batches of ``sizer.size``; yields the size after each batch. While the size
    is settled, the next batch is prepared (decoded, tokenised) while this one generates. ``build``
    makes a batch's requests: a mode's samples by default, a probe's work items (evaluators/run/probes.py)."""
    pipelined = config.scoring == "generate" and backends.get(config.backend).prepares
    # a backend with preparing worker processes takes the batches itself, one in flight per worker
    depth = max(1, int(backend.prefetch_depth)) if pipelined else 1
    with ThreadPoolExecutor(max_workers=1) as pool:
        def prepare(lo: int, n: int) -> tuple[tuple[int, int], list[Sample], list[Request], list[int], Any]:
            batch = pending[lo:lo + n]
            requests, slots = build(batch, mode, config)
            future = None
            if pipelined and requests:
                future = backend.submit_prepare(requests)
                if future is None:  # no workers: a thread of this process, the path before workers
                    future = pool.submit(backend.prepare, requests)
            return (lo, n), batch, requests, slots, future

        pos, upcoming = 0, deque()  # batches in preparation, the one to run next first
        while pos < len(pending):
            if not upcoming or upcoming[0][0] != (pos, sizer.size):  # nothing prefetched, or a stale size
                upcoming.clear()
                upcoming.append(prepare(pos, sizer.size))
            probing = not sizer.settled
            while not probing and len(upcoming) <= depth:  # keep `depth` batches ahead of this one
                (lo, _n), last = upcoming[-1][0], upcoming[-1][1]
                if lo + len(last) >= len(pending):
                    break
                upcoming.append(prepare(lo + len(last), sizer.size))
            _key, batch, requests, slots, future = upcoming.popleft()
            nxt = pos + len(batch)
            try:
                results = _call(backend, config, batch, requests, slots, future, split_on_oom=not probing)
            except BatchTooLarge as exc:
                sizer.failed(len(batch))
                if len(batch) > 1:
                    continue  # the same samples again, in a smaller batch
                results = [Response(error=f"out of accelerator memory on a single request: {exc}")] * len(requests)
            else:
                sizer.ran(len(batch))
            responses: list[Response | None] = [None] * len(batch)
            for j in range(len(batch)):
                if j not in slots:
                    responses[j] = Response(error="sample has no image; mode v needs one")
            for j, resp in zip(slots, results):
                responses[j] = resp
            write(batch, responses)
            pos = nxt
            yield sizer.size


def _worker_cpu(backend: Backend, config: EvalConfig) -> float:
    """CPU seconds of a backend's worker processes (hf ``--workers``), which process_time misses."""
    return float(backend.worker_cpu_seconds()) if backends.get(config.backend).prepares else 0.0


def _call(backend: Backend, config: EvalConfig, batch: list[Sample], requests: list[Request], slots: list[int],
          future: Any, split_on_oom: bool) -> list[Response]:
    if not requests:
        return []
    if config.scoring == "loglik":
        return backend.rank_letters(requests, [list(batch[j].options) for j in slots])
    if backends.get(config.backend).prepares:
        prepared = future.result() if future is not None else backend.prepare(requests)
        return backend.generate_prepared(prepared, split_on_oom=split_on_oom)
    return backend.generate(requests)


def run_mode(run_dir: Path, bench: Benchmark, mode: str, config: EvalConfig, get_backend: Callable[[], Backend],
             recorded_batch: int | None = None, on_settle: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One mode's pending samples, batched, appended to its file as each batch finishes.
    ``recorded_batch``: the size an earlier ``auto`` run of this mode settled on (reused, not
    probed again); ``on_settle`` is told the size as soon as the probe settles."""
    from . import distributed as dp

    rank, size = dp.world()
    path = prediction_path(run_dir, mode)
    retried = prune_errors(path) if config.retry_errors and rank == 0 else 0
    dp.barrier()
    if size > 1:  # this rank's share, into its own shard file
        done = dp.done_in_shard(run_dir, mode, rank, size)
        pending = [s for s in dp.shard_samples(bench, rank, size) if s.index not in done]
        path = dp.shard_path(run_dir, mode, rank, size)
    else:
        done = done_indices(path)
        pending = [s for s in bench if s.index not in done]
    stats = {"done_before": len(done), "ran": 0, "seconds": 0.0, "retried_errors": retried}
    if not pending:
        return stats
    backend = get_backend()  # a rank with nothing left never loads the model
    bar = _progress(len(pending), f"{mode:>2}", config.progress and rank == 0)
    start, cpu_start = time.perf_counter(), time.process_time() + _worker_cpu(backend, config)
    # batches of similar length waste less compute on padding, and the longest come first, so the
    # automatic batch size is probed on the hardest batches; outputs do not depend on batching
    pending = sorted(pending, key=_prompt_chars, reverse=True)
    sizer = _sizer(config, len(pending), recorded_batch, backend)

    def write(batch: list[Sample], responses: list[Response | None]) -> None:
        append_predictions(path, [prediction_record(s, mode, r or Response(error="no response"))
                                  for s, r in zip(batch, responses)])
        stats["ran"] += len(batch)
        if bar is not None:
            bar.update(len(batch))

    settled = sizer.settled
    for batch_size in _run_batches(pending, mode, config, backend, sizer, write):
        if not settled and sizer.settled:
            settled = True
            if on_settle is not None:
                on_settle(batch_size)
    # a probe that ran out of samples before settling: report the largest batch that actually ran
    stats["batch_size"] = sizer.size if sizer.settled else (sizer.fits or sizer.size)
    if config.batch_size == "auto":
        stats["batch_probe"] = [list(t) for t in sizer.trace]
    stats["seconds"] = round(time.perf_counter() - start, 3)
    # CPU time of this process (all its threads) and its workers: on a shared machine it moves far less than wall time
    stats["cpu_seconds"] = round(time.process_time() + _worker_cpu(backend, config) - cpu_start, 3)
    if bar is not None:
        bar.close()
    return stats


def run_eval(bench: Benchmark, config: EvalConfig, out: Path, factory: BackendFactory,
             bench_slug: str | None = None, model_slug: str | None = None,
             after_modes: AfterModes | None = None) -> tuple[Path, dict[str, Any]]:
    """Run every requested mode into ``out/<model>/<benchmark>/``; returns the dir and the scores.
    ``after_modes`` (the leakage probes) runs once the modes are done, with the models still loaded:
    it gets the run dir, the manifest, the limited benchmark and a mode -> backend loader."""
    if "t" in config.modes and not config.backbone:
        raise MmstarError(f"mode t needs the LLM backbone of {config.model}: pass --backbone ID "
                          "(or leave t out with --modes v,wv)")
    run_dir = run_folder(out, config, bench, bench_slug, model_slug)
    from . import distributed as dp

    rank, size = dp.world()
    if size > 1:
        dp.init()
    # the fingerprint is the whole benchmark's: --limit only changes how far a run has got
    if rank == 0:
        manifest = prepare_run_dir(run_dir, config, bench)
    dp.barrier()
    if rank != 0:
        manifest = read_manifest(run_dir) or Manifest.new({})
    bench = bench.limit(config.limit)
    loaded: dict[str, Backend] = {}
    spec = backends.get(config.backend)

    def backend_for(model_id: str, kind: str) -> Callable[[], Backend]:
        def get() -> Backend:
            if kind not in loaded:
                for other in list(loaded) if spec.local else ():  # one model in memory at a time
                    loaded.pop(other).close()
                loaded[kind] = factory(model_id, kind)
                manifest.backends = {**(manifest.backends or {}), kind: loaded[kind].describe()}
            return loaded[kind]
        return get

    try:
        streamed, stream_started = {}, _now()
        if spec.streams and size == 1 and config.scoring == "generate":
            from .stream import run_streamed  # a server or API: every mode's requests as one continuous pool

            streamed = run_streamed(run_dir, bench, config, lambda mode: backend_for(*_model_kind(config, mode))())
            manifest.backends = {**(manifest.backends or {}), **{k: b.describe() for k, b in loaded.items()}}
        for mode in config.modes:
            model_id, kind = _model_kind(config, mode)
            started = stream_started if mode in streamed else _now()
            stats = streamed[mode] if mode in streamed else run_mode(
                run_dir, bench, mode, config, backend_for(model_id, kind),
                recorded_batch=_recorded_batch(manifest, mode, config),
                on_settle=_record_batch(run_dir, manifest, mode) if rank == 0 else None)
            dp.barrier()  # every rank has finished its shard of this mode
            if rank == 0:
                if size > 1:
                    stats["merged_from_ranks"] = size
                    dp.merge_shards(run_dir, mode, bench)
                entry = manifest.mode(mode)
                entry.update(started=entry.started or started, finished=_now(), **stats)
                write_manifest(run_dir, manifest)
        if after_modes is not None and rank == 0:
            after_modes(run_dir, manifest, bench, lambda mode: backend_for(*_model_kind(config, mode))())
    finally:
        for backend in loaded.values():
            backend.close()
    if rank != 0:  # rank 0 alone owns the manifest and scores.json
        dp.barrier()
        dp.shutdown()
        return run_dir, {}
    manifest.finished = _now()
    write_manifest(run_dir, manifest)
    scores = write_scores(run_dir)
    if size > 1:
        dp.barrier()
        dp.shutdown()
    return run_dir, scores


def run_folder(out: Path, config: EvalConfig, bench: Benchmark, bench_slug: str | None = None,
               model_slug: str | None = None) -> Path:
    """Where ``run_eval`` writes (``mmstar.runs.run_dir``'s rule on the run's label); ``bench_slug`` and
    ``model_slug`` name the folders instead (the curation filter, fixtures)."""
    return run_dir(out, config.model_label or config.model, bench_slug or bench.name, model_folder=model_slug)


def _model_kind(config: EvalConfig, mode: str) -> tuple[str, str]:
    """The model a mode runs and its kind: the backbone for t, the LVLM for v and wv."""
    return (config.backbone, "llm") if mode == "t" else (config.model, "vlm")  # type: ignore[return-value]


def _recorded_batch(manifest: Manifest, mode: str, config: EvalConfig) -> int | None:
    """The batch size an earlier ``auto`` run of this mode settled on, reused on resume."""
    if config.batch_size != "auto":
        return None
    entry = manifest.modes.get(mode)
    return entry.batch_size_auto if entry is not None and entry.batch_size_auto else None


def _record_batch(run_dir: Path, manifest: Manifest, mode: str) -> Callable[[int], None]:
    def record(size: int) -> None:  # written at once: a run killed later still resumes at this size
        manifest.mode(mode).batch_size_auto = size
        write_manifest(run_dir, manifest)
    return record


def resolve_batch_size(text: str | int | None, backend: str = "hf",
                       options: Mapping[str, Any] | None = None) -> int | str:
    """``--batch-size``: a positive integer or "auto"; unset means auto for a backend that reports a
    batch too large when it runs on CUDA, and 8 elsewhere (a CPU gains little from large batches)."""
    if text is None:
        return "auto" if backends.on_accelerator(backend, options or {}) else DEFAULT_BATCH
    if str(text).strip().lower() == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise MmstarError(f"--batch-size must be a positive integer or auto, not {text!r}")
    return n


def parse_modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise MmstarError(f"unknown mode(s) {', '.join(map(repr, bad)) or repr(text)}; use a comma list of v, wv, t")
    return modes


def summary_line(scores: dict[str, Any]) -> str:
    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"
    return (f"S_v {f(scores['S_v'])}  S_wv {f(scores['S_wv'])}  S_t {f(scores['S_t'])}  "
            f"MG {f(scores['MG'])}  ML {f(scores['ML'])}  (matcher {scores['matcher']})")

