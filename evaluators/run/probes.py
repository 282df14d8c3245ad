"""The leakage probes through the runner: each probe's work items (``mmstar.probes``) are more
requests for the same backends, in the same loops as v/wv/t.

- a backend that runs batches goes through the runner's batched loop (``runner._run_batches``):
  the same batch sizing (an ``auto`` size settled by the plain mode is reused), the same prepared
  next batch, and so the same prefix reuse (mode t's shared 2-shot context, order-t included);
- a backend that streams (a server, an API) gets every probe's requests as one continuous pool, as
  ``stream.run_streamed`` sends the modes.

Backends never see a probe: a rotated question, a masked option or another sample's image is just a
request. Records go to ``<probe>-<mode>.jsonl`` beside ``v/wv/t.jsonl``, appended and fsynced batch by
batch; a resumed run skips the keys already written (``"<index>:<variant>"``) and retries failed
lines, so a killed probe run loses nothing and writes nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmstar.evaluators.backends.base import Backend, Request, Response

from mmstar.errors import MmstarError
from mmstar.probes import (
    PROBE_MODES,
    PROBE_PROMPT_VERSION,
    PROBES,
    ProbeItem,
    check_probe_input,
    probe_file,
    probe_items,
    probe_modes,
    probe_prompts,
    slot_reply_matches,
)
from mmstar.prompts import build_messages
from mmstar.records import Manifest, PredictionRecord
from mmstar.runs import append_predictions, done_keys, probe_path, prune_errors, write_manifest
from mmstar.sample import Benchmark

from .recall import check_backend, run_recall
from .steps import EvalConfig, _progress, prediction_record

# as runner.AfterModes (not imported from there: the runner imports this module's users)
AfterModes = Callable[[Path, Manifest, Benchmark, Callable[[str], Backend]], None]

NO_IMAGE = "sample has no image; mode v needs one"


@dataclass(frozen=True)
class ProbePlan:
    """Which probes to run, the seed of their variants and whether slots also masks a question word."""

    probes: tuple[str, ...]
    seed: int = 0
    words: bool = False

    def jobs(self, bench: Benchmark, modes: Sequence[str],
             strict: bool = True) -> list[tuple[str, str, list[ProbeItem]]]:
        """(probe, mode, work items) for every probe and mode it runs in; bad input is one line, now.
        ``strict``: a probe none of whose modes is in ``modes`` is an error (not in a sweep's phase,
        which runs the LVLM's modes and the backbone's apart)."""
        check_probe_input(bench, self.probes)
        chosen = [(p, m) for p in self.probes for m in (probe_modes(p, modes) if strict else
                                                        [m for m in PROBE_MODES[p] if m in modes])]
        return [(probe, mode, probe_items(bench, probe, mode, self.seed, self.words)) for probe, mode in chosen]

    def manifest_entry(self) -> dict[str, Any]:
        return {"version": PROBE_PROMPT_VERSION, "seed": self.seed, "names": list(self.probes),
                "slot_words": self.words, "prompts": probe_prompts()}


def record_plan(manifest: Manifest, plan: ProbePlan) -> dict[str, Any]:
    """The probes' manifest entry; a seed or prompt version other than the one the run's probe files
    were written with is refused (their records would not be one variant)."""
    old = manifest.extra.get("probes")
    entry = plan.manifest_entry()
    if old:
        for key in ("version", "seed"):
            if old.get(key) != entry[key]:
                raise MmstarError(f"this run's probes ran with {key} {old.get(key)!r}, not {entry[key]!r}; use "
                                  "another --out, or --overwrite to start over")
        entry["names"] = sorted({*old.get("names", []), *entry["names"]}, key=PROBES.index)
        entry["slot_words"] = bool(old.get("slot_words")) or plan.words
        entry["files"] = dict(old.get("files") or {})
    manifest.update(probes=entry)
    return entry


def probe_record(item: ProbeItem, resp: Response) -> PredictionRecord:
    """The line of one probe request: a graded record of the variant (order, swap), or (slots) the
    reply with its hidden text and whether it reproduced it; then the probe's fields."""
    if item.prompt is None:
        rec = prediction_record(item.sample, item.mode, resp)
    else:
        s, letter = item.sample, item.fields.get("masked_letter")
        rec = PredictionRecord(
            index=s.index, mode=item.mode, prediction=resp.text, answer=s.answer, category=s.category,
            l2_category=s.l2_category, source=s.source, question=item.prompt,  # what was asked
            options={k: "[MASK]" if k == letter else v for k, v in s.options.items()}, error=resp.error,
            prompt_tokens=resp.prompt_tokens, completion_tokens=resp.completion_tokens,
            finish_reason=resp.finish_reason)
    rec.extra.update(item.fields)
    if item.prompt is not None:
        rec.extra["reproduced"] = not resp.error and slot_reply_matches(resp.text, item.fields["target"])
    return rec


