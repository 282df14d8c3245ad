"""The openai backend as providers see it: Retry-After and AIMD on 429s, timeouts, --rpm / --tpm
ceilings, OpenAI's reasoning-model switches and --extra-body (from the command line to the request
body), and the error kinds of providers' refusals. A scripted loopback server stands in for the
provider (the external boundary) and records what it was sent."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mmstar.evaluators.backends import pool
from mmstar.evaluators.backends.base import GenerationConfig, Request

from mmstar.errors import MmstarError

pytest.importorskip("httpx")


class Scripted:
    """A loopback HTTP/1.1 server; ``script(n, body)`` -> (status, reply, headers, delay_s) for the n-th request."""

    def __init__(self, script=None):
        self.bodies, self.lock = [], threading.Lock()
        self.script = script or (lambda n, body: (200, None, {}, 0.0))
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    n = len(outer.bodies)
                    outer.bodies.append(body)
                status, reply, headers, delay = outer.script(n, body)
                time.sleep(delay)
                reply = reply or {"choices": [{"message": {"content": "A"}, "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 10, "completion_tokens": 1}}
                data = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
                    pass

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 64  # the default 5 drops a burst's SYNs: a connect then stalls ~1 s

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted():
    servers = []

    def start(script=None):
        servers.append(Scripted(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _backend(url, **options):
    from mmstar.evaluators.backends.openai_api import OpenAIBackend

    return OpenAIBackend("m", "vlm", GenerationConfig(max_new_tokens=8), base_url=url, **options)


def _req(i=0):
    return Request([{"role": "user", "content": [{"type": "text", "text": f"Question {i}?"}]}])


def test_a_429_burst_halves_the_window_once_honours_retry_after_and_grows_back(scripted):
    # a round trip of 0.2 s: all eight are out before the first 429 is back
    srv = scripted(lambda n, body: (429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}, 0.2)
                   if n < 8 else (200, None, {}, 0.01))
    backend = _backend(srv.url, concurrency=8, backoff=0.01)
    try:
        start = time.monotonic()
        answers = backend.generate([_req(i) for i in range(8)])
        assert time.monotonic() - start >= 1.0  # everyone waited out the Retry-After
        assert all(a.text == "A" and a.extra["attempts"] == 2 for a in answers)
        stats = backend.describe()["pool"]
        # eight 429s of one round trip are one congestion signal: one halving, not eight
        assert stats["backoffs"] == 1 and stats["concurrency_lowest"] == 4 and stats["retries"] == 8
        assert stats["throttled"] == 8
        backend.generate([_req(i) for i in range(60)])  # additive increase: +1 per window of successes
        assert backend.describe()["pool"]["concurrency_final"] == 8
    finally:
        backend.close()


def test_a_timeout_is_congestion_and_is_retried(scripted):
    srv = scripted(lambda n, body: (200, None, {}, 1.0 if n < 2 else 0.0))
    backend = _backend(srv.url, concurrency=4, timeout=0.3, backoff=0.01)
    try:
        answers = backend.generate([_req(0), _req(1)])
        assert [a.text for a in answers] == ["A", "A"]
        stats = backend.describe()["pool"]
        assert stats["timeouts"] == 2 and stats["backoffs"] == 1 and stats["retries"] == 2
    finally:
        backend.close()


def test_rpm_and_tpm_ceilings_pace_the_requests(scripted):
    srv = scripted()
    backend = _backend(srv.url, concurrency=16, rpm=240)  # 4 a second, at most one second's worth at once
    try:
        start = time.monotonic()
        backend.generate([_req(i) for i in range(12)])
        assert time.monotonic() - start >= (12 - 4) / 4 - 0.1
        assert backend.describe()["pool"]["rpm"] == 240
    finally:
        backend.close()
    backend = _backend(srv.url, concurrency=16, tpm=1200)  # 20 tokens a second; each request ~3 + 8, uses 11
    try:
        start = time.monotonic()
        backend.generate([_req(i) for i in range(6)])  # ~65 tokens, 20 at once: ~2.2 s
        assert time.monotonic() - start >= 1.5
        assert backend.describe()["pool"]["tpm_waited_s"] > 1.0
    finally:
        backend.close()


def test_reasoning_switches_and_extra_body_reach_the_request_from_the_cli(scripted, demo_parquet, tmp_path):
    from mmstar.app.cli import main

    srv = scripted()
    common = ["--data", str(demo_parquet), "--modes", "wv", "--limit", "2", "--no-progress", "--backend", "openai",
              "--base-url", srv.url]
    assert main(["eval", "--model", "o-model", "--reasoning-effort", "low", "--extra-body",
                 '{"top_k": 1, "service_tier": "flex"}', "--out", str(tmp_path / "a"), *common]) == 0
    body = srv.bodies[-1]
    assert body["reasoning_effort"] == "low" and body["max_completion_tokens"] == 32
    assert "max_tokens" not in body and "temperature" not in body  # reasoning models refuse any but the default
    assert body["top_k"] == 1 and body["service_tier"] == "flex"
    manifest = json.loads(next((tmp_path / "a").rglob("manifest.json")).read_text())
    assert manifest["backends"]["vlm"]["reasoning_effort"] == "low"
    assert manifest["backends"]["vlm"]["extra_body"] == {"top_k": 1, "service_tier": "flex"}
    assert manifest["backends"]["vlm"]["request"] == {"max_completion_tokens": 32, "reasoning_effort": "low",
                                                      "top_k": 1, "service_tier": "flex"}
    assert main(["eval", "--model", "gpt-model", "--max-completion-tokens", "--extra-body", '{"seed": null}',
                 "--out", str(tmp_path / "b"), *common]) == 0
    body = srv.bodies[-1]
    assert body["max_completion_tokens"] == 32 and body["temperature"] == 0.0 and "max_tokens" not in body
    with pytest.raises(MmstarError, match="may not set model"):
        _backend(srv.url, extra_body={"model": "other"})


def test_the_error_kind_of_a_refusal():
    assert pool.error_kind(400, json.dumps({"error": {"code": "context_length_exceeded", "message": "..."}})) \
        == "context_length"
    assert pool.error_kind(400, '{"error": {"message": "Please reduce the length of the messages: this '
                                'model\'s maximum context length is 8192"}}') == "context_length"
    assert pool.error_kind(400, json.dumps({"error": {"code": "content_filter"}})) == "content_filter"
    assert pool.error_kind(400, '{"error": {"message": "Image is too large: 30 MB"}}') == "image"
    assert pool.error_kind(401, "{}") == "auth" and pool.error_kind(404, "") == "not_found"
    assert pool.error_kind(429, "") == "rate_limited" and pool.error_kind(503, "overloaded") == "server_error"
    assert pool.error_kind(422, "unprocessable") == "bad_request"
    assert pool.retry_after("2.5") == 2.5 and pool.retry_after(None) is None and pool.retry_after("soon") is None
    assert pool.retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


def test_a_withheld_answer_is_an_error_and_an_unreadable_image_fails_only_its_request(scripted):
    from mmstar.sample import ImageRef

    srv = scripted(lambda n, body: (200, {"choices": [{"message": {"content": None}, "finish_reason":
                                                       "content_filter"}]}, {}, 0.0))
    backend = _backend(srv.url)
    try:
        (answer,) = backend.generate([_req()])
        assert answer.text == "" and answer.error.startswith("content_filter:")
        broken = Request([{"role": "user", "content": [{"type": "image", "image": ImageRef(path=Path("/no/such.png"))},
                                                       {"type": "text", "text": "Q?"}]}])
        bad, good = backend.generate([broken, _req()])
        assert bad.error.startswith("image:") and good.error.startswith("content_filter:")
        assert len(srv.bodies) == 2  # the unreadable image was never sent
    finally:
        backend.close()
