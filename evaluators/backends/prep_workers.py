"""Worker processes for model batches: they prepare LVLM batches (image decoding, image processing,
templating, tokenising) while the parent generates, or, on CPU with a small model (an LVLM, or an LLM
in mode t, the curation filter and the text probes), prepare and generate whole batches side by side
(:func:`plan_workers` decides, within the cores the process may use).

Why processes and not threads: the generation loop of ``model.generate`` is Python (one interpreter
lock) and so is much of a processor's work (chat templates, argument checks, ``BatchFeature``);
in threads they take turns, in processes they do not. And why not more torch threads: on CPU a
small model's ops are too small to split, and a thread that waits at every op for a core that
another process holds makes a run many times slower on a shared machine (README, Performance).
The workers are forked from the parent once the model is loaded, so they start in milliseconds
with its processor, tokenizer and weights (copy-on-write pages that inference never writes).
Results come back through ``multiprocessing``'s pickler, with which torch sends tensors through
shared memory rather than by value.

Failure stays local: an exception inside a worker's ``prepare`` is the batch's exception, as it
would be in a thread; a worker that dies (killed, out of memory) hands its batch back to be
prepared in the parent and is not used again. Workers die with their parent (``PR_SET_PDEATHSIG``
on Linux, end of file on their pipe elsewhere), so a killed run leaves none behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

PrepareFn = Callable[..., Any]  # (requests, gen) -> the picklable result of one batch

# On CPU a model this small spends its generate loop in Python, one core's worth: more torch threads
# barely help, and on a busy machine they spin waiting for each other (benchmarks/cpu_pipeline.py,
# 200 samples: the plain loop with two OpenMP threads took 13-75 s in-run under load, with one 1.5-4.7 s),
# while a second process generating other batches does help once a second core is free (README,
# Performance). Forked workers share the weights copy-on-write, so each costs only its own activations.
SMALL_MODEL_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class WorkerPlan:
    """Who does a batch's CPU work, within the budget of ``cores``: ``workers`` processes, each on
    ``worker_threads`` torch threads; with ``generate`` they run whole batches (prepare and
    generate), else they prepare and the parent generates on ``torch_threads`` (None: left as it
    is). ``image_device``: where a prefetch thread runs the image processor's tensor work."""

    workers: int
    generate: bool
    worker_threads: int
    torch_threads: int | None
    image_device: str | None
    cores: int

    def describe(self) -> dict[str, Any]:
        role = "none" if not self.workers else "prepare+generate" if self.generate else "prepare"
        return {"workers": self.workers, "worker_role": role, "worker_threads": self.worker_threads,
                "torch_threads": self.torch_threads, "image_device": self.image_device or "cpu",
                "cpu_budget": self.cores}


