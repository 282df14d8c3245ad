"""A minimal OpenAI-compatible chat-completions server over any backend (HF by default).

Useful to share one loaded model between tools, and used by the tests as a *real* local HTTP
endpoint for the OpenAI backend. ``fail_first`` makes it answer the first requests with 429 / 500,
to exercise clients' retries. Loopback only by default.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mmstar.sample import ImageRef

from .backend import Backend, Request


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


def make_server(models: dict[str, Backend], host: str = "127.0.0.1", port: int = 0,
                fail_first: tuple[int, ...] = ()) -> ThreadingHTTPServer:
    """Serve each backend under its model name. ``fail_first``: HTTP statuses returned, in order,
    to the first requests (e.g. (429, 500)), to exercise clients' retries."""
    lock = threading.Lock()  # one generate at a time: the model is not re-entrant
    failures = list(fail_first)
    counters = {"requests": 0, "failed_on_purpose": 0}

    class Handler(BaseHTTPRequestHandler):
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
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._send(404, {"error": {"message": "not found"}})
                return
            counters["requests"] += 1
            with lock:
                status = failures.pop(0) if failures else None
            if status is not None:
                counters["failed_on_purpose"] += 1
                self._send(status, {"error": {"message": f"injected {status}"}}, {"Retry-After": "0"})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                messages = from_openai_messages(body["messages"])
                model_name = body["model"]
                backend = models[model_name]
            except (ValueError, KeyError, TypeError) as exc:
                self._send(400 if not isinstance(exc, KeyError) else 404, {"error": {"message": f"bad request: {exc}"}})
                return
            with lock:
                (resp,) = backend.generate([Request(messages)])
            if resp.error:
                self._send(500, {"error": {"message": resp.error}})
                return
            self._send(200, {"object": "chat.completion", "model": model_name, "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": resp.text}}],
                "usage": {"prompt_tokens": resp.prompt_tokens, "completion_tokens": resp.completion_tokens,
                          "total_tokens": resp.prompt_tokens + resp.completion_tokens}})

    server = ThreadingHTTPServer((host, port), Handler)
    server.counters = counters  # type: ignore[attr-defined]
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> Callable[[], None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop
