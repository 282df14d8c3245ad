"""`mmstar serve` against a hostile client (issue 32, findings 1, 8 and 9), on a running server with a
real tiny model: the Host header and content type are checked (DNS rebinding, cross-site POSTs), a
public bind wants a real key, and what a request may cost is bounded (prompt tokens against the
context, pixels, body bytes, non-finite numbers, nesting, echoed names)."""

import base64
import json

import pytest
from conftest import assert_clean_error, run_cli
from hostile import bomb_png
from mmstar.evaluators.backends.base import GenerationConfig
from mmstar.evaluators.backends.hf import HFBackend
from mmstar.evaluators.backends.serve import context_length, make_server, serve_in_thread
from mmstar.evaluators.backends.serve_guard import MIN_KEY_LENGTH

from mmstar.errors import MmstarError

httpx = pytest.importorskip("httpx")
BODY_CAP = 1 << 20


@pytest.fixture(scope="module")
def server(tiny_pairs):
    """A keyless loopback server (the case DNS rebinding targets) with the tiny LLaVA pair."""
    gen = GenerationConfig(max_new_tokens=2)
    vlm = HFBackend(str(tiny_pairs["llava"].vlm), "vlm", gen, device="cpu")
    lm = HFBackend(str(tiny_pairs["llava"].backbone), "llm", gen, device="cpu")
    srv = make_server({"vlm": vlm, "lm": lm}, batch_wait_s=0.0, max_body_bytes=BODY_CAP)
    stop = serve_in_thread(srv)
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    stop()


def _chat(model="lm", text="hi", **more):
    return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 2, **more}


def _post(server, body=None, *, content=None, headers=None):
    if content is None:
        content = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(headers or {})}
    return httpx.post(f"{server.url}/v1/chat/completions", content=content, headers=headers, timeout=60)


def test_a_rebound_host_name_is_refused_and_loopback_names_are_answered(server):
    port = server.server_address[1]
    for evil in (f"attacker.example:{port}", "attacker.example", f"127.0.0.1.attacker.example:{port}"):
        resp = _post(server, _chat(), headers={"Host": evil})
        assert resp.status_code == 403, (evil, resp.text)
        assert resp.json()["error"]["code"] == "host_not_allowed"
        assert httpx.get(f"{server.url}/v1/models", headers={"Host": evil}).status_code == 403
        assert httpx.get(f"{server.url}/health", headers={"Host": evil}).status_code == 403
    for good in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
        assert httpx.get(f"{server.url}/v1/models", headers={"Host": good}).status_code == 200, good
    assert _post(server, _chat(), headers={"Host": f"localhost:{port}"}).status_code == 200


