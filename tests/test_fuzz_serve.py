"""A property-based fuzzer for `mmstar serve`'s request schema, against a running server with real
tiny models: every request gets a 200 or a 4xx with an OpenAI-style error body, never a 500, a hang
(each request has a 30 s limit) or a traceback. Seeded (derandomize) and bounded, in the default tier.
The request bodies mix valid and hostile values field by field (models, roles, parts, images, numbers,
template switches, streams), and raw bodies cover what JSON cannot say (NaN, nesting, bad bytes)."""

import base64
import json
import string

import pytest
from conftest import png_bytes
from hostile import bomb_png
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from mmstar.evaluators.backends.base import GenerationConfig
from mmstar.evaluators.backends.hf import HFBackend
from mmstar.evaluators.backends.serve import make_server, serve_in_thread

httpx = pytest.importorskip("httpx")
SETTINGS = settings(max_examples=70, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def served(tiny_pairs):
    gen = GenerationConfig(max_new_tokens=2)
    models = {"vlm": HFBackend(str(tiny_pairs["llava"].vlm), "vlm", gen, device="cpu"),
              "lm": HFBackend(str(tiny_pairs["llava"].backbone), "llm", gen, device="cpu")}
    srv = make_server(models, batch_wait_s=0.0, max_body_bytes=1 << 20)
    stop = serve_in_thread(srv)
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.server_address[1]}", timeout=30) as client:
        yield client
    stop()


def _data_url(data: bytes, kind: str = "png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(data).decode()


# floats include NaN and infinities: json.dumps writes them as NaN / Infinity, which clients do send
junk = st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(), st.text(max_size=20),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
small_text = st.text(alphabet=string.printable, max_size=40)
image_url = st.one_of(
    st.just(_data_url(png_bytes((10, 200, 30)))), st.just(_data_url(bomb_png(9000, 9000))),
    st.just(_data_url(png_bytes((1, 2, 3))[:30])), st.just("data:image/png;base64,!!notbase64"),
    st.just("http://127.0.0.1:1/x.png"), st.just("data:"), small_text)
part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(small_text, junk)}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.one_of(
        st.fixed_dictionaries({"url": image_url}), junk)}),
    st.dictionaries(st.sampled_from(["type", "text", "image_url"]), junk, max_size=3), junk)
message = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant", "developer", "tool", "x"]),
                           "content": st.one_of(small_text, st.lists(part, max_size=3), junk)}),
    junk)
served_model = st.sampled_from(["lm", "vlm"])
simple_messages = st.lists(st.fixed_dictionaries({"role": st.just("user"), "content": small_text}), min_size=1,
                           max_size=2)
# field -> (valid values, hostile values); the valid ones are drawn three times as often, so most
# requests get past the first checks and the hostile value of one field reaches the deeper ones
fields = {
    "model": (served_model, st.one_of(st.text(max_size=300), junk)),
    "messages": (st.one_of(simple_messages, st.lists(message, min_size=1, max_size=3)), junk),
    "max_tokens": (st.integers(1, 3), st.one_of(st.integers(-5, 0), st.integers(10**6, 10**30), st.floats(), junk)),
    "max_completion_tokens": (st.integers(1, 3), junk),
    "temperature": (st.floats(0, 2), st.one_of(st.floats(), junk)),
    "chat_template_kwargs": (st.dictionaries(st.sampled_from(["enable_thinking", "x"]), st.booleans(), max_size=2),
                             st.one_of(st.dictionaries(st.sampled_from(["tokenize", "x"]), junk, max_size=2), junk)),
    "stream": (st.booleans(), junk),
    "stream_options": (st.fixed_dictionaries({"include_usage": st.booleans()}), junk),
    "n": (st.just(1), junk),
}


def mostly(valid, hostile):  # st.one_of(valid, valid, valid, hostile) would not weight: it dedupes branches
    return st.sampled_from((1, 2, 3, 0)).flatmap(lambda i: valid if i else hostile)


field_values = {k: mostly(valid, hostile) for k, (valid, hostile) in fields.items()}
body = st.fixed_dictionaries({"model": field_values["model"], "messages": field_values["messages"]},
                             optional={k: v for k, v in field_values.items() if k not in ("model", "messages")})


def _check(resp) -> None:
    event(f"HTTP {resp.status_code}")  # --hypothesis-show-statistics: how many reached the model
    assert resp.status_code == 200 or 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])
    assert "Traceback" not in resp.text
    if resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream"):
        assert resp.text.rstrip().endswith("data: [DONE]")
        return
    payload = resp.json()
    if resp.status_code == 200:
        assert payload["choices"][0]["message"]["role"] == "assistant" and "usage" in payload
    else:
        assert isinstance(payload["error"]["message"], str) and len(resp.content) < 4000


@SETTINGS
@given(request=mostly(body, junk))
@example(request={"model": "lm", "messages": [{"role": "user", "content": "hi"}], "temperature": float("nan")})
@example(request={"model": "lm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": float("inf")})
def test_every_request_body_gets_a_200_or_a_4xx(served, request):
    _check(served.post("/v1/chat/completions", content=json.dumps(request).encode(),
                       headers={"Content-Type": "application/json"}))


raw_bodies = st.one_of(
    st.binary(max_size=200), st.text(max_size=100).map(str.encode),
    st.sampled_from([b"NaN", b"[Infinity]", b'{"model": "lm", "messages": [], "temperature": -Infinity}',
                     b"[" * 5000, b"{" * 3000, b'{"a":' * 2000 + b"1" + b"}" * 2000, b"\xff\xfe{}", b"",
                     b'{"model": "lm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e999}']),
    st.integers(1, 200).map(lambda n: b"[" * n + b"]" * n))


@SETTINGS
@given(raw=raw_bodies, kind=st.sampled_from(["application/json", "text/plain", "", "application/x+json"]),
       host=st.sampled_from(["127.0.0.1", "localhost", "evil.example", "127.0.0.1.nip.io", "[::1]"]))
def test_every_raw_body_content_type_and_host_gets_a_4xx_or_200(served, raw, kind, host):
    headers = {"Host": host, **({"Content-Type": kind} if kind else {})}
    resp = served.post("/v1/chat/completions", content=raw, headers=headers)
    _check(resp)
    if host in ("evil.example", "127.0.0.1.nip.io"):
        assert resp.status_code == 403
    elif kind not in ("application/json", "application/x+json"):
        assert resp.status_code == 415
