"""Every mode of a run as one continuous stream, for backends whose spec ``streams`` (a server or API).

Batches are the wrong unit for a server: each waits for its slowest request, and the next mode waits
for the last batch of this one. Here the pending samples of all modes (v and wv interleaved, and t on
the backbone beside them) go to the backend's pool, which keeps up to its concurrency in flight, and
each answer is appended (flushed and fsynced) to its mode's file the moment it arrives. A run killed
at any moment loses only the requests in flight; on resume they are pending again and nothing is
written twice (the files are append-only, one writer, and a torn last line is cut off).
"""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from mmstar.evaluators.backends.base import Backend, Request, Response
from mmstar.evaluators.backends.pool import Feed, stream

from mmstar.runs import append_predictions, done_indices, prediction_path, prune_errors
from mmstar.sample import Benchmark, Sample

from .kept import Kept
from .steps import EvalConfig, _progress, _requests, prediction_record


def run_streamed(run_dir: Path, bench: Benchmark, config: EvalConfig,
                 backend_of: Callable[[str], Backend]) -> dict[str, dict[str, Any]]:
    """Run ``config.modes`` as one stream; returns each mode's statistics for the manifest.
    ``backend_of(mode)`` loads (or returns) the backend for a mode's model."""
    paths = {m: prediction_path(run_dir, m) for m in config.modes}
    stats: dict[str, dict[str, Any]] = {}
    pending: dict[str, list[Sample]] = {}
    for mode, path in paths.items():
        retried = prune_errors(path) if config.retry_errors else 0
        done = done_indices(path)
        pending[mode] = [s for s in bench if s.index not in done]
        stats[mode] = {"done_before": len(done), "ran": 0, "seconds": 0.0, "retried_errors": retried}
    active = [m for m in config.modes if pending[m]]
    if not active:
        return stats
    backends = {m: backend_of(m) for m in active}  # a mode with nothing left never loads its model
    tally = {m: Counter() for m in active}
    requests: dict[str, list[tuple[Sample, Request]]] = {}
    for mode in active:
        requests[mode], unanswerable = [], []
        for s in pending[mode]:
            built, _slots = _requests([s], mode, config)
            if built:
                requests[mode].append((s, built[0]))
            else:  # mode v without an image: recorded at once, as the batched path records it
                unanswerable.append(prediction_record(s, mode, Response(error="sample has no image; mode v needs one")))
        if unanswerable:
            append_predictions(paths[mode], unanswerable)
            stats[mode]["ran"] += len(unanswerable)
            tally[mode]["error:no_image"] += len(unanswerable)
    send, feed = request_window(backends.values())
    label = "+".join(active) if feed is None else f"{run_dir.parent.name}/{run_dir.name} {'+'.join(active)}"
    bar = _progress(sum(map(len, requests.values())), label, config.progress)  # a sweep's bars say whose
    completions = send(_interleaved(requests, backends))
    start, cpu_start = time.perf_counter(), time.process_time()
    last = dict.fromkeys(active, start)
    for finished in completions:
        by_mode: dict[str, list[Any]] = defaultdict(list)
        for (mode, sample), resp in finished:
            by_mode[mode].append(prediction_record(sample, mode, resp))
            _count(tally[mode], resp)
        now = time.perf_counter()
        for mode, records in by_mode.items():  # answers that arrived together: one write (one fsync) per file
            append_predictions(paths[mode], records)
            stats[mode]["ran"] += len(records)
            last[mode] = now
        if bar is not None:
            bar.update(len(finished))
    if bar is not None:
        bar.close()
    total, cpu = round(time.perf_counter() - start, 3), round(time.process_time() - cpu_start, 3)
    pools = {m: b.describe().get("pool") or {} for m, b in backends.items()}
    for mode in active:
        t = tally[mode]
        stats[mode].update({
            "seconds": round(last[mode] - start, 3),  # until this mode's last answer; the modes overlap
            "cpu_seconds": cpu, "streamed_with": list(active), "stream_seconds": total,
            "requests": t["requests"], "retries": t["retries"], "prompt_tokens": t["prompt_tokens"],
            "completion_tokens": t["completion_tokens"],
            "concurrency_reached": pools[mode].get("concurrency_reached")})
        if feed is not None:  # the seconds above are shared with the other runs of the sweep on this window
            stats[mode]["shared_window"] = feed.window
        errors = {k.removeprefix("error:"): n for k, n in sorted(t.items()) if k.startswith("error:")}
        if errors:
            stats[mode]["errors"] = errors
    line = error_line(tally)
    if line:  # in a sweep, runs end side by side: the line says whose it is
        print(line if feed is None else f"{run_dir}: {line}", file=sys.stderr, flush=True)
    return stats


Send = Callable[[Iterable[tuple[Any, Any, Request]]], Iterator[list[tuple[Any, Response]]]]


def request_window(backends: Iterable[Backend]) -> tuple[Send, Feed | None]:
    """Where a run's requests go, for its modes and its probes alike: the sweep's shared window when
    the sweep gave one to every backend of the run (``sweep_pool.py``), so that every run on a server,
    probes included, stays within one window; else a window of this run's own, as wide as its
    backends' windows together (the LVLM and the backbone may be on two servers). Returns the
    ``jobs -> completions`` sender and the shared feed (None for a private window)."""
    distinct = list({id(b): b for b in backends}.values())
    feeds = {id(f): f for f in (b.feed if isinstance(b, Kept) else None for b in distinct)}
    feed = next(iter(feeds.values()), None)
    if len(feeds) == 1 and feed is not None:
        return feed.stream, feed
    width = sum(int(b.window) for b in distinct)  # streaming backends declare it (base.Streams)
    return (lambda jobs: stream(jobs, width)), None


def _interleaved(requests: dict[str, list[tuple[Sample, Request]]],
                 backends: dict[str, Backend]) -> Iterator[tuple[tuple[str, Sample], Any, Request]]:
    """One sample of each mode in turn, so every mode advances together (v and wv of a sample are
    adjacent, which also lets a server's prefix cache see the shared text close together)."""
    longest = max(map(len, requests.values()))
    for i in range(longest):
        for mode, items in requests.items():
            if i < len(items):
                sample, request = items[i]
                yield (mode, sample), backends[mode], request


def _count(t: Counter, resp: Response) -> None:
    t["requests"] += 1
    t["retries"] += max(0, int(resp.extra.get("attempts", 1)) - 1)
    t["prompt_tokens"] += resp.prompt_tokens
    t["completion_tokens"] += resp.completion_tokens
    if resp.error:
        t["error:" + str(resp.extra.get("error_kind") or "error")] += 1


def error_line(tally: dict[str, Counter]) -> str | None:
    """One line: how many requests failed, by kind (and by mode); None when none did."""
    kinds: Counter = Counter()
    for t in tally.values():
        kinds.update({k.removeprefix("error:"): n for k, n in t.items() if k.startswith("error:")})
    if not kinds:
        return None
    per_mode = ", ".join(f"{m} {sum(n for k, n in t.items() if k.startswith('error:'))}"
                         for m, t in tally.items() if any(k.startswith("error:") for k in t))
    counts = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
    return (f"{sum(kinds.values())} request(s) got no answer: {counts} ({per_mode}); each is its record's "
            "error, and a re-run retries them")
