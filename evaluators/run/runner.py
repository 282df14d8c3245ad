"""The evaluation loop: benchmark x modes -> run directory, batched, resumable.

Resume is the default: finished indices are skipped; a run whose model, prompt, decoding or data
differ from the manifest refuses to mix into the old files unless ``overwrite`` is set.
"""

from __future__ import annotations

import importlib.metadata as md
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmstar.evaluators.backends.autobatch import DEFAULT_CAP, BatchSizer, BatchTooLarge
from mmstar.evaluators.backends.base import Backend, GenerationConfig, Request, Response

from mmstar.errors import MmstarError
from mmstar.prompts import PromptConfig, build_messages
from mmstar.runs import (
    MODES,
    append_predictions,
    done_indices,
    prediction_path,
    prune_errors,
    read_manifest,
    slugify,
    write_manifest,
    write_scores,
)
from mmstar.sample import Benchmark, Sample
from mmstar.scoring import assess

BackendFactory = Callable[[str, str], Backend]  # (model id, "vlm" | "llm") -> backend
DEFAULT_BATCH = 8  # on CPU, and for backends that cannot report a batch that does not fit


@dataclass
class EvalConfig:
    model: str  # the LVLM id / path
    backbone: str | None
    modes: tuple[str, ...] = MODES
    prompt: PromptConfig = field(default_factory=PromptConfig)
    gen: GenerationConfig = field(default_factory=GenerationConfig)
    batch_size: int | str = DEFAULT_BATCH  # or "auto": the largest that fits (HF backend), see autobatch.py
    backend: str = "hf"
    model_label: str | None = None  # registry alias, for display
    limit: int | None = None
    overwrite: bool = False
    progress: bool = True
    scoring: str = "generate"  # or "loglik": rank the option letters by next-token log-likelihood
    retry_errors: bool = True  # on resume, re-run samples whose line recorded an error
    protocol: str = "official"  # or "reasoning": the model's own budget, thinking on (leaderboard column)
    # the concrete precision ("float32", "bfloat16", ...; never "auto"), None where the backend does
    # not say (a remote API): fp32 vs bf16 moves scores, so a resume must not mix them
    dtype: str | None = None

    def identity(self, fingerprint: str) -> dict[str, Any]:
        """What must not change between a run and its resumption."""
        identity = {"model": self.model, "backbone": self.backbone, "backend": self.backend,
                    "prompt": self.prompt.preset, "shots": self.prompt.shots, "decoding": self.gen.to_dict(),
                    "dtype": self.dtype, "dataset_fingerprint": fingerprint}
        if self.scoring != "generate":
            identity["scoring"] = self.scoring
        if self.protocol != "official":  # absent means official: earlier manifests stay comparable
            identity["protocol"] = self.protocol
        return identity


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


def prepare_run_dir(run_dir: Path, config: EvalConfig, bench: Benchmark) -> dict[str, Any]:
    identity = config.identity(bench.fingerprint())
    old = read_manifest(run_dir)
    if old is not None and not config.overwrite:
        old.setdefault("dtype", _recorded_dtype(old, identity["dtype"]))
        changed = [k for k, v in identity.items() if old.get(k) != v]
        if changed:
            detail = "; ".join(f"{k}: {old.get(k)!r} -> {identity[k]!r}" for k in changed)[:300]
            raise MmstarError(f"{run_dir} holds a different run ({detail}); use another --out or --overwrite "
                              "to start over")
    if config.overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = old if old is not None and not config.overwrite else {
        **identity, "model_label": config.model_label or config.model, "benchmark": bench.name,
        "dataset": bench.origin, "n_samples": len(bench), "created": _now(), "modes": {}}
    manifest["versions"] = _versions()
    manifest["batch_size"] = config.batch_size
    from mmstar.evaluators.models.backbone import backbone_label

    manifest.update(backbone_label(config.backbone))  # "extracted": S_t is not the original LLM's
    write_manifest(run_dir, manifest)
    return manifest


def _recorded_dtype(manifest: dict[str, Any], current: str | None) -> str | None:
    """The dtype of a run written before dtype joined the identity: what its backends recorded, or,
    when they recorded nothing (no model ever loaded), the current one."""
    seen = {b.get("dtype") for b in (manifest.get("backends") or {}).values() if isinstance(b, dict)} - {None}
    if not seen:
        return current
    return seen.pop() if len(seen) == 1 else "mixed"


def concrete_dtype(backend: str, device: str = "auto", dtype: str = "auto") -> str | None:
    """The dtype a run will compute in, "auto" resolved the way the hf and vllm backends resolve it;
    None for the openai backend (the server decides)."""
    if backend == "openai":
        return None
    from mmstar.evaluators.backends.hf import resolve_device_dtype

    return str(resolve_device_dtype(device, dtype)[1]).removeprefix("torch.")


