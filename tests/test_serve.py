"""The local OpenAI-compatible server: batching of concurrent requests, per-request generation
settings (chat_template_kwargs included), and the `mmstar serve` command as a real process."""

import base64
import json
import os
import shutil
import subprocess
import sys
import threading

import pytest
from conftest import assert_clean_error, png_bytes, run_cli
from mmstar.evaluators.backends.base import GenerationConfig, Request
from mmstar.evaluators.backends.hf import HFBackend
from mmstar.evaluators.backends.serve import make_server, serve_in_thread
from test_thinking import THINK_SWITCH

from mmstar.errors import MmstarError
from mmstar.sample import ImageRef

httpx = pytest.importorskip("httpx")


def _ask(url, model, text, max_tokens=6, results=None, slot=None, kwargs=None):
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
            "temperature": 0}
    if kwargs is not None:
        body["chat_template_kwargs"] = kwargs
    resp = httpx.post(f"{url}/chat/completions", json=body, timeout=60)
    if results is not None:
        results[slot] = resp
    return resp


def test_concurrent_requests_are_batched_and_answer_as_batch_1(tiny_pairs):
    pair = tiny_pairs["llava"]
    backend = HFBackend(str(pair.backbone), "llm", GenerationConfig(max_new_tokens=6), device="cpu")
    # a long wait and a batch of 8: eight concurrent requests fill exactly one batch
    srv = make_server({"lm": backend}, max_batch=8, batch_wait_s=5.0)
    stop = serve_in_thread(srv)
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    questions = [f"Question: how many objects are there? {i}" for i in range(8)]
    try:
        results = [None] * 8
        threads = [threading.Thread(target=_ask, args=(url, "lm", q, 6, results, i)) for i, q in enumerate(questions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert srv.batcher.batch_sizes == [8]
        alone = [backend.generate([Request([{"role": "user", "content": [{"type": "text", "text": q}]}])])[0]
                 for q in questions]
        for resp, one in zip(results, alone):
            assert resp.status_code == 200
            body = resp.json()
            assert body["choices"][0]["message"]["content"] == one.text
            assert body["usage"]["prompt_tokens"] == one.prompt_tokens
        # the request's max_tokens holds for that request only; the backend's own setting is restored
        short = _ask(url, "lm", questions[0], max_tokens=1).json()
        assert short["usage"]["completion_tokens"] == 1
        assert backend.gen.max_new_tokens == 6
        assert _ask(url, "nope", "hi").status_code == 404
        bad = httpx.post(f"{url}/chat/completions", content=b"{not json", timeout=10,
                         headers={"Content-Type": "application/json"})
        assert bad.status_code == 400
    finally:
        stop()


def test_a_backend_exception_fails_its_requests_not_the_server(tiny_pairs):
    class Broken:
        gen = GenerationConfig()

        def generate(self, requests, gen=None):
            raise RuntimeError("device lost")

    pair = tiny_pairs["llava"]
    good = HFBackend(str(pair.backbone), "llm", GenerationConfig(max_new_tokens=4), device="cpu")
    srv = make_server({"broken": Broken(), "good": good}, batch_wait_s=0.0)
    stop = serve_in_thread(srv)
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    try:
        resp = _ask(url, "broken", "hi")
        assert resp.status_code == 500 and "device lost" in resp.json()["error"]["message"]
        assert _ask(url, "good", "hi").status_code == 200
    finally:
        stop()


@pytest.mark.slow
def test_mmstar_serve_command_serves_eval(tiny_pairs, demo_parquet, tmp_path):
    from mmstar.app.cli import main

    pair = tiny_pairs["llava"]
    key = "sk-serve-eval-0123"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "SERVE_KEY": key}
    proc = subprocess.Popen([sys.executable, "-m", "mmstar", "serve", "--model", f"vlm={pair.vlm}",
                             "--model", f"lm={pair.backbone}", "--port", "0", "--device", "cpu",
                             "--api-key-env", "SERVE_KEY"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("serving"):
                break
        assert lines and lines[-1].startswith("serving vlm, lm at http://127.0.0.1:"), "".join(lines)
        assert "loaded vlm (vlm)" in lines[0] and "loaded lm (llm)" in lines[1] and "$SERVE_KEY" in lines[-1]
        url = lines[-1].split(" at ")[1].split()[0]
        assert httpx.get(f"{url}/models").status_code == 401
        listed = httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {key}"}).json()["data"]
        assert [m["id"] for m in listed] == ["vlm", "lm"]
        common = ["--data", str(demo_parquet), "--no-progress", "--max-new-tokens", "6", "--limit", "10"]
        os.environ["CLIENT_KEY"] = key  # the LVLM and its backbone, all three modes, through one keyed server
        try:
            assert main(["eval", "--model", "vlm", "--backbone", "lm", "--backend", "openai", "--base-url", url,
                         "--api-key-env", "CLIENT_KEY", "--concurrency", "10", "--out", str(tmp_path / "api"),
                         *common]) == 0
        finally:
            del os.environ["CLIENT_KEY"]
        assert main(["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone),
                     "--out", str(tmp_path / "hf"), *common]) == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    (api_dir,) = [p.parent for p in (tmp_path / "api").glob("*/*/manifest.json")]
    (hf_dir,) = [p.parent for p in (tmp_path / "hf").glob("*/*/manifest.json")]
    for mode in ("v", "wv", "t"):
        assert _predictions(api_dir, mode) == _predictions(hf_dir, mode), mode


def _predictions(run_dir, mode):
    return {r["index"]: r["prediction"] for r in map(json.loads, (run_dir / f"{mode}.jsonl").read_text().splitlines())}


def test_serve_refuses_a_public_host_without_a_key_and_a_missing_model(tmp_path):
    assert_clean_error(run_cli("serve", "--model", "x", "--host", "0.0.0.0"), "--host 0.0.0.0", "--api-key-env")
    assert_clean_error(run_cli("serve", "--model", "x", "--host", "0.0.0.0", "--api-key-env", "MMSTAR_NO_SUCH_KEY"),
                       "MMSTAR_NO_SUCH_KEY", "not set")
    with pytest.raises(MmstarError, match="--api-key-env"):  # the library refuses it too, not just the command
        make_server({}, host="0.0.0.0")
    missing = tmp_path / "no-such-model"
    assert_clean_error(run_cli("serve", "--model", str(missing), env={"HF_HUB_OFFLINE": "1"}), str(missing),
                       "cannot read its config")
    assert_clean_error(run_cli("serve", "--model", f"a={missing}", "--model", f"a={missing}"), "distinct NAME")


@pytest.fixture(scope="module")
def thinking_checkpoints(tiny_pairs, tmp_path_factory):
    """The tiny LLaVA pair with a chat template that renders differently with enable_thinking."""
    root = tmp_path_factory.mktemp("serve-thinking")
    out = {}
    for name, src in (("vlm", tiny_pairs["llava"].vlm), ("lm", tiny_pairs["llava"].backbone)):
        shutil.copytree(src, root / name)
        template = root / name / "chat_template.jinja"
        template.write_text(template.read_text() + THINK_SWITCH)
        out[name] = root / name
    return out


def _request(text):
    return Request([{"role": "user", "content": [{"type": "text", "text": text}]}])


@pytest.mark.parametrize("kind", ["vlm", "llm"])
def test_chat_template_kwargs_render_per_request_and_batch_apart(thinking_checkpoints, kind):
    path = thinking_checkpoints["vlm" if kind == "vlm" else "lm"]
    backend = HFBackend(str(path), kind, GenerationConfig(max_new_tokens=4), device="cpu")
    srv = make_server({"m": backend}, max_batch=8, batch_wait_s=5.0)
    stop = serve_in_thread(srv)
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    questions = [f"Question: what is shown? {i}" for i in range(8)]
    switches = [{"enable_thinking": i % 2 == 1} for i in range(8)]  # on and off interleaved
    try:
        results = [None] * 8
        threads = [threading.Thread(target=_ask, args=(url, "m", q, 4, results, i, k))
                   for i, (q, k) in enumerate(zip(questions, switches))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # all eight arrived within one gathering window; the two switch settings went as two batches
        assert sorted(srv.batcher.batch_sizes) == [4, 4]
        assert sorted(json.dumps(k) for k in srv.batcher.batch_kwargs) == sorted(
            json.dumps({"enable_thinking": v}) for v in (False, True))
        for resp, question, kwargs in zip(results, questions, switches):
            assert resp.status_code == 200, resp.text
            direct = backend.generate([_request(question)], gen=GenerationConfig(4, chat_template_kwargs=kwargs))[0]
            body = resp.json()
            assert body["usage"]["prompt_tokens"] == direct.prompt_tokens
            assert body["choices"][0]["message"]["content"] == direct.text
        on, off = (results[1].json()["usage"]["prompt_tokens"], results[0].json()["usage"]["prompt_tokens"])
        assert on != off  # the switch really reached the template
        # no field: the template's default (thinking on here), and the backend's own settings are untouched
        srv.batcher.batch_wait_s = 0.0  # a lone request need not wait out the gathering window
        plain = _ask(url, "m", questions[1], 4).json()
        assert plain["usage"]["prompt_tokens"] == on
        assert backend.gen == GenerationConfig(max_new_tokens=4)
    finally:
        stop()


def test_a_bad_chat_template_kwargs_field_is_a_400(tiny_pairs):
    backend = HFBackend(str(tiny_pairs["llava"].backbone), "llm", GenerationConfig(max_new_tokens=2), device="cpu")
    srv = make_server({"lm": backend}, batch_wait_s=0.0)
    stop = serve_in_thread(srv)
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    try:
        for bad, words in (([{"enable_thinking": False}], "must be a JSON object"), ("off", "not str"),
                           (False, "not bool"), ({"tokenize": True}, "may not set tokenize")):
            resp = _ask(url, "lm", "hi", kwargs=bad)
            assert resp.status_code == 400, (bad, resp.text)
            message = resp.json()["error"]["message"]
            assert "chat_template_kwargs" in message and words in message and "\n" not in message
        assert srv.batcher.batch_sizes == []  # none of them reached the model
        assert _ask(url, "lm", "hi", kwargs=None).status_code == 200
        body = {"model": "lm", "messages": [{"role": "user", "content": "hi"}], "chat_template_kwargs": None}
        assert httpx.post(f"{url}/chat/completions", json=body, timeout=30).status_code == 200  # null: none
    finally:
        stop()


def _records(run_dir, mode):
    return {r["index"]: (r["prediction"], r["prompt_tokens"])
            for r in map(json.loads, (run_dir / f"{mode}.jsonl").read_text().splitlines())}


def test_eval_thinking_off_through_mmstar_serve_matches_hf(thinking_checkpoints, demo_parquet, tmp_path):
    """`mmstar eval --backend openai --thinking off` against a real `mmstar serve` process renders
    the same prompts as the HF backend with --thinking off, and not the template's default."""
    from mmstar.app.cli import main

    ck = thinking_checkpoints
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mmstar", "serve", "--model", f"vlm={ck['vlm']}",
                             "--model", f"lm={ck['lm']}", "--port", "0", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    common = ["--data", str(demo_parquet), "--no-progress", "--max-new-tokens", "4", "--limit", "4"]
    try:
        line = ""
        for line in proc.stdout:
            if line.startswith("serving"):
                break
        assert line.startswith("serving vlm, lm at "), line
        url = line.split(" at ")[1].split()[0]
        assert main(["eval", "--model", "vlm", "--backbone", "lm", "--backend", "openai", "--base-url", url,
                     "--thinking", "off", "--out", str(tmp_path / "api"), *common]) == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for name, extra in (("hf-off", ["--thinking", "off"]), ("hf-default", [])):
        assert main(["eval", "--model", str(ck["vlm"]), "--backbone", str(ck["lm"]), "--out", str(tmp_path / name),
                     *extra, *common]) == 0
    dirs = {name: next((tmp_path / name).rglob("manifest.json")).parent for name in ("api", "hf-off", "hf-default")}
    manifest = json.loads((dirs["api"] / "manifest.json").read_text())
    assert manifest["decoding"]["chat_template_kwargs"] == {"enable_thinking": False}
    for mode in ("v", "wv", "t"):
        api, off, default = (_records(dirs[name], mode) for name in ("api", "hf-off", "hf-default"))
        assert len(api) == 4 and api == off, mode
        assert all(api[i][1] != default[i][1] for i in api), mode  # the switch changed every prompt


def _image_message(text, data):
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                         {"type": "text", "text": text}]}]


def test_the_official_openai_client_plain_streamed_and_refused(tiny_pairs):
    """The `openai` package against `mmstar serve`'s app: answers equal the backend's own, a stream
    reassembles to the same answer, and malformed or unauthorised requests are the client's errors."""
    openai = pytest.importorskip("openai")
    pair = tiny_pairs["llava"]
    gen = GenerationConfig(max_new_tokens=5)
    vlm = HFBackend(str(pair.vlm), "vlm", gen, device="cpu")
    lm = HFBackend(str(pair.backbone), "llm", gen, device="cpu")
    srv = make_server({"vlm": vlm, "lm": lm}, batch_wait_s=0.0, api_key="sk-serve-test-42")
    stop = serve_in_thread(srv)
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    client = openai.OpenAI(base_url=url, api_key="sk-serve-test-42", max_retries=0)
    image = png_bytes((200, 30, 30))
    messages = _image_message("Question: what colour is it?\nAnswer the question directly.", image)
    try:
        plain = client.chat.completions.create(model="vlm", messages=messages, max_tokens=5, temperature=0)
        direct = vlm.generate([Request([{"role": "user", "content": [
            {"type": "image", "image": ImageRef(data=image)},
            {"type": "text", "text": "Question: what colour is it?\nAnswer the question directly."}]}])])[0]
        assert plain.choices[0].message.content == direct.text
        assert plain.id.startswith("chatcmpl-") and plain.created > 0 and plain.model == "vlm"
        assert plain.usage.prompt_tokens == direct.prompt_tokens and plain.usage.completion_tokens > 0
        chunks = list(client.chat.completions.create(model="vlm", messages=messages, max_tokens=5, temperature=0,
                                                     stream=True, stream_options={"include_usage": True}))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == direct.text
        assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
        assert chunks[-1].usage.prompt_tokens == direct.prompt_tokens and not chunks[-1].choices
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
        text_only = client.chat.completions.create(model="lm", messages=[{"role": "user", "content": "Hi?"}],
                                                   max_tokens=3)
        assert text_only.usage.total_tokens == text_only.usage.prompt_tokens + text_only.usage.completion_tokens
        assert [m.id for m in client.models.list()] == ["vlm", "lm"]
        reached = list(srv.batcher.batch_sizes)
        refusals = [
            (openai.BadRequestError, {"model": "lm", "messages": []}, "non-empty"),
            (openai.NotFoundError, {"model": "nope", "messages": [{"role": "user", "content": "x"}]}, "unknown model"),
            (openai.BadRequestError, {"model": "vlm", "messages": _image_message("x", b"not an image")},
             "undecodable image"),
            (openai.BadRequestError, {"model": "lm", "messages": [{"role": "user", "content": "x"}],
                                      "max_tokens": 10**7}, "context length"),
        ]
        for error, request, words in refusals:
            with pytest.raises(error) as caught:
                client.chat.completions.create(**request)
            assert words in caught.value.message, caught.value.message
            assert caught.value.type == "invalid_request_error" or error is openai.NotFoundError
        wrong = openai.OpenAI(base_url=url, api_key="sk-serve-test-41", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(model="lm", messages=[{"role": "user", "content": "x"}])
        bare = httpx.post(f"{url}/chat/completions",
                          json={"model": "lm", "messages": [{"role": "user", "content": "x"}]})
        assert bare.status_code == 401 and bare.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(f"{url}/nowhere", headers={"Authorization": "Bearer sk-serve-test-42"}).json()["error"]
        assert srv.batcher.batch_sizes == reached  # none of the refused requests reached a model
        assert srv.counters["unauthorized"] == 2
    finally:
        stop()
