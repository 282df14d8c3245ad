"""A continuous request pool for HTTP model servers: the async machinery behind ``--backend openai``.

Why a pool and not a batch: a remote server's latency has a heavy tail (a few requests take many
times the median). Sending a batch and waiting for its slowest member leaves the server idle for most
of the hour; a pool starts the next request the moment any request finishes, across batch and mode
boundaries, so the run takes about ``sum(latencies) / concurrency``.

- :class:`Endpoint`: one server. A private event loop thread holds one keep-alive ``httpx`` client for
  the life of the endpoint; requests are submitted from any thread and come back as futures.
- :class:`AdaptiveLimit`: how many requests may be in flight. AIMD: halved when the server signals
  congestion (429, 503, 504, a timeout), at most once per round trip, and grown by one per window of
  successes back to the ceiling (``--concurrency``).
- :class:`Bucket`: ``--rpm`` / ``--tpm`` ceilings, paced per second as providers count them per minute.
- :func:`stream`: keeps a window of jobs submitted and yields each completion as it arrives.

Endpoints are shared (:func:`acquire` / :func:`release`): the LVLM and its backbone on one server use
one client and one limit, because the server's capacity and the provider's rate limits are shared.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from .base import Request, Response

CONGESTION = frozenset({429, 503, 504})  # "too much": shrink the window, then retry
RETRY = CONGESTION | {408, 409, 500, 502}  # worth another attempt, window unchanged
MAX_WAIT_S = 120.0  # the longest Retry-After (or backoff) honoured; a longer one is a provider outage

T = TypeVar("T")


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); None if absent/unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# words providers put in refusals (OpenAI, Azure, vLLM, SGLang, TGI, Anthropic- and Gemini-compatible
# endpoints), checked in the error code first, then in the message
_KINDS = (("context_length", ("context_length", "context length", "maximum context", "too many tokens",
                              "prompt is too long", "input is too long", "max_model_len")),
          ("content_filter", ("content_filter", "content filter", "content_policy", "content policy",
                              "responsible ai", "safety")),
          ("image", ("image",)))


def error_kind(status: int | None, body: str = "") -> str:
    """A short name for why a request failed, from its HTTP status and OpenAI-style error body."""
    try:
        err = json.loads(body).get("error") or {}
        code = " ".join(str(err.get(k) or "") for k in ("code", "type")) if isinstance(err, dict) else ""
    except (ValueError, AttributeError):
        code = ""
    for text in (code.lower(), body.lower()):
        for kind, words in _KINDS:
            if any(w in text for w in words) and (status is None or 400 <= status < 500):
                return kind
    return {401: "auth", 403: "auth", 404: "not_found", 413: "too_large", 429: "rate_limited"}.get(
        status or 0, "server_error" if (status or 0) >= 500 else "bad_request")


def failure(kind: str, message: str, attempts: int = 1) -> Response:
    """A failed request: the kind leads the error text, so records on disk say it too."""
    return Response(error=f"{kind}: {message}"[:500], extra={"error_kind": kind, "attempts": attempts})


class AdaptiveLimit:
    """How many requests may be in flight (AIMD). Lives on the endpoint's event loop."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(1, int(ceiling))
        self.limit = float(self.ceiling)
        self.in_flight = self.peak = self.decreases = 0
        self.lowest = self.ceiling
        self._cut_at = -1.0  # when the window was last cut
        self._cond: asyncio.Condition | None = None

    async def acquire(self) -> float:
        """Wait for a slot; returns when the request goes out (its congestion signal is judged by it)."""
        self._cond = self._cond or asyncio.Condition()
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < int(self.limit))
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        return time.monotonic()

    async def release(self) -> None:
        if self._cond is None:  # started by __enter__; kept under python -O too
            raise RuntimeError("the pool's limiter is not running")
        async with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()  # the limit may have grown by more than one slot

    def succeeded(self) -> None:
        self.limit = min(float(self.ceiling), self.limit + 1.0 / self.limit)  # +1 per window of successes

    def congested(self, sent_at: float) -> None:
        # the requests that were already out when the window was cut saw the old window: one cut per
        # round trip, or a burst of 429s would drive the window to 1 at once
        if sent_at < self._cut_at:
            return
        self.limit = max(1.0, self.limit / 2)
        self._cut_at = time.monotonic()
        self.decreases += 1
        self.lowest = min(self.lowest, int(self.limit))