def prediction_record(sample: Sample, mode: str, resp: Response) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "index": sample.index, "mode": mode, "prediction": resp.text, "choice": None, "answer": sample.answer,
        "hit": False, "hit_official": False, "category": sample.category, "l2_category": sample.l2_category,
        "source": sample.source, "question": sample.question, "options": sample.options, "error": resp.error,
        "prompt_tokens": resp.prompt_tokens, "completion_tokens": resp.completion_tokens,
    }
    hit_official, hit_robust, extraction = assess(rec)
    rec.update(choice=extraction.choice, hit=hit_robust, hit_official=hit_official, extract_rule=extraction.rule)
    if extraction.reasoning is not None:  # the thinking text, kept apart; never matched
        rec["reasoning"] = extraction.reasoning
    if "logprobs" in resp.extra:
        rec["logprobs"] = resp.extra["logprobs"]
    return rec


def _progress(total: int, desc: str, enabled: bool):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with transformers
        return None
    return tqdm(total=total, desc=desc, unit="sample", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def _requests(batch: list[Sample], mode: str, config: EvalConfig) -> tuple[list[Request], list[int]]:
    """Requests for the samples that can run in this mode, and their positions in the batch."""
    requests, slots = [], []
    for j, s in enumerate(batch):
        if mode == "v" and s.image is None:
            continue
        requests.append(Request(build_messages(s, mode, config.prompt), key=s.index))
        slots.append(j)
    return requests, slots


def _prompt_chars(s: Sample) -> int:
    return len(s.question) + sum(map(len, s.options.values()))


def _sizer(config: EvalConfig, n_pending: int, recorded: int | None, backend: Backend) -> BatchSizer:
    if config.batch_size != "auto":
        return BatchSizer(fixed=int(config.batch_size))
    if recorded:
        return BatchSizer(fixed=recorded)
    if not hasattr(backend, "generate_prepared"):  # only the HF backend reports a batch that does not fit
        return BatchSizer(fixed=DEFAULT_BATCH)
    return BatchSizer(cap=min(DEFAULT_CAP, n_pending))


def _run_batches(pending: list[Sample], mode: str, config: EvalConfig, backend: Backend, sizer: BatchSizer,
                 write: Callable[[list[Sample], list[Response | None]], None]) -> Iterator[int]:
    """Run ``pending`` in batches of ``sizer.size``; yields the size after each batch. While the size
    is settled, the next batch is prepared (decoded, tokenised) while this one generates."""
    pipelined = config.scoring == "generate" and hasattr(backend, "prepare")
    with ThreadPoolExecutor(max_workers=1) as pool:
        def prepare(lo: int, n: int) -> tuple[tuple[int, int], list[Sample], list[Request], list[int], Any]:
            batch = pending[lo:lo + n]
            requests, slots = _requests(batch, mode, config)
            future = pool.submit(backend.prepare, requests) if pipelined and requests else None
            return (lo, n), batch, requests, slots, future

        pos, upcoming = 0, None
        while pos < len(pending):
            if upcoming is None or upcoming[0] != (pos, sizer.size):  # nothing prefetched, or a stale size
                upcoming = prepare(pos, sizer.size)
            _key, batch, requests, slots, future = upcoming
            probing = not sizer.settled
            nxt = pos + len(batch)
            upcoming = prepare(nxt, sizer.size) if nxt < len(pending) and not probing else None
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


def _call(backend: Backend, config: EvalConfig, batch: list[Sample], requests: list[Request], slots: list[int],
          future: Any, split_on_oom: bool) -> list[Response]:
    if not requests:
        return []
    if config.scoring == "loglik":
        return backend.rank_letters(requests, [list(batch[j].options) for j in slots])
    if hasattr(backend, "generate_prepared"):
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
    start, cpu_start = time.perf_counter(), time.process_time()
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
    # CPU time of this process (all its threads): on a shared machine it moves far less than wall time
    stats["cpu_seconds"] = round(time.process_time() - cpu_start, 3)
    if bar is not None:
        bar.close()
    return stats


def run_eval(bench: Benchmark, config: EvalConfig, out: Path, factory: BackendFactory,
             bench_slug: str | None = None, model_slug: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Run every requested mode into ``out/<model>/<benchmark>/``; returns the dir and the scores."""
    if "t" in config.modes and not config.backbone:
        raise MmstarError(f"mode t needs the LLM backbone of {config.model}: pass --backbone ID "
                          "(or leave t out with --modes v,wv)")
    from mmstar.evaluators.models.registry import model_slug as _model_slug

    run_dir = out / (model_slug or _model_slug(config.model_label or config.model)) / slugify(
        bench_slug or bench.name)
    from . import distributed as dp

    rank, size = dp.world()
    if size > 1:
        dp.init()
    # the fingerprint is the whole benchmark's: --limit only changes how far a run has got
    if rank == 0:
        manifest = prepare_run_dir(run_dir, config, bench)
    dp.barrier()
    if rank != 0:
        manifest = read_manifest(run_dir) or {}
        manifest.setdefault("modes", {})
    bench = bench.limit(config.limit)
    loaded: dict[str, Backend] = {}

    def backend_for(model_id: str, kind: str) -> Callable[[], Backend]:
        def get() -> Backend:
            if kind not in loaded:
                for other in list(loaded):  # one model in memory at a time
                    loaded.pop(other).close()
                loaded[kind] = factory(model_id, kind)
                manifest.setdefault("backends", {})[kind] = loaded[kind].describe()
            return loaded[kind]
        return get

    try:
        for mode in config.modes:
            model_id, kind = (config.backbone, "llm") if mode == "t" else (config.model, "vlm")
            started = _now()
            stats = run_mode(run_dir, bench, mode, config, backend_for(model_id, kind),
                             recorded_batch=_recorded_batch(manifest, mode, config),
                             on_settle=_record_batch(run_dir, manifest, mode) if rank == 0 else None)
            dp.barrier()  # every rank has finished its shard of this mode
            if rank == 0:
                if size > 1:
                    stats["merged_from_ranks"] = size
                    dp.merge_shards(run_dir, mode, bench)
                entry = manifest["modes"].setdefault(mode, {})
                entry.setdefault("started", started)
                entry.update({"finished": _now(), **stats})
                write_manifest(run_dir, manifest)
    finally:
        for backend in loaded.values():
            backend.close()
    if rank != 0:  # rank 0 alone owns the manifest and scores.json
        dp.barrier()
        dp.shutdown()
        return run_dir, {}
    manifest["finished"] = _now()
    write_manifest(run_dir, manifest)
    scores = write_scores(run_dir)
    if size > 1:
        dp.barrier()
        dp.shutdown()
    return run_dir, scores


def _recorded_batch(manifest: dict[str, Any], mode: str, config: EvalConfig) -> int | None:
    """The batch size an earlier ``auto`` run of this mode settled on, reused on resume."""
    if config.batch_size != "auto":
        return None
    found = manifest.get("modes", {}).get(mode, {}).get("batch_size_auto")
    return int(found) if found else None


def _record_batch(run_dir: Path, manifest: dict[str, Any], mode: str) -> Callable[[int], None]:
    def record(size: int) -> None:  # written at once: a run killed later still resumes at this size
        manifest["modes"].setdefault(mode, {})["batch_size_auto"] = size
        write_manifest(run_dir, manifest)
    return record


def resolve_batch_size(text: str | int | None, backend: str = "hf", device: str = "auto") -> int | str:
    """``--batch-size``: a positive integer or "auto"; unset means auto for the HF backend on CUDA
    and 8 elsewhere (a CPU gains little from large batches, and only HF reports a batch too large)."""
    if text is None:
        if backend != "hf":
            return DEFAULT_BATCH
        from mmstar.evaluators.backends.hf import resolve_device_dtype

        return "auto" if resolve_device_dtype(device, "auto")[0].startswith("cuda") else DEFAULT_BATCH
    if str(text).strip().lower() == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise MmstarError(f"--batch-size must be a positive integer or auto, not {text!r}")
    return n


def hf_factory(device: str = "auto", dtype: str = "auto", device_map: str | None = None,
               trust_remote_code: bool = False, allow_pickle: bool = False,
               gen: GenerationConfig | None = None, prefix_cache: bool = True) -> BackendFactory:
    def make(model_id: str, kind: str) -> Backend:
        from mmstar.evaluators.backends.hf import HFBackend

        return HFBackend(model_id, kind, gen, device=device, dtype=dtype, device_map=device_map,
                         trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, prefix_cache=prefix_cache)
    return make


def vllm_factory(gen: GenerationConfig | None = None, tensor_parallel_size: int = 1, max_model_len: int | None = None,
                 gpu_memory_utilization: float = 0.9, images_per_prompt: int = 1, dtype: str = "auto",
                 trust_remote_code: bool = False, prefix_cache: bool = True) -> BackendFactory:
    def make(model_id: str, kind: str) -> Backend:
        from mmstar.evaluators.backends.vllm_backend import VLLMBackend

        return VLLMBackend(model_id, kind, gen, tensor_parallel_size=tensor_parallel_size,
                           max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization,
                           images_per_prompt=images_per_prompt, dtype=dtype, trust_remote_code=trust_remote_code,
                           prefix_cache=prefix_cache)
    return make


def openai_factory(base_url: str, api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8,
                   gen: GenerationConfig | None = None, max_retries: int = 6, backoff: float = 1.0) -> BackendFactory:
    def make(model_id: str, kind: str) -> Backend:
        from mmstar.evaluators.backends.openai_api import OpenAIBackend

        return OpenAIBackend(model_id, base_url, gen, api_key_env=api_key_env, concurrency=concurrency,
                             max_retries=max_retries, backoff=backoff)
    return make


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

