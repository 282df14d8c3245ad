"""A small OpenAI-compatible chat-completions server over any backend (HF by default).

``mmstar serve`` shares one loaded model between tools; the tests use it as a *real* local HTTP
endpoint for the OpenAI backend. Requests that arrive together are gathered into one backend call
(up to ``max_batch``, waiting at most ``batch_wait_s`` after the first), as ``vllm serve`` batches
concurrent requests: that is what makes a client's concurrency pay off. ``fail_first`` makes it
answer the first requests with 429 / 500, to exercise clients' retries. Loopback only by default.

Each request's ``max_tokens``, ``temperature`` and ``chat_template_kwargs`` (the field vLLM and
SGLang servers take, e.g. ``{"enable_thinking": false}``) hold for that request: a batch only
gathers requests that agree on all three, and the backend gets them as a per-call ``gen``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from mmstar.sample import ImageRef

from .base import GenerationConfig, Request, Response

# apply_chat_template's own arguments, which the backend sets: a request may not turn them
RESERVED_TEMPLATE_KWARGS = frozenset({
    "conversation", "messages", "chat_template", "add_generation_prompt", "continue_final_message", "tokenize",
    "return_dict", "return_tensors", "padding", "truncation", "max_length", "processor_kwargs", "tokenizer_kwargs"})


class Servable(Protocol):
    """A backend the server can share between requests: default settings, overridable per call."""

    gen: GenerationConfig

    def generate(self, requests: Sequence[Request], gen: GenerationConfig | None = None) -> list[Response]: ...


def from_openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            out.append({"role": m["role"], "content": [{"type": "text", "text": content}]})
            continue
        parts = []
        for p in content or []:
            if p.get("type") == "image_url":
                url = p["image_url"]["url"]
                if not url.startswith("data:"):
                    raise ValueError("only data: URLs are accepted (the server fetches nothing)")
                parts.append({"type": "image", "image": ImageRef(data=base64.b64decode(url.split(",", 1)[1]))})
            elif p.get("type") == "text":
                parts.append({"type": "text", "text": p["text"]})
        out.append({"role": m["role"], "content": parts})
    return out


def template_kwargs(body: dict[str, Any]) -> dict[str, Any]:
    """The request's ``chat_template_kwargs`` (absent or null: none); anything but a JSON object,
    or a key the backend sets itself, is the client's error."""
    value = body.get("chat_template_kwargs")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"chat_template_kwargs must be a JSON object such as {{\"enable_thinking\": false}}, "
                         f"not {type(value).__name__} {json.dumps(value)[:60]}")
    taken = sorted(RESERVED_TEMPLATE_KWARGS & value.keys())
    if taken:
        raise ValueError(f"chat_template_kwargs may not set {', '.join(taken)} (the server sets them)")
    return value


@dataclasses.dataclass
class _Pending:
    model: str
    request: Request
    max_tokens: int | None
    temperature: float | None
    chat_template_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    response: Response | None = None

    def group(self) -> tuple[str, bool, int | None, float | None, str]:
        # one backend call needs one model, one generation config (template switches included: they
        # change the prompt), and (for families such as Mllama that cannot mix them) either
        # all-image or all-text rows; the switches as canonical JSON, so equal objects group together
        return (self.model, self.request.has_image, self.max_tokens, self.temperature,
                json.dumps(self.chat_template_kwargs, sort_keys=True))

    def gen(self, default: GenerationConfig) -> GenerationConfig:
        """The backend's settings with this request's on top (its switches added to the backend's own)."""
        changes: dict[str, Any] = {k: v for k, v in (("max_new_tokens", self.max_tokens),
                                                     ("temperature", self.temperature)) if v is not None}
        if self.chat_template_kwargs:
            changes["chat_template_kwargs"] = {**default.chat_template_kwargs, **self.chat_template_kwargs}
        return dataclasses.replace(default, **changes)