class Bucket:
    """A token bucket refilled at ``per_minute / 60`` a second, holding one second's worth, so a
    provider's per-minute ceiling is never exceeded by a burst. Takers are served in order."""

    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level, self._at = self.capacity, time.monotonic()
        self._lock: asyncio.Lock | None = None
        self.waited = 0.0  # seconds spent waiting for the ceiling: says whether it was the bottleneck

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self._at) * self.rate)
        self._at = now

    async def take(self, n: float) -> None:
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:  # FIFO: asyncio.Lock wakes waiters in order
            need = min(n, self.capacity)  # a request larger than the bucket goes when it is full
            while True:
                self._refill()
                if self.level >= need:
                    self.level -= n
                    return
                wait = (need - self.level) / self.rate
                self.waited += wait
                await asyncio.sleep(wait)

    def give(self, n: float) -> None:
        """Return an over-estimate (or charge an under-estimate, n < 0) once the real usage is known."""
        self._refill()
        self.level = min(self.capacity, self.level + n)


@dataclass(frozen=True)
class EndpointConfig:
    """What makes two backends share an endpoint: the same URL, key and limits."""

    url: str  # the POST target
    headers: tuple[tuple[str, str], ...] = field(repr=False)  # holds the API key: never printed
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    timeout: float = 120.0
    max_retries: int = 6
    backoff: float = 1.0


Parse = Callable[[Any], Response]  # an httpx.Response with status 200 -> the model's answer