def test_a_cross_site_text_plain_post_is_refused(server):
    """A form or fetch from another site can send text/plain with no CORS preflight: that must not run."""
    before = list(server.batcher.batch_sizes)
    content = json.dumps(_chat()).encode()
    for kind in ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": kind} if kind else {}
        resp = httpx.post(f"{server.url}/v1/chat/completions", content=content, headers=headers, timeout=30)
        assert resp.status_code == 415, (kind, resp.text)
    assert _post(server, _chat(), headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 200
    assert server.batcher.batch_sizes[:len(before)] == before and len(server.batcher.batch_sizes) == len(before) + 1


def test_a_public_bind_wants_a_key_of_the_documented_length():
    with pytest.raises(MmstarError, match=f"at least {MIN_KEY_LENGTH} characters, not 1"):
        make_server({}, host="0.0.0.0", api_key="k")
    srv = make_server({}, host="127.0.0.1", api_key="k")  # loopback: any key (or none) is the operator's choice
    srv.server_close()
    proc = run_cli("serve", "--model", "x", "--host", "0.0.0.0", "--api-key-env", "SHORT_KEY",
                   env={"SHORT_KEY": "x" * (MIN_KEY_LENGTH - 1)})
    assert_clean_error(proc, "--host 0.0.0.0", f"at least {MIN_KEY_LENGTH} characters")


@pytest.mark.parametrize(("size", "words"), [((12_000, 12_000), "12000 x 12000 = 144,000,000 pixels"),
                                             ((20_000, 20_000), "400,000,000 pixels")])
def test_a_decompression_bomb_image_is_a_400_naming_the_part(server, size, words):
    """12k x 12k is over our cap and under Pillow's (which would decode it, 430 MB); 20k x 20k is over both."""
    url = "data:image/png;base64," + base64.b64encode(bomb_png(*size)).decode()
    body = {"model": "vlm", "max_tokens": 2, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is it?"}, {"type": "image_url", "image_url": {"url": url}}]}]}
    resp = _post(server, body)
    assert resp.status_code == 400, resp.text
    message = resp.json()["error"]["message"]
    assert "messages[0].content[1]" in message and words in message and "over the cap of 64,000,000" in message


def test_a_prompt_beyond_the_context_is_a_400_with_the_numbers_before_the_model(server):
    context = context_length(server.service.models["lm"])
    before = list(server.batcher.batch_sizes)
    resp = _post(server, _chat(text="one two three " * context, max_tokens=4))
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "context_length_exceeded" and f"context length of {context} tokens" in error["message"]
    assert "max_tokens 4" in error["message"] and "the prompt is " in error["message"]
    assert server.batcher.batch_sizes == before  # refused before it could hold a batch up
    assert _post(server, _chat(text="short")).status_code == 200


def test_the_body_size_is_capped_declared_or_streamed(server):
    big = json.dumps(_chat(text="x" * (BODY_CAP + 10))).encode()
    resp = _post(server, content=big)
    assert resp.status_code == 413 and f"{BODY_CAP:,}" in resp.json()["error"]["message"], resp.text

    def chunks():  # no Content-Length: counted as it arrives
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    resp = httpx.post(f"{server.url}/v1/chat/completions", content=chunks(),
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert resp.status_code == 413, resp.text


@pytest.mark.parametrize("raw", [
    b'{"model": "lm", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
    b'{"model": "lm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": Infinity}',
    b'{"model": "lm", "messages": [{"role": "user", "content": "hi"}], "top_p": -Infinity}',
    b'{"model": "lm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e999}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"model": "lm", "messages": [{"role": "user", "content": "hi"}], "chat_template_kwargs": {"a": '
    + b'{"b": ' * 40 + b"1" + b"}" * 41 + b"}",
])
def test_non_finite_numbers_and_deep_nesting_are_a_400(server, raw):
    resp = _post(server, content=raw)
    assert resp.status_code == 400, resp.text[:300]
    assert resp.json()["error"]["type"] == "invalid_request_error"


def test_a_404_does_not_echo_a_long_model_name(server):
    name = "m" * 1_000_000
    resp = _post(server, _chat(model=name))
    assert resp.status_code == 404
    assert len(resp.content) < 1000 and "1,000,002 characters" in resp.json()["error"]["message"]
    path = httpx.get(f"{server.url}/{'p' * 60_000}")  # httpx's own URL limit is 65,536
    assert path.status_code == 404 and len(path.content) < 1000


def test_allowed_host_names_and_the_wildcard_rule():
    """A reverse proxy's public name is answered once named; a wildcard bind has no one name to check
    (it requires a key instead), so there the key, not Host, is the check."""
    from mmstar.evaluators.backends.serve_guard import Guard, Refused

    guard = Guard.create("127.0.0.1", ["Models.Example.org"])
    for ok in ("models.example.org", "MODELS.example.org:443", "models.example.org.", "127.0.0.1:8000"):
        guard.check_host({"host": ok})
    for bad in ("example.org", "models.example.org.evil", "", "10.0.0.5"):
        with pytest.raises(Refused) as caught:
            guard.check_host({"host": bad})
        assert caught.value.status == 403
    Guard.create("0.0.0.0").check_host({"host": "anything.example"})
    Guard.create("10.0.0.5").check_host({"host": "10.0.0.5:8000"})
    srv = make_server({}, allowed_hosts=("proxy.example",))
    stop = serve_in_thread(srv)
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/v1/models"
        assert httpx.get(url, headers={"Host": "proxy.example"}).status_code == 200
        assert httpx.get(url, headers={"Host": "other.example"}).status_code == 403
    finally:
        stop()