class Batcher:
    """One worker thread owns the backends (they are not re-entrant); handler threads queue their
    request and wait. Requests queued together go to the backend as one batch."""

    def __init__(self, models: Mapping[str, Servable], max_batch: int = 32, batch_wait_s: float = 0.01) -> None:
        self.models, self.max_batch, self.batch_wait_s = models, max(1, max_batch), max(0.0, batch_wait_s)
        self.queue: queue.Queue[_Pending | None] = queue.Queue()
        self.batch_sizes: list[int] = []
        self.batch_kwargs: list[dict[str, Any]] = []  # each batch's chat_template_kwargs, beside its size
        self.thread = threading.Thread(target=self._loop, daemon=True, name="mmstar-serve-batcher")
        self.thread.start()

    def submit(self, pending: _Pending) -> Response:
        self.queue.put(pending)
        pending.done.wait()
        return pending.response or Response(error="no response")

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=30)

    def _collect(self, first: _Pending) -> list[_Pending]:
        batch, deadline = [first], time.monotonic() + self.batch_wait_s
        while len(batch) < self.max_batch:
            try:
                item = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:  # stop after this batch
                self.queue.put(None)
                break
            batch.append(item)
        return batch

    def _loop(self) -> None:
        while (first := self.queue.get()) is not None:
            groups: dict[tuple, list[_Pending]] = {}
            for item in self._collect(first):
                groups.setdefault(item.group(), []).append(item)
            for items in groups.values():
                self._run(items)

    def _run(self, items: list[_Pending]) -> None:
        backend = self.models[items[0].model]
        try:  # the group shares one config: the first request's is everyone's, for this call only
            responses = backend.generate([p.request for p in items], gen=items[0].gen(backend.gen))
        except Exception as exc:  # the server must keep serving; the failure goes to these clients
            responses = [Response(error=f"{type(exc).__name__}: {exc}"[:300])] * len(items)
        self.batch_sizes.append(len(items))
        self.batch_kwargs.append(items[0].chat_template_kwargs)
        for p, r in zip(items, responses):
            p.response = r
            p.done.set()


def _number(body: dict[str, Any], key: str, cast: Callable[[Any], Any]) -> Any:
    value = body.get(key)
    return None if value is None else cast(value)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # the stdlib default backlog of 5 drops the SYNs of a burst of concurrent clients, which then
    # wait a whole TCP retransmit (~1 s) to connect: batching would be lost to connection stalls
    request_queue_size = 256


def make_server(models: Mapping[str, Servable], host: str = "127.0.0.1", port: int = 0,
                fail_first: tuple[int, ...] = (), max_batch: int = 32, batch_wait_s: float = 0.01,
                ) -> ThreadingHTTPServer:
    """Serve each backend under its model name; each takes a per-call ``gen`` (``HFBackend`` does).
    ``fail_first``: HTTP statuses returned, in order, to the first requests (e.g. (429, 500)), to
    exercise clients' retries."""
    lock = threading.Lock()
    failures = list(fail_first)
    counters = {"requests": 0, "failed_on_purpose": 0}
    batcher = Batcher(models, max_batch, batch_wait_s)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a client's connections are reused, not re-opened per request
        # headers and body go out as two writes; with Nagle on, the body waits for the client's
        # delayed ACK (~40 ms a request) once connections are kept alive
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send(200, {"object": "list", "data": [{"id": name, "object": "model"} for name in models]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            # read the body before any reply: on a kept-alive connection an unread body would be
            # taken for the next request
            try:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            except ValueError:
                self.close_connection = True
                self._send(400, {"error": {"message": "bad Content-Length"}})
                return
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._send(404, {"error": {"message": "not found"}})
                return
            with lock:
                counters["requests"] += 1
                status = failures.pop(0) if failures else None
                if status is not None:
                    counters["failed_on_purpose"] += 1
            if status is not None:
                self._send(status, {"error": {"message": f"injected {status}"}}, {"Retry-After": "0"})
                return
            try:
                body = json.loads(raw)
                pending = _Pending(body["model"], Request(from_openai_messages(body["messages"])),
                                   _number(body, "max_tokens", int), _number(body, "temperature", float),
                                   template_kwargs(body))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self._send(400, {"error": {"message": f"bad request: {exc}"}})
                return
            if pending.model not in models:
                self._send(404, {"error": {"message": f"unknown model {pending.model!r}; served: {sorted(models)}"}})
                return
            resp = batcher.submit(pending)
            if resp.error:
                self._send(500, {"error": {"message": resp.error}})
                return
            self._send(200, {"object": "chat.completion", "model": pending.model, "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": resp.text}}],
                "usage": {"prompt_tokens": resp.prompt_tokens, "completion_tokens": resp.completion_tokens,
                          "total_tokens": resp.prompt_tokens + resp.completion_tokens}})

    server = _Server((host, port), Handler)
    server.counters = counters  # type: ignore[attr-defined]
    server.batcher = batcher  # type: ignore[attr-defined]
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> Callable[[], None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        server.batcher.stop()  # type: ignore[attr-defined]

    return stop
