"""Continuation scoring (``score_continuations``, evaluators/backends/continuations.py) on real tiny
checkpoints: the batched, padded scores equal an unpadded forward pass's log-probabilities, for the
LVLM with and without its image and for the LLM backbone; the backends that cannot score say so."""

import pytest
from mmstar.evaluators.backends import registry
from mmstar.evaluators.backends.base import Request
from mmstar.evaluators.backends.continuations import continuation_ids, join

from mmstar.errors import MmstarError
from mmstar.sample import ImageRef
from tests.conftest import png_bytes

torch = pytest.importorskip("torch")

CONTINUATIONS = [["red", "dark green", "a blue square"], ["one", "two", "three", "four or more"]]


def _requests(image: bool) -> list[Request]:
    texts = ["What colour is the shape?", "How many objects are there in this picture, counting all of them?"]
    out = []
    for k, text in enumerate(texts):
        content = [{"type": "text", "text": text}]
        if image:
            content.insert(0, {"type": "image", "image": ImageRef(data=png_bytes((40 * k, 90, 200), 32))})
        out.append(Request([{"role": "user", "content": content}], key=k))
    return out


def _manual(backend, request: Request, continuation: str) -> float:
    """One request, no padding: the processor (or tokenizer) on the joined text, one forward pass, the
    log-probabilities of the continuation's tokens summed."""
    conv = backend._materialise(request.messages)
    owner = backend.processor if backend.kind == "vlm" else backend.tokenizer
    prompt = owner.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
    n = len(continuation_ids(backend.tokenizer, prompt, continuation))
    images = [p["image"] for p in conv[0]["content"] if p["type"] == "image"]
    if backend.kind == "vlm" and images:
        enc = backend.processor(text=[join(prompt, continuation)], images=images, return_tensors="pt")
    else:
        enc = backend.tokenizer([join(prompt, continuation)], return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        logits = backend.model(**enc).logits[0].float()
    ids = enc["input_ids"][0]
    logprobs = torch.log_softmax(logits[-n - 1:-1], -1)
    return float(logprobs.gather(-1, ids[-n:].unsqueeze(-1)).sum())


@pytest.mark.parametrize("family", ["llava", "qwen2-vl", "gemma3"])
def test_scores_equal_a_manual_forward_pass(tiny_pairs, family):
    from mmstar.evaluators.backends.hf import HFBackend

    pair = tiny_pairs[family]
    cases = [(HFBackend(str(pair.vlm), "vlm", device="cpu", workers=0), True),
             (HFBackend(str(pair.vlm), "vlm", device="cpu", workers=0), False),
             (HFBackend(str(pair.backbone), "llm", device="cpu"), False)]
    for backend, image in cases:
        requests = _requests(image)
        got = backend.score_continuations(requests, CONTINUATIONS)
        for req, resp, conts in zip(requests, got, CONTINUATIONS):
            assert resp.error is None and resp.text == ""
            assert len(resp.extra["loglik"]) == len(conts) == len(resp.extra["tokens"])
            assert all(n >= 1 for n in resp.extra["tokens"])
            want = [_manual(backend, req, c) for c in conts]
            assert resp.extra["loglik"] == pytest.approx(want, abs=2e-4), (family, backend.kind, image)
        # one request alone scores as it does in a padded batch
        alone = backend.score_continuations(requests[:1], CONTINUATIONS[:1])[0]
        assert alone.extra["loglik"] == pytest.approx(got[0].extra["loglik"], abs=2e-4)
        backend.close()


def test_continuation_tokens_follow_the_prompt(tiny_pairs):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_pairs["llava"].backbone)
    # joined by a space after a prompt that ends in a letter or colon, directly after one ending in a newline
    assert join("ASSISTANT:", "red") == "ASSISTANT: red" and join("assistant\n", "red") == "assistant\nred"
    ids = continuation_ids(tok, "ASSISTANT:", "red")
    assert tok.decode(ids) == " red"
    assert tok.decode(continuation_ids(tok, "assistant\n", "red")) == "red"


def test_bad_requests_fail_alone(tiny_pairs):
    from mmstar.evaluators.backends.hf import HFBackend

    backend = HFBackend(str(tiny_pairs["llava"].backbone), "llm", device="cpu")
    requests = _requests(False)
    out = backend.score_continuations(requests, [["red", ""], ["one", "two"]])
    assert out[0].error == "an empty continuation has no likelihood to score" and not out[0].extra
    assert out[1].error is None and len(out[1].extra["loglik"]) == 2
    with pytest.raises(ValueError, match="2 requests but 1 continuation lists"):
        backend.score_continuations(requests, [["red"]])


def test_capability_is_declared_and_the_chat_api_refuses():
    assert registry.get("hf").continuations and registry.get("vllm").continuations
    assert not registry.get("openai").continuations
    from mmstar.evaluators.backends.openai_api import OpenAIBackend

    backend = OpenAIBackend.__new__(OpenAIBackend)  # the refusal needs no server
    with pytest.raises(MmstarError, match=r"the openai backend cannot score continuations .*hf or vllm"):
        backend.score_continuations(_requests(False), CONTINUATIONS)


def test_vllm_prompts_and_prompt_logprobs_give_the_hf_scores(tiny_pairs):
    """What runs without vLLM: the vLLM backend's prompts (token ids of prompt + continuation) and its
    reading of ``prompt_logprobs`` (here in vLLM's shape, from the same model's forward pass)."""
    from types import SimpleNamespace

    from mmstar.evaluators.backends.base import GenerationConfig
    from mmstar.evaluators.backends.continuations import _vllm_prompts, sum_prompt_logprobs
    from mmstar.evaluators.backends.hf import HFBackend
    from mmstar.evaluators.backends.vllm_backend import VLLMBackend

    hf = HFBackend(str(tiny_pairs["llava"].backbone), "llm", device="cpu")
    stand_in = VLLMBackend.__new__(VLLMBackend)  # the engine is not built: only its prompt building runs
    stand_in.tokenizer, stand_in.has_template = hf.tokenizer, hf.has_template
    stand_in.gen, stand_in.model_id = GenerationConfig(), "tiny"
    requests = _requests(False)
    want = hf.score_continuations(requests, CONTINUATIONS)
    for req, conts, resp in zip(requests, CONTINUATIONS, want):
        built = _vllm_prompts(stand_in, req, conts)
        assert [count for _p, _h, count in built] == resp.extra["tokens"]
        assert built[0][0]["prompt_token_ids"][:built[0][1]] == stand_in._token_ids(req.messages)
        for (prompt, _head, count), expected in zip(built, resp.extra["loglik"]):
            ids = prompt["prompt_token_ids"]
            with torch.inference_mode():
                logprobs = torch.log_softmax(hf.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
            shaped = [None] + [{t: SimpleNamespace(logprob=float(logprobs[p - 1, t]))} for p, t in enumerate(ids)
                               if p > 0]
            assert sum_prompt_logprobs(ids, shaped, count) == pytest.approx(expected, abs=2e-4)
            assert sum_prompt_logprobs(ids, shaped[:-1], count) is None  # a position missing: no score
