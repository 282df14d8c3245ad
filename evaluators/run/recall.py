"""The recall probe through a backend that scores continuations (``mmstar.probe_recall`` says what it
measures): each work item is a prompt (a stem without options) and its sample's option texts, scored
by ``score_continuations`` in batches; one ``recall-<mode>.jsonl`` line per item, appended and fsynced
per batch, resumable by key like the other probes.

A backend that cannot score (the registry's ``continuations`` capability: the openai chat API) is
refused in one line before any model loads (``check_backend``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmstar.evaluators.backends import registry as backends
from mmstar.evaluators.backends.autobatch import BatchTooLarge
from mmstar.evaluators.backends.base import Backend, Request, Response

from mmstar.errors import MmstarError
from mmstar.probe_recall import continuations, option_scores, ranked_first
from mmstar.probe_variants import ProbeItem
from mmstar.records import Manifest, PredictionRecord
from mmstar.runs import append_predictions, probe_path

from .steps import EvalConfig, _progress


def check_backend(probes: tuple[str, ...], backend: str) -> None:
    """The recall probe on a backend that cannot score given texts: one line, before a model loads."""
    if "recall" in probes and not backends.get(backend).continuations:
        able = ", ".join(backends.names(lambda spec: spec.continuations))
        raise MmstarError(f"probe recall scores each option's text by the model's likelihood; the {backend} backend "
                          f"cannot (a chat API returns log-probabilities of its own reply only): use --backend "
                          f"{able.replace(', ', ' or ')}, or leave recall out of --probes")


def recall_record(item: ProbeItem, resp: Response) -> PredictionRecord:
    """The line of one scored item: ``prediction``/``choice`` the letter whose text scored highest
    (none on a tie), ``extra`` the probe's fields and per letter ``loglik`` (sum) and ``tokens``."""
    s = item.sample
    letters = list(s.options)
    error = resp.error
    sums, counts = list(resp.extra.get("loglik") or []), list(resp.extra.get("tokens") or [])
    if not error and (len(sums) != len(letters) or len(counts) != len(letters)):
        error = f"the backend scored {len(sums)} of {len(letters)} option texts"
    rec = PredictionRecord(index=s.index, mode=item.mode, answer=s.answer, category=s.category,
                           l2_category=s.l2_category, source=s.source, question=item.prompt or "",
                           options=dict(s.options), error=error, prompt_tokens=resp.prompt_tokens,
                           completion_tokens=0)
    rec.extra.update(item.fields)
    if not error:
        rec.extra.update(loglik=dict(zip(letters, sums)), tokens=dict(zip(letters, counts)),
                         score="mean log-probability per token")
        top = ranked_first(option_scores(rec) or {})
        rec.prediction, rec.choice = top or "", top
        rec.hit = rec.hit_official = top == s.answer
    return rec


def run_recall(run_dir: Path, name: str, mode: str, todo: list[ProbeItem], stats: dict[str, Any],
               config: EvalConfig, backend_of: Callable[[str], Backend], manifest: Manifest) -> None:
    """Score ``todo`` in batches of the run's size (``auto``: the size the plain mode settled, halved
    while a batch does not fit)."""
    from .runner import _recorded_batch, _sizer

    backend = backend_of(mode)
    path = probe_path(run_dir, name)
    bar = _progress(len(todo), name, config.progress)
    sizer = _sizer(config, len(todo), _recorded_batch(manifest, mode, config), backend)
    start, cpu = time.perf_counter(), time.process_time()
    pos = 0
    while pos < len(todo):
        batch = todo[pos:pos + sizer.size]
        requests = [Request([{"role": "user", "content": [{"type": "text", "text": it.prompt or ""}]}],
                            key=it.sample.index) for it in batch]
        try:
            responses = backend.score_continuations(requests, [continuations(it) for it in batch])
        except BatchTooLarge as exc:
            sizer.failed(len(batch))
            if len(batch) > 1:
                continue
            responses = [Response(error=f"out of accelerator memory on a single request: {exc}")]
        else:
            sizer.ran(len(batch))
        append_predictions(path, [recall_record(it, r) for it, r in zip(batch, responses)])
        stats["ran"] += len(batch)
        pos += len(batch)
        if bar is not None:
            bar.update(len(batch))
    stats.update(seconds=round(time.perf_counter() - start, 3), cpu_seconds=round(time.process_time() - cpu, 3),
                 batch_size=sizer.size if sizer.settled else (sizer.fits or sizer.size))
    if bar is not None:
        bar.close()