def _messages(item: ProbeItem, config: EvalConfig) -> list[dict[str, Any]]:
    if item.prompt is not None:  # the fixed slot prompt, the same for the LVLM without image and the LLM
        return [{"role": "user", "content": [{"type": "text", "text": item.prompt}]}]
    return build_messages(item.sample, item.mode, config.prompt)


def probe_requests(batch: list[ProbeItem], mode: str, config: EvalConfig) -> tuple[list[Request], list[int]]:
    """The batched loop's ``build``: requests for the items that can run, and their positions."""
    requests, slots = [], []
    for j, item in enumerate(batch):
        if mode == "v" and item.sample.image is None:
            continue
        requests.append(Request(_messages(item, config), key=item.sample.index))
        slots.append(j)
    return requests, slots


def _length(item: ProbeItem) -> int:
    s = item.sample
    return len(item.prompt or "") + len(s.question) + sum(map(len, s.options.values()))


def _pending(run_dir: Path, name: str, items: list[ProbeItem], config: EvalConfig) -> tuple[list[ProbeItem], dict]:
    path = probe_path(run_dir, name)
    retried = prune_errors(path) if config.retry_errors else 0
    done = done_keys(path)
    pending = [it for it in items if it.key not in done]
    return pending, {"n": len(items), "done_before": len(items) - len(pending), "ran": 0, "seconds": 0.0,
                     "retried_errors": retried}


def after_modes(plan: ProbePlan, config: EvalConfig, streams: bool, strict: bool = True) -> AfterModes:
    """The hook ``run_eval`` calls once the modes are done: the probes in ``config.modes``. A probe the
    backend cannot run (recall on a chat API) is refused here, before a model loads."""
    check_backend(plan.probes, config.backend)
    def run(run_dir: Path, manifest: Manifest, bench: Benchmark, backend_of: Callable[[str], Backend]) -> None:
        run_probes(run_dir, manifest, bench, plan, config, backend_of, streams, strict)
    return run


def run_probes(run_dir: Path, manifest: Manifest, bench: Benchmark, plan: ProbePlan, config: EvalConfig,
               backend_of: Callable[[str], Backend], streams: bool, strict: bool = True) -> dict[str, dict[str, Any]]:
    """Run every probe's pending items; returns (and records in the manifest) each file's statistics.
    Jobs on the model loaded last (the last mode's) go first: a local backend loads once less."""
    if config.scoring != "generate":
        raise MmstarError("the probes need generated replies; they do not run with letter log-likelihood scoring")
    check_backend(plan.probes, config.backend)
    jobs = plan.jobs(bench, config.modes, strict)
    if not jobs:
        return {}
    entry = record_plan(manifest, plan)
    write_manifest(run_dir, manifest)
    last_is_llm = config.modes[-1] == "t"
    jobs.sort(key=lambda job: (job[1] == "t") != last_is_llm)  # stable: PROBES order within a model
    pending = {}
    for probe, mode, items in jobs:
        pending[probe_file(probe, mode)] = (mode, *_pending(run_dir, probe_file(probe, mode), items, config))
    if streams:
        _run_streamed(run_dir, pending, config, backend_of)
    else:
        for name, (mode, todo, stats) in pending.items():
            if todo:  # recall scores option texts (recall.py); the others generate
                run = run_recall if name.startswith("recall-") else _run_batched
                run(run_dir, name, mode, todo, stats, config, backend_of, manifest)
            entry["files"] = {**entry.get("files", {}), name: stats}
            write_manifest(run_dir, manifest)
    entry["files"] = {**entry.get("files", {}), **{name: stats for name, (_m, _t, stats) in pending.items()}}
    write_manifest(run_dir, manifest)
    return entry["files"]