def plan_workers(kind: str, device: str, *, requested: int | None, weight_bytes: int, sharded: bool = False,
                 device_capable: bool = False, cores: int | None = None,
                 omp_threads: str | None = None) -> WorkerPlan:
    """The plan for one backend. ``requested`` is ``--workers`` (None: auto). A text-only model gets
    workers only where they generate (a small one on CPU): tokenising a text prompt costs less than
    sending it to a process, so workers that would only prepare are not worth it. On CUDA the parent
    generates; auto gives no workers when the image processor can run on the device (the prefetch
    thread then decodes and tokenises, the GPU resizes and normalises), else a quarter of the cores
    prepare. On CPU a small model runs whole batches in ``cores`` workers of one thread each; a
    larger one generates in the parent on the cores that a quarter of them, preparing, leave.
    ``omp_threads``: an OMP_NUM_THREADS the user set; the parent's thread count is then theirs."""
    cores = cpu_budget() if cores is None else max(1, cores)
    on_cuda = device.startswith("cuda")
    generate = not on_cuda and not sharded and weight_bytes <= SMALL_MODEL_BYTES
    if kind != "vlm" and not generate:
        workers = 0
    elif requested is not None:
        workers = requested
    elif cores < 2 or (on_cuda and device_capable):
        workers = 0
    else:
        workers = cores if generate else max(1, cores // 4)
    generate = generate and workers > 0
    # a forked worker runs torch on one thread, always: GNU OpenMP cannot start a thread team in a
    # child forked after the parent used one (the worker hangs at its first parallel op; seen here)
    worker_threads = 1
    if generate or workers == 0 or omp_threads:
        torch_threads = None  # the parent generates nothing, or the count is not ours to change
    else:
        torch_threads = max(1, cores - workers)
    image_device = device if on_cuda and device_capable and workers == 0 else None
    return WorkerPlan(workers, generate, worker_threads, torch_threads, image_device, cores)


def cpu_budget() -> int:
    """The cores this process may run on (a ``taskset`` or container limit counts, the machine's
    total does not)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGKILL to this worker when its parent dies, however it dies."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the call: nobody is left to signal us
            os._exit(0)


def _worker_main(conn: Connection, others: Sequence[Connection], prepare: PrepareFn, threads: int) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes the pool
    for other in others:  # the parent's ends of earlier workers' pipes: only the parent may hold them
        other.close()
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # the tokenizer's own threads are outside the budget
    with contextlib.suppress(Exception):
        import torch

        torch.set_num_threads(threads)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        job, args = msg
        try:
            ok, value = True, prepare(*args)
        except BaseException as exc:  # the batch's error, raised again in the parent
            ok, value = False, exc
        # this worker's CPU time so far rides along: the parent's run statistics count it
        try:
            conn.send((job, ok, value, time.process_time()))
        except Exception as exc:  # an unpicklable result or exception: say what it was
            error = RuntimeError(f"preparing worker could not send its result: {exc!r}")
            conn.send((job, False, error, time.process_time()))


class PrepWorkers:
    """``n`` forked processes running ``prepare`` on ``threads`` torch threads each; :meth:`submit`
    returns a Future. ``fallback`` runs a batch in the parent when its worker died before answering."""

    def __init__(self, n: int, prepare: PrepareFn, fallback: PrepareFn, threads: int = 1) -> None:
        if n < 1:
            raise ValueError("PrepWorkers needs at least one worker")
        ctx = mp.get_context("fork")
        self._fallback = fallback
        self._lock = threading.Lock()
        self._jobs: dict[int, tuple[Future, tuple[Any, ...]]] = {}
        self._queue: deque[int] = deque()  # jobs waiting for an idle worker
        self._busy: dict[Connection, int | None] = {}
        self._procs: dict[Connection, Any] = {}
        self._next_job = 0
        self._closed = False
        self._cpu: dict[Connection, float] = {}  # each worker's CPU seconds, as it last reported them
        parents: list[Connection] = []
        for _ in range(n):
            parent, child = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=_worker_main, args=(child, list(parents), prepare, threads), daemon=True,
                               name="mmstar-prep")
            proc.start()
            child.close()
            parents.append(parent)
            self._busy[parent], self._procs[parent] = None, proc
        self._collector = threading.Thread(target=self._collect, name="mmstar-prep-results", daemon=True)
        self._collector.start()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs.values() if p.pid is not None]

    @property
    def cpu_seconds(self) -> float:
        """CPU time the workers have spent, up to their last answered batch."""
        with self._lock:
            return sum(self._cpu.values())

    @property
    def alive(self) -> int:
        with self._lock:
            return len(self._busy)

    def submit(self, *args: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("preparing workers are closed")
            job, self._next_job = self._next_job, self._next_job + 1
            self._jobs[job] = (future, args)
            if not self._busy:  # every worker died: the parent prepares it
                self._jobs.pop(job)
                self._run_elsewhere(future, args)
                return future
            self._queue.append(job)
            self._dispatch()
        return future

    def _dispatch(self) -> None:
        """Hand queued jobs to idle workers (caller holds the lock)."""
        for conn, running in list(self._busy.items()):
            if not self._queue:
                return
            if running is None:
                job = self._queue.popleft()
                try:
                    conn.send((job, self._jobs[job][1]))
                except (OSError, ValueError):  # a dead worker: its pipe is gone
                    self._queue.appendleft(job)
                    self._retire(conn)
                    continue
                except Exception:  # the batch cannot be pickled (an image loader closure, say)
                    self._run_elsewhere(*self._jobs.pop(job))
                    continue
                self._busy[conn] = job

    def _run_elsewhere(self, future: Future, args: tuple[Any, ...]) -> None:
        """Prepare one batch in the parent, in a thread of its own (never in the caller's)."""
        def run() -> None:
            try:
                future.set_result(self._fallback(*args))
            except BaseException as exc:
                future.set_exception(exc)
        threading.Thread(target=run, name="mmstar-prep-fallback", daemon=True).start()

    def _retire(self, conn: Connection) -> None:
        """A worker is gone: its batch, if any, is prepared here; it gets no more (lock held)."""
        job = self._busy.pop(conn, None)
        with contextlib.suppress(OSError):
            conn.close()
        if job is not None and job in self._jobs:
            self._run_elsewhere(*self._jobs.pop(job))
        if not self._busy:  # nobody left: whatever waits is prepared here
            while self._queue:
                self._run_elsewhere(*self._jobs.pop(self._queue.popleft()))

    def _collect(self) -> None:
        while True:
            with self._lock:
                if self._closed:  # close() shut the pipes: nothing more will arrive
                    return
                for conn in [c for c in self._busy if c.closed]:  # retired while we waited
                    self._retire(conn)
                conns = list(self._busy)
            if not conns:  # every worker has exited (close() ends them) or died
                return
            try:
                ready = wait(conns, timeout=1.0)
            except (OSError, ValueError):  # a pipe closed meanwhile: dropped at the top of the next round
                # (retrying the same closed pipe at once spun this thread with the GIL held, forever)
                continue
            for conn in ready:
                try:
                    job, ok, value, cpu = conn.recv()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    with self._lock:
                        self._retire(conn)  # type: ignore[arg-type]
                    continue
                with self._lock:
                    self._cpu[conn] = cpu  # type: ignore[index]
                    if conn in self._busy:
                        self._busy[conn] = None  # type: ignore[index]
                    future, _args = self._jobs.pop(job, (None, None))
                    self._dispatch()
                if future is not None:
                    (future.set_result if ok else future.set_exception)(value)

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns = list(self._procs)
            waiting = [self._jobs.pop(j)[0] for j in list(self._jobs)]
            self._queue.clear()
        for future in waiting:  # never running (the parent does not mark them): cancel() succeeds
            future.cancel()
        for conn in conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
        for conn, proc in self._procs.items():
            proc.join(timeout)
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
            with contextlib.suppress(OSError):
                conn.close()
        self._collector.join(timeout)
