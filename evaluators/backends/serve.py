"""``mmstar serve``: an OpenAI-compatible chat-completions server over local backends (HF by default).

An ASGI app (Starlette on uvicorn, the stack ``vllm serve`` uses). It shares one loaded model between
tools, and the tests use it as a *real* endpoint for the openai backend and the official ``openai``
client. Requests that arrive together are generated as one batch (up to ``max_batch``, waiting at
most ``batch_wait_s`` after the first), as ``vllm serve`` batches concurrent requests: that is what
makes a client's concurrency pay off. Each request's ``max_tokens``, ``temperature`` and
``chat_template_kwargs`` (the field vLLM and SGLang take, e.g. ``{"enable_thinking": false}``) hold
for that request: a batch gathers only requests that agree on all three.

``stream: true`` is answered with server-sent events (``chat.completion.chunk`` objects, then
``[DONE]``). The answer is generated with its batch, so its chunks arrive together: the stream is the
protocol, not token-by-token latency. A malformed request is a 400 / 404 with an OpenAI-style error
body before it reaches the model; every answer carries ``id``, ``created`` and ``usage``. With an API
key, every ``/v1`` route wants ``Authorization: Bearer KEY`` (a constant-time comparison) and answers
401 otherwise; without one, the server binds to loopback only. Before any of that, ``serve_guard.py``
checks the ``Host`` header (403: DNS rebinding), the JSON content type (415: cross-site posts), the body
size (413) and the JSON itself (400: NaN, Infinity, nesting); images are opened under the pixel cap of
``mmstar.images``, and the batcher refuses a prompt beyond the model's context (400) before it generates.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from mmstar.errors import DataError, require
from mmstar.images import open_image, pixel_cap
from mmstar.sample import ImageRef

from .base import Request, Response
from .batcher import Batcher, Pending, Servable, template_kwargs
from .serve_guard import Guard, Refused, check_exposure, clip, is_loopback

__all__ = ["ApiError", "Guard", "Servable", "Server", "check_exposure", "create_app", "from_openai_messages",
           "is_loopback", "make_server", "serve_in_thread", "template_kwargs"]

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class ApiError(Exception):
    """A request the server refuses, as OpenAI reports it: status, message, type, param, code."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict[str, Any]:
        kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}.get(
            self.status, "server_error" if self.status >= 500 else "invalid_request_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


def _decode_image(url: str, where: str) -> ImageRef:
    if not url.startswith("data:"):
        raise ApiError(400, "only data: image URLs are accepted (the server fetches nothing)", param="messages",
                       code="invalid_image_url")
    try:
        data = base64.b64decode(url.split(",", 1)[1], validate=True)
    except (IndexError, binascii.Error, ValueError) as exc:
        raise ApiError(400, f"{where}: undecodable image ({type(exc).__name__}: {exc})"[:300], param="messages",
                       code="invalid_image") from None
    try:  # the pixel cap on the header, then the whole file read (verify): a bad image fails here, not in the model
        open_image(data, where, decode=False)
    except DataError as exc:
        raise ApiError(400, f"undecodable image: {exc}"[:300], param="messages", code="invalid_image") from None
    return ImageRef(data=data, origin=where)


def from_openai_messages(messages: Any) -> list[dict[str, Any]]:
    """OpenAI chat messages -> the backend's parts; anything malformed is the client's error (400)."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty list of chat messages", param="messages")
    out = []
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ROLES:
            raise ApiError(400, f"messages[{i}]: role must be one of {', '.join(ROLES)}, not {clip(role)}",
                           param="messages")
        content = m.get("content")
        if isinstance(content, str):
            out.append({"role": ROLES[role], "content": [{"type": "text", "text": content}]})
            continue
        if not isinstance(content, list):
            raise ApiError(400, f"messages[{i}]: content must be text or a list of parts", param="messages")
        parts = []
        for j, p in enumerate(content):
            kind = p.get("type") if isinstance(p, dict) else None
            if kind == "image_url" and isinstance(p.get("image_url"), dict):
                image = _decode_image(str(p["image_url"].get("url", "")), f"messages[{i}].content[{j}]")
                parts.append({"type": "image", "image": image})
            elif kind == "text" and isinstance(p.get("text"), str):
                parts.append({"type": "text", "text": p["text"]})
            else:
                raise ApiError(400, f"messages[{i}]: unsupported content part {str(kind)[:40]!r} (text and "
                               "image_url are)", param="messages")
        out.append({"role": ROLES[role], "content": parts})
    return out


def context_length(backend: Any) -> int | None:
    """The model's context window, where the backend exposes its model config (HF does)."""
    own = getattr(backend, "context_length", None)
    if isinstance(own, int) and own > 0:
        return own
    config = getattr(getattr(backend, "model", None), "config", None)
    if config is None:
        return None
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(text, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _number(body: dict[str, Any], key: str, cast: Callable[[Any], Any], low: float, high: float | None) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (cast is int and value != int(value)):
        raise ApiError(400, f"{key} must be a number, not {json.dumps(value)[:40]}", param=key)
    if value < low or (high is not None and value > high):
        raise ApiError(400, f"{key} {value} is out of range ({low} to {high if high is not None else 'any'})",
                       param=key)
    return cast(value)


def parse_request(body: Any, models: Mapping[str, Servable], contexts: Mapping[str, int | None]) -> Pending:
    """A chat-completions body -> a request for the batcher, or an :class:`ApiError` saying what is wrong."""
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model is required", param="model")
    if model not in models:
        # the name clipped: a 404 must not echo a 100 MB model name back
        raise ApiError(404, f"unknown model {clip(model)}; served: {', '.join(models)}", param="model",
                       code="model_not_found")
    if body.get("n") not in (None, 1):
        raise ApiError(400, "n must be 1 (one answer per request)", param="n")
    context = contexts.get(model)
    max_tokens = _number(body, "max_tokens", int, 1, None)
    if max_tokens is None:  # OpenAI's newer name for the same budget
        max_tokens = _number(body, "max_completion_tokens", int, 1, None)
    if max_tokens is not None and context is not None and max_tokens > context:
        raise ApiError(400, f"max_tokens {max_tokens} is beyond the model's context length of {context} tokens",
                       param="max_tokens", code="context_length_exceeded")
    try:
        kwargs = template_kwargs(body)
    except ValueError as exc:
        raise ApiError(400, str(exc), param="chat_template_kwargs") from None
    return Pending(model, Request(from_openai_messages(body.get("messages"))), max_tokens,
                   _number(body, "temperature", float, 0, 2), kwargs)


class _Service:
    """The app's state: models, batcher, key, fault injection and counters."""

    def __init__(self, models: Mapping[str, Servable], api_key: str | None, fail_first: tuple[int, ...],
                 max_batch: int, batch_wait_s: float) -> None:
        self.models, self.api_key = dict(models), api_key
        self.contexts = {name: context_length(b) for name, b in self.models.items()}
        self.failures = list(fail_first)
        self.counters = {"requests": 0, "failed_on_purpose": 0, "unauthorized": 0}
        self.batcher = Batcher(self.models, max_batch, batch_wait_s, self.contexts)
        self.created = int(time.time())

    def authorize(self, headers: Mapping[str, str]) -> None:
        if self.api_key is None:
            return
        scheme, _, given = headers.get("authorization", "").partition(" ")
        # compare_digest: the time taken says nothing about how much of the key was right
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.api_key.encode()):
            self.counters["unauthorized"] += 1
            raise ApiError(401, "missing or wrong API key: send the header Authorization: Bearer KEY",
                           code="invalid_api_key")

    def models_body(self) -> dict[str, Any]:
        return {"object": "list", "data": [
            {"id": name, "object": "model", "created": self.created, "owned_by": "mmstar",
             "max_model_len": self.contexts[name]} for name in self.models]}


def _completion(pending: Pending, resp: Response) -> dict[str, Any]:
    budget = pending.max_tokens or 0
    # the backend's own reason where it knows one (a cut at the backend's default budget counts too)
    finish = resp.finish_reason or ("length" if budget and resp.completion_tokens >= budget else "stop")
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": pending.model, "choices": [{"index": 0, "finish_reason": finish, "logprobs": None,
                                                 "message": {"role": "assistant", "content": resp.text}}],
            "usage": {"prompt_tokens": resp.prompt_tokens, "completion_tokens": resp.completion_tokens,
                      "total_tokens": resp.prompt_tokens + resp.completion_tokens}}