def _run_batched(run_dir: Path, name: str, mode: str, todo: list[ProbeItem], stats: dict[str, Any],
                 config: EvalConfig, backend_of: Callable[[str], Backend], manifest: Manifest) -> None:
    from .runner import _recorded_batch, _run_batches, _sizer, _worker_cpu

    backend = backend_of(mode)
    path = probe_path(run_dir, name)
    bar = _progress(len(todo), name, config.progress)
    todo = sorted(todo, key=_length, reverse=True)  # as run_mode: similar lengths share a batch
    sizer = _sizer(config, len(todo), _recorded_batch(manifest, mode, config), backend)
    start, cpu = time.perf_counter(), time.process_time() + _worker_cpu(backend, config)  # + the workers', as run_mode

    def write(batch: list[ProbeItem], responses: list[Response | None]) -> None:
        records = [probe_record(it, r or Response(error="no response")) for it, r in zip(batch, responses)]
        append_predictions(path, records)
        stats["ran"] += len(batch)
        if bar is not None:
            bar.update(len(batch))

    for _size in _run_batches(todo, mode, config, backend, sizer, write, build=probe_requests):
        pass
    cpu_now = time.process_time() + _worker_cpu(backend, config)
    stats.update(seconds=round(time.perf_counter() - start, 3), cpu_seconds=round(cpu_now - cpu, 3),
                 batch_size=sizer.size if sizer.settled else (sizer.fits or sizer.size))
    if bar is not None:
        bar.close()


def _run_streamed(run_dir: Path, pending: dict[str, tuple[str, list[ProbeItem], dict[str, Any]]],
                  config: EvalConfig, backend_of: Callable[[str], Backend]) -> None:
    """Every probe file's requests as one pool (one sample of each file in turn), each answer
    appended to its file as it arrives."""
    from .stream import request_window

    active = {name: todo for name, (_mode, todo, _s) in pending.items() if todo}
    if not active:
        return
    backends = {name: backend_of(pending[name][0]) for name in active}
    requests: dict[str, list[tuple[ProbeItem, Request]]] = {}
    for name, todo in active.items():
        requests[name] = []
        unanswerable = []
        for it in todo:
            built, _slots = probe_requests([it], it.mode, config)
            if built:
                requests[name].append((it, built[0]))
            else:
                unanswerable.append(probe_record(it, Response(error=NO_IMAGE)))
        append_predictions(probe_path(run_dir, name), unanswerable)
        pending[name][2]["ran"] += len(unanswerable)
    send, _feed = request_window(backends.values())  # a sweep's shared window, as the modes use
    bar = _progress(sum(map(len, requests.values())), "probes", config.progress)
    start = time.perf_counter()

    def jobs():
        longest = max(map(len, requests.values()), default=0)
        for i in range(longest):
            for name, items in requests.items():
                if i < len(items):
                    yield (name, items[i][0]), backends[name], items[i][1]

    for finished in send(jobs()):
        by_file: dict[str, list[PredictionRecord]] = {}
        for (name, item), resp in finished:
            by_file.setdefault(name, []).append(probe_record(item, resp))
        for name, records in by_file.items():
            append_predictions(probe_path(run_dir, name), records)
            pending[name][2]["ran"] += len(records)
            pending[name][2]["seconds"] = round(time.perf_counter() - start, 3)
        if bar is not None:
            bar.update(len(finished))
    if bar is not None:
        bar.close()
