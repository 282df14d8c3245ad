"""A stand-in for a remote chat-completions API: heavy-tailed latency, injected faults, refusals.

Not a model: it answers each request with a letter derived from its messages, after a latency also
derived from them (so every client, attempt and path sees the same latency for the same request).
A share of requests (``--slow-share``) is many times slower than the rest, as on a busy server or a
provider's API. ``--fail-share`` answers that share of *attempts* with a 429, a 500 or a dropped
connection; ``--refuse-share`` refuses that share of *requests* as providers do (context length,
content filter), always the same ones; ``--length-share`` answers that share of requests as a reply cut
by the token budget (``finish_reason`` "length", the text stopping right after naming an option).
``--echo-credentials`` refuses every request with a 401 whose
body repeats the request's Authorization header and path, as careless providers do (the secret
redaction tests). Raw asyncio HTTP/1.1 with keep-alive, so the faults are real
(a dropped connection is a closed socket) and the stand-in costs the client's machine little.

    python benchmarks/api_standin.py --port 0 --slow-share 0.05 --slow-ms 1500
    # prints "listening http://127.0.0.1:PORT/v1"; GET /stats reports what it served, POST /reset clears it

Used by benchmarks/api_throughput.py and tests/test_api_pool*.py (they start it as a subprocess).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REFUSALS = (
    (400, {"error": {"message": "This model's maximum context length is 128 tokens. However, your messages "
                                "resulted in 4096 tokens.", "type": "invalid_request_error", "param": "messages",
                     "code": "context_length_exceeded"}}),
    (400, {"error": {"message": "The response was filtered due to the prompt triggering the content management "
                                "policy.", "type": None, "param": "prompt", "code": "content_filter"}}),
    (200, None),  # a 200 whose answer the provider withheld: finish_reason content_filter, content null
)


def _completion(body: dict[str, Any], finish: str, content: str | None, usage: dict[str, int]) -> dict[str, Any]:
    return {"id": "chatcmpl-standin", "object": "chat.completion", "created": 0, "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}],
            "usage": usage}


class StandIn:
    def __init__(self, fast_ms: tuple[float, float] = (30, 60), slow_share: float = 0.05, slow_ms: float = 1500,
                 fail_share: float = 0.0, refuse_share: float = 0.0, seed: int = 0, echo: bool = False,
                 length_share: float = 0.0) -> None:
        self.fast_ms, self.slow_share, self.slow_ms, self.echo = fast_ms, slow_share, slow_ms, echo
        self.length_share = length_share
        self.fail_share, self.refuse_share = fail_share, refuse_share
        self.rng = random.Random(seed)
        self.reset()

    def reset(self) -> None:
        self.stats: dict[str, Any] = {"requests": 0, "served": 0, "latency_sum": 0.0, "faults": Counter(),
                                      "refused": Counter(), "in_flight": 0, "peak_in_flight": 0,
                                      "connections": 0, "by_model": Counter(), "in_flight_by_model": Counter(),
                                      "peak_models": 0, "peak_in_flight_mixed": 0}

    def plan(self, body: dict[str, Any]) -> tuple[float, str, int]:
        """The latency (s), the answer letter and the refusal slot (-1: none) of a request."""
        key = json.dumps([body.get("model"), body.get("messages")], sort_keys=True).encode()
        h = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
        u = (h % 10_000) / 10_000
        lo, hi = self.fast_ms
        fast = lo + (hi - lo) * ((h >> 16) % 1000) / 1000
        latency = (self.slow_ms if u < self.slow_share else fast) / 1000
        refuse = (h >> 32) % len(REFUSALS) if ((h >> 40) % 10_000) / 10_000 < self.refuse_share else -1
        return latency, "ABCD"[(h >> 8) % 4], refuse

    def cut(self, body: dict[str, Any]) -> bool:
        """Whether this request's answer is cut by the token budget (the same requests every time)."""
        key = json.dumps([body.get("model"), body.get("messages"), "cut"], sort_keys=True).encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") % 10_000 < self.length_share * 10_000

    async def answer(self, raw: bytes) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        """(status, body, headers); body None drops the connection."""
        s = self.stats
        s["requests"] += 1
        try:
            body = json.loads(raw)
            messages = body["messages"]
        except (ValueError, KeyError, TypeError):
            return 400, {"error": {"message": "bad request", "type": "invalid_request_error"}}, {}
        if self.fail_share and self.rng.random() < self.fail_share:
            fault = self.rng.choice(("429", "500", "drop"))
            s["faults"][fault] += 1
            if fault == "drop":
                await asyncio.sleep(0.005)
                return 0, None, {}
            return int(fault), {"error": {"message": f"injected {fault}", "type": "server_error"}}, {"Retry-After": "0"}
        latency, letter, refuse = self.plan(body)
        model, busy = str(body.get("model")), s["in_flight_by_model"]
        s["in_flight"] += 1
        busy[model] += 1
        s["peak_in_flight"] = max(s["peak_in_flight"], s["in_flight"])
        # several models served at once (a sweep's shared pool), and how many requests were out then
        models = sum(1 for n in busy.values() if n > 0)
        s["peak_models"] = max(s["peak_models"], models)
        if models > 1:
            s["peak_in_flight_mixed"] = max(s["peak_in_flight_mixed"], s["in_flight"])
        try:
            await asyncio.sleep(latency)
        finally:
            s["in_flight"] -= 1
            busy[model] -= 1
        s["by_model"][model] += 1
        s["served"] += 1
        s["latency_sum"] += latency
        usage = {"prompt_tokens": max(1, len(json.dumps(messages)) // 4), "completion_tokens": 1}
        usage["total_tokens"] = usage["prompt_tokens"] + 1
        if self.cut(body):  # cut by the budget mid-thought: it names an option, it has not chosen one
            cut = f"Let me compare the options one by one. Option {letter}"
            return 200, _completion(body, "length", cut, usage), {}
        if refuse >= 0:
            status, refusal = REFUSALS[refuse]
            s["refused"][("context_length", "content_filter", "withheld")[refuse]] += 1
            if refusal is not None:
                return status, refusal, {}
            return 200, _completion(body, "content_filter", None, usage), {}
        return 200, _completion(body, "stop", letter, usage), {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats["connections"] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                raw = await reader.readexactly(int(headers.get("content-length") or 0))
                if path.endswith("/stats"):
                    status, body, extra = 200, {**self.stats, **{k: dict(v) for k, v in self.stats.items()
                                                                 if isinstance(v, Counter)}}, {}
                elif path.endswith("/reset"):
                    self.reset()
                    status, body, extra = 200, {"ok": True}, {}
                elif method == "POST" and self.echo:
                    status, extra = 401, {}
                    body = {"error": {"message": f"Incorrect API key provided: {headers.get('authorization', '')} "
                                                 f"for {path}", "type": "invalid_request_error",
                                      "code": "invalid_api_key"}}
                elif method == "POST" and path.endswith("/chat/completions"):
                    status, body, extra = await self.answer(raw)
                else:
                    status, body, extra = 404, {"error": {"message": "not found"}}, {}
                if body is None:  # a dropped connection: no answer at all
                    return
                data = json.dumps(body).encode()
                reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                          429: "Too Many Requests", 500: "Internal Server Error"}.get(status, "Error")
                out = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json", f"Content-Length: {len(data)}",
                       *(f"{k}: {v}" for k, v in extra.items())]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            return
        finally:
            writer.close()


async def _main(args: argparse.Namespace) -> None:
    standin = StandIn((args.fast_ms_low, args.fast_ms_high), args.slow_share, args.slow_ms, args.fail_share,
                      args.refuse_share, args.seed, args.echo_credentials, args.length_share)
    server = await asyncio.start_server(standin.handle, "127.0.0.1", args.port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"listening http://127.0.0.1:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


def start(*flags: str) -> tuple[subprocess.Popen, str]:
    """Start the stand-in in its own process (its CPU is not the client's); returns it and its /v1 URL."""
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--port", "0", *flags],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("listening "):
        proc.kill()
        raise RuntimeError(f"the stand-in did not start: {line!r}")
    return proc, line.split()[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=8011)
    p.add_argument("--fast-ms-low", type=float, default=30)
    p.add_argument("--fast-ms-high", type=float, default=60)
    p.add_argument("--slow-share", type=float, default=0.05, help="share of requests that are slow")
    p.add_argument("--slow-ms", type=float, default=1500)
    p.add_argument("--fail-share", type=float, default=0.0, help="share of attempts answered 429 / 500 / dropped")
    p.add_argument("--refuse-share", type=float, default=0.0, help="share of requests refused as providers do")
    p.add_argument("--length-share", type=float, default=0.0,
                   help="share of requests answered as a reply cut by the token budget (finish_reason length)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--echo-credentials", action="store_true", help="refuse every request with a 401 that echoes "
                   "its Authorization header and path")
    asyncio.run(_main(p.parse_args()))


if __name__ == "__main__":
    main()