async def _sse(done: dict[str, Any], include_usage: bool) -> AsyncIterator[bytes]:
    """One completion as chat.completion.chunk events: role, content, finish (with usage), [DONE]."""
    head = {"id": done["id"], "object": "chat.completion.chunk", "created": done["created"], "model": done["model"]}
    choice = done["choices"][0]

    def event(delta: dict[str, Any], finish: str | None = None, **more: Any) -> bytes:
        chunk = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **more}
        return f"data: {json.dumps(chunk)}\n\n".encode()

    yield event({"role": "assistant", "content": ""})
    if choice["message"]["content"]:
        yield event({"content": choice["message"]["content"]})
    yield event({}, choice["finish_reason"], usage=done["usage"])  # usage on every answer, streamed or not
    if include_usage:  # OpenAI's own form: a last chunk with no choices
        yield f"data: {json.dumps({**head, 'choices': [], 'usage': done['usage']})}\n\n".encode()
    yield b"data: [DONE]\n\n"


def create_app(models: Mapping[str, Servable], *, api_key: str | None = None, fail_first: tuple[int, ...] = (),
               max_batch: int = 32, batch_wait_s: float = 0.01, guard: Guard | None = None) -> Any:
    """The ASGI app; ``app.state.service`` holds the batcher and counters. ``fail_first``: HTTP statuses
    returned, in order, to the first chat requests (e.g. (429, 500)), to exercise clients' retries.
    ``guard``: the Host, content-type, body-size and JSON checks (serve_guard.py; loopback by default)."""
    require("starlette", "serve")
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request as HttpRequest
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    service = _Service(models, api_key, tuple(fail_first), max_batch, batch_wait_s)
    guard = guard or Guard.create()

    def refuse(err: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
        if err.status == 401:
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return JSONResponse(err.body(), status_code=err.status, headers=headers)

    def refused(err: Refused) -> JSONResponse:
        return refuse(ApiError(err.status, err.message, code=err.code))

    async def list_models(request: HttpRequest) -> JSONResponse:
        try:
            guard.check_host(request.headers)
            service.authorize(request.headers)
        except Refused as err:
            return refused(err)
        except ApiError as err:
            return refuse(err)
        return JSONResponse(service.models_body())

    async def chat(request: HttpRequest) -> Any:
        try:
            guard.check_host(request.headers)  # before the key: a rebinding page learns nothing
            service.authorize(request.headers)
            service.counters["requests"] += 1
            if service.failures:  # the event loop is one thread: no lock needed
                status = service.failures.pop(0)
                service.counters["failed_on_purpose"] += 1
                return refuse(ApiError(status, f"injected {status}"), {"Retry-After": "0"})
            guard.check_json_type(request.headers)
            body = guard.parse_json(await guard.read_body(request.headers, request.stream()))
            # decoding images is CPU work: off the event loop, which keeps serving other requests
            pending = await asyncio.to_thread(parse_request, body, service.models, service.contexts)
        except Refused as err:
            return refused(err)
        except ApiError as err:
            return refuse(err)
        resp = await asyncio.wrap_future(service.batcher.submit(pending))
        if resp.error:  # the batcher marks the client's faults (a prompt over the context) with their status
            return refuse(ApiError(int(resp.extra.get("status", 500)), resp.error, code=resp.extra.get("code")))
        done = _completion(pending, resp)
        if body.get("stream") is True:
            options = body.get("stream_options") if isinstance(body.get("stream_options"), dict) else {}
            return StreamingResponse(_sse(done, bool(options.get("include_usage"))), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        return JSONResponse(done)

    async def health(request: HttpRequest) -> JSONResponse:
        try:
            guard.check_host(request.headers)
        except Refused as err:
            return refused(err)
        return JSONResponse({"status": "ok"})

    async def http_error(request: HttpRequest, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 500)
        try:
            guard.check_host(request.headers)
        except Refused as err:
            return refused(err)
        return refuse(ApiError(status, f"{request.method} {clip(request.url.path)}: {getattr(exc, 'detail', exc)}",
                               code="not_found" if status == 404 else None))

    routes = [Route(p, chat, methods=["POST"]) for p in ("/v1/chat/completions", "/chat/completions")]
    routes += [Route(p, list_models, methods=["GET"]) for p in ("/v1/models", "/models")]
    routes.append(Route("/health", health, methods=["GET"]))
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.service = service
    return app


class Server:
    """The app on uvicorn, on a socket bound at construction (so ``server_address`` is known at once,
    port 0 included, and clients that connect before the loop starts wait in the backlog)."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        uvicorn = require("uvicorn", "serve")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host.strip("[]"), port))
        # a burst of concurrent clients must not overflow the backlog: a dropped SYN costs ~1 s
        self.socket.listen(1024)
        self.server_address = self.socket.getsockname()[:2]
        self.app, self.service = app, app.state.service
        self.counters, self.batcher = self.service.counters, self.service.batcher
        # log_config None: a server started inside a test or notebook leaves their logging alone
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="off",
                                timeout_keep_alive=75, timeout_graceful_shutdown=5, server_header=False)
        self.uvicorn = uvicorn.Server(config)

    def serve_forever(self) -> None:
        """Until :meth:`shutdown` (or Ctrl-C / SIGTERM when run in the main thread)."""
        self.uvicorn.run(sockets=[self.socket])

    def shutdown(self) -> None:
        self.uvicorn.should_exit = True

    def server_close(self) -> None:
        self.socket.close()
        self.batcher.stop()


def make_server(models: Mapping[str, Servable], host: str = "127.0.0.1", port: int = 0,
                fail_first: tuple[int, ...] = (), max_batch: int = 32, batch_wait_s: float = 0.01,
                api_key: str | None = None, allowed_hosts: tuple[str, ...] = (),
                max_body_bytes: int | None = None) -> Server:
    """Serve each backend under its model name; each takes a per-call ``gen`` (``HFBackend`` does).
    ``allowed_hosts``: ``Host`` names answered besides loopback and ``host`` (a proxy's public name)."""
    check_exposure(host, api_key)
    pixel_cap()  # a bad MMSTAR_MAX_IMAGE_PIXELS fails the start, not each image request
    guard = Guard.create(host, allowed_hosts, max_body_bytes)
    app = create_app(models, api_key=api_key, fail_first=fail_first, max_batch=max_batch, batch_wait_s=batch_wait_s,
                     guard=guard)
    return Server(app, host, port)


def serve_in_thread(server: Server) -> Callable[[], None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="mmstar-serve")
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join(timeout=30)
        server.server_close()

    return stop