class Endpoint:
    """One server, one persistent client on a private event loop; thread-safe :meth:`submit`."""

    def __init__(self, config: EndpointConfig, httpx: Any) -> None:
        self.config, self.httpx = config, httpx
        self.limit = AdaptiveLimit(config.concurrency)
        self.requests = Bucket(config.rpm) if config.rpm else None
        self.tokens = Bucket(config.tpm) if config.tpm else None
        self.counts: Counter[str] = Counter()
        self.users = 0
        self._paused_until = 0.0  # a Retry-After holds every request, not just the one that got it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._start_lock = threading.Lock()

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, daemon=True, name="mmstar-api-pool")
                self._thread.start()
                self._client = asyncio.run_coroutine_threadsafe(self._make_client(), loop).result()
                self._loop = loop
            return self._loop

    async def _make_client(self) -> Any:
        c = self.config.concurrency
        return self.httpx.AsyncClient(timeout=self.config.timeout, headers=dict(self.config.headers),
                                      limits=self.httpx.Limits(max_connections=c, max_keepalive_connections=c))

    def submit(self, payload: dict[str, Any], parse: Parse, tokens: float = 0.0) -> concurrent.futures.Future[Response]:
        """Send ``payload`` (retrying as the limits allow); ``tokens`` estimates it for ``--tpm``."""
        return asyncio.run_coroutine_threadsafe(self._send(payload, parse, tokens), self._start())

    async def _send(self, payload: dict[str, Any], parse: Parse, tokens: float) -> Response:
        httpx, cfg = self.httpx, self.config
        attempt = 0
        while True:
            attempt += 1
            if (pause := self._paused_until - time.monotonic()) > 0:
                await asyncio.sleep(pause)
            if self.requests:
                await self.requests.take(1)
            if self.tokens:
                await self.tokens.take(tokens)
            sent = await self.limit.acquire()
            status, wait = None, None
            self.counts["sent"] += 1
            try:
                resp = await self._client.post(cfg.url, json=payload)
            except httpx.TimeoutException as exc:
                kind, last = "timeout", f"no answer within {cfg.timeout:g} s ({type(exc).__name__})"
                self.limit.congested(sent)
            except httpx.TransportError as exc:  # refused, reset or dropped connection
                kind, last = "connection", f"{type(exc).__name__}: {exc}"
            else:
                status = resp.status_code
                self.counts[f"http_{status}"] += 1
                if status == 200:
                    self.limit.succeeded()
                    answer = parse(resp)
                    if self.tokens and (answer.prompt_tokens or answer.completion_tokens):
                        self.tokens.give(tokens - answer.prompt_tokens - answer.completion_tokens)
                    answer.extra["attempts"] = attempt
                    return answer
                kind, last = error_kind(status, resp.text), f"HTTP {status}: {' '.join(resp.text.split())[:300]}"
                if status in CONGESTION:
                    self.limit.congested(sent)
                    wait = retry_after(resp.headers.get("retry-after"))
                    if wait is not None:
                        wait = min(wait, MAX_WAIT_S)
                        self._paused_until = max(self._paused_until, time.monotonic() + wait)
            finally:
                await self.limit.release()
            self.counts[kind] += 1
            if (status is not None and status not in RETRY) or attempt > cfg.max_retries:
                self.counts["failed"] += 1
                return failure(kind, f"request failed after {attempt} attempt(s): {last}", attempt)
            self.counts["retries"] += 1
            await asyncio.sleep(wait if wait is not None else self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        # exponential with jitter, so the retries of one burst do not all land at once
        return min(MAX_WAIT_S, self.config.backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)  # noqa: S311  jitter, not a secret

    def stats(self) -> dict[str, Any]:
        """For the manifest: how hard the run could push the server, and what pushed back."""
        out: dict[str, Any] = {
            "concurrency": self.limit.ceiling, "concurrency_reached": self.limit.peak,
            "concurrency_final": int(self.limit.limit), "concurrency_lowest": self.limit.lowest,
            "backoffs": self.limit.decreases, "requests_sent": self.counts["sent"],
            "retries": self.counts["retries"], "failed": self.counts["failed"],
            "throttled": self.counts["http_429"] + self.counts["http_503"],
            "timeouts": self.counts["timeout"], "connection_errors": self.counts["connection"]}
        for name, bucket in (("rpm", self.requests), ("tpm", self.tokens)):
            if bucket is not None:
                out[name] = round(bucket.rate * 60)
                out[f"{name}_waited_s"] = round(bucket.waited, 3)
        return out

    def close(self) -> None:
        loop = self._loop
        if loop is None:
            return
        self._loop = None

        async def finish() -> None:
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            await self._client.aclose()

        try:
            asyncio.run_coroutine_threadsafe(finish(), loop).result(timeout=10)
        except (concurrent.futures.TimeoutError, RuntimeError):  # pragma: no cover - a wedged loop
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()


_ENDPOINTS: dict[EndpointConfig, Endpoint] = {}
_REGISTRY_LOCK = threading.Lock()


def acquire(config: EndpointConfig, httpx: Any) -> Endpoint:
    """The shared endpoint for ``config`` (created on first use); pair with :func:`release`."""
    with _REGISTRY_LOCK:
        endpoint = _ENDPOINTS.get(config)
        if endpoint is None:
            endpoint = _ENDPOINTS[config] = Endpoint(config, httpx)
        endpoint.users += 1
        return endpoint


def release(endpoint: Endpoint) -> None:
    with _REGISTRY_LOCK:
        endpoint.users -= 1
        if endpoint.users > 0:
            return
        if _ENDPOINTS.get(endpoint.config) is endpoint:
            del _ENDPOINTS[endpoint.config]
    endpoint.close()


class Submits(Protocol):
    """A backend that takes requests one at a time (the ``streams`` capability)."""

    def submit(self, request: Request) -> concurrent.futures.Future[Response]: ...


_FED = object()


class _Source:
    """One consumer's jobs in a :class:`Feed`, and the queue its completions come back on."""

    def __init__(self, jobs: Iterator[tuple[Any, Submits, Request]]) -> None:
        self.jobs = jobs
        self.done: queue.Queue[Any] = queue.Queue()
        self.stop = threading.Event()  # the consumer left: submit nothing more for it
        self.sent = 0


class Feed:
    """One window shared by several job streams: at most ``window`` jobs submitted and unfinished,
    whichever stream they come from. A feeder thread takes one job from each stream in turn (so the
    streams advance together) the moment a slot frees, and hands each completion to its own stream.

    One run's modes share a private feed (:func:`stream`); a sweep gives every run on the same server
    one feed, so the models of the sweep keep the server as busy as one run does, each run still
    writing its own records as they arrive. Jobs are built lazily by the feeder (payloads, images)."""

    def __init__(self, window: int) -> None:
        self.window = max(1, int(window))
        self._slots = threading.Semaphore(self.window)
        self._sources: list[_Source] = []
        self._turn = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def stream(self, jobs: Iterable[tuple[T, Submits, Request]]) -> Iterator[list[tuple[T, Response]]]:
        """Submit ``jobs`` through the shared window; yield, each time, every job of theirs that
        finished since the last yield (at least one), as ``(tag, response)``."""
        source = _Source(iter(jobs))
        with self._cond:
            if self._closed:
                raise RuntimeError("the request feed is closed")
            self._sources.append(source)
            if self._thread is None:
                self._thread = threading.Thread(target=self._feed, daemon=True, name="mmstar-api-feeder")
                self._thread.start()
            self._cond.notify_all()
        try:
            yield from _completions(source)
        finally:
            source.stop.set()  # the feeder drops it at its next turn

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _next_source(self) -> _Source | None:
        """The next stream in turn (round robin), waiting while there is none; None once closed."""
        with self._cond:
            while not self._sources and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            self._turn %= len(self._sources)
            source = self._sources[self._turn]
            self._turn += 1
            return source

    def _drop(self, source: _Source, last: Any) -> None:
        with self._cond:
            if source in self._sources:
                self._sources.remove(source)
        source.done.put(last)

    def _feed(self) -> None:
        while True:
            while not self._slots.acquire(timeout=0.2):  # a slot first: then the job is built and sent at once
                if self._closed:
                    return
            source = self._next_source()
            if source is None:
                return
            if source.stop.is_set():
                self._slots.release()
                self._drop(source, (_FED, source.sent))
                continue
            try:
                tag, backend, request = next(source.jobs)
                future = backend.submit(request)
            except StopIteration:
                self._slots.release()
                self._drop(source, (_FED, source.sent))
                continue
            except BaseException as exc:  # a bug in building a request: that stream's consumer raises it
                self._slots.release()
                self._drop(source, exc)
                continue
            source.sent += 1
            future.add_done_callback(lambda f, tag=tag, source=source: self._finished(source, tag, f))

    def _finished(self, source: _Source, tag: Any, future: concurrent.futures.Future[Response]) -> None:
        self._slots.release()
        source.done.put((tag, future))


def _completions(source: _Source) -> Iterator[list[tuple[Any, Response]]]:
    received, expected = 0, None
    while expected is None or received < expected:
        batch: list[tuple[Any, Response]] = []
        item = source.done.get()
        while True:
            if isinstance(item, BaseException):
                raise item
            tag, future = item
            if tag is _FED:
                expected = future
            else:
                batch.append((tag, _outcome(future)))
                received += 1
            try:
                item = source.done.get_nowait()
            except queue.Empty:
                break
        if batch:
            yield batch


def stream(jobs: Iterable[tuple[T, Submits, Request]], window: int) -> Iterator[list[tuple[T, Response]]]:
    """Submit every job, at most ``window`` unfinished at a time; yield, each time, every job that
    finished since the last yield (at least one), as ``(tag, response)``.

    A feeder thread submits (building payloads, e.g. encoding images, off the caller's thread), and a
    finished job frees its slot at once: the caller writing a record to disk never starves the pool.
    """
    feed = Feed(window)
    try:
        yield from feed.stream(jobs)
    finally:
        feed.close()


def _outcome(future: concurrent.futures.Future[Response]) -> Response:
    try:
        return future.result()
    except concurrent.futures.CancelledError:
        raise
    except Exception as exc:  # a client bug must not lose the record: it is written as an error, retried on resume
        return failure("client_error", f"{type(exc).__name__}: {exc}")
