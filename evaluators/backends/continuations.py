"""Log-likelihood of given continuations after a prompt (``score_continuations``), for backends that
can compute it: the answer-text recall probe asks a question without its options and scores each
option's text as the reply.

The contract, the same for every backend that scores:

- ``score_continuations(requests, continuations)``: ``continuations[i]`` are the texts to score after
  request ``i``'s prompt (rendered as for generation: the chat template with its generation prompt).
- A continuation follows the rendered prompt as a reply would: joined by one space, unless the prompt
  ends in whitespace (``join``). Its tokens are those the tokenizer gives the joined text after the
  prompt's own tokens; where the split crosses the boundary (a merge of the prompt's last token with
  the reply's first), the continuation is tokenised alone (``continuation_ids``).
- ``Response.extra``: ``loglik`` (per continuation, the sum of its tokens' log-probabilities) and
  ``tokens`` (their counts), so a caller can take the sum or the mean. ``text`` stays empty: nothing
  is chosen here. A request that cannot be scored has its ``error``; an empty continuation is one.

The HF implementation (``hf_scores``) runs one forward pass per continuation position over the batch,
so the rows keep the processor's image tensors as they are, whatever the family lays them out as.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from mmstar.errors import MmstarError

from .autobatch import BatchTooLarge
from .base import Request, Response, render_plain

CANNOT = "{what} cannot score continuations ({why}); the recall probe needs the hf or vllm backend"


def join(prompt: str, continuation: str) -> str:
    """The continuation as a reply to the rendered prompt: one space between, unless the prompt ends
    in whitespace (a template's ``assistant\\n``)."""
    return prompt + continuation if not prompt or prompt[-1].isspace() else prompt + " " + continuation


def continuation_ids(tokenizer: Any, prompt: str, continuation: str, special: bool = False) -> list[int]:
    """The continuation's token ids as they follow ``prompt`` (see the module's contract)."""
    head = tokenizer(prompt, add_special_tokens=special)["input_ids"]
    whole = tokenizer(join(prompt, continuation), add_special_tokens=special)["input_ids"]
    if whole[:len(head)] == head and len(whole) > len(head):
        return list(whole[len(head):])
    alone = join(prompt, continuation)[len(prompt):]
    return list(tokenizer(alone, add_special_tokens=False)["input_ids"])


def check_continuations(requests: Sequence[Request], continuations: Sequence[Sequence[str]]) -> None:
    if len(requests) != len(continuations):
        raise ValueError(f"{len(requests)} requests but {len(continuations)} continuation lists")


def _rendered(backend: Any, conversation: list[dict[str, Any]]) -> tuple[str, bool]:
    """The prompt text as the backend renders it for generation, and whether the tokenizer adds its
    special tokens to it (the plain transcript of a base LLM without a template)."""
    switches = backend.gen.chat_template_kwargs
    if backend.kind == "vlm":
        return backend.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False,
                                                     **switches), False
    if backend.has_template:
        return backend.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False,
                                                     **switches), False
    return render_plain(conversation), True


def hf_scores(backend: Any, requests: Sequence[Request], continuations: Sequence[Sequence[str]]) -> list[Response]:
    """``HFBackend.score_continuations``: batched, with or without images, VLM or LLM."""
    check_continuations(requests, continuations)
    torch = backend.torch
    convs, slots, responses = [], [], [Response() for _ in requests]
    for i, req in enumerate(requests):
        if any(not c for c in continuations[i]):
            responses[i] = Response(error="an empty continuation has no likelihood to score")
            continue
        try:
            convs.append(backend._materialise(req.messages))
            slots.append(i)
        except MmstarError as exc:
            responses[i] = Response(error=str(exc))
    if not convs:
        return responses
    ids: list[list[list[int]]] = []
    for conv, i in zip(convs, slots):
        prompt, special = _rendered(backend, conv)
        ids.append([continuation_ids(backend.tokenizer, prompt, c, special) for c in continuations[i]])
    enc = backend._encode(convs)
    try:
        sums = _forward_sums(backend, enc, ids)
    except torch.cuda.OutOfMemoryError as exc:  # the runner halves the batch and retries
        torch.cuda.empty_cache()
        raise BatchTooLarge(f"{len(convs)} requests: {str(exc)[:160]}") from None
    for row, i in enumerate(slots):
        responses[i] = Response(prompt_tokens=int(enc["attention_mask"][row].sum()),
                                extra={"loglik": sums[row], "tokens": [len(t) for t in ids[row]]})
    return responses


def _forward_sums(backend: Any, enc: Any, ids: list[list[list[int]]]) -> list[list[float]]:
    """Per row and continuation, the sum of the continuation tokens' log-probabilities. Pass j scores
    every row's j-th continuation appended to its (left-padded) prompt and right-padded: a causal model
    reads nothing after a token, so the padding changes no score."""
    torch = backend.torch
    model = backend.model
    enc = enc.to(model.device)
    if "pixel_values" in enc and enc["pixel_values"].is_floating_point():
        enc["pixel_values"] = enc["pixel_values"].to(model.dtype)
    prompt_ids, prompt_mask = enc["input_ids"], enc["attention_mask"]
    rows, length = prompt_ids.shape
    pad = backend.tokenizer.pad_token_id
    keep_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
    sums: list[list[float]] = [[] for _ in range(rows)]
    for j in range(max(map(len, ids))):
        tails = [row[j] if j < len(row) else [] for row in ids]
        width = max(map(len, tails))
        tail = torch.tensor([t + [pad] * (width - len(t)) for t in tails], device=model.device)
        tail_mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in tails], device=model.device)
        inputs = {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask")}
        for key, value in inputs.items():  # per-token side inputs (token_type_ids): the reply is text
            if torch.is_tensor(value) and value.shape[:2] == (rows, length):
                inputs[key] = torch.cat([value, torch.zeros_like(tail, dtype=value.dtype)], 1)
        if keep_logits:  # only the positions that predict the continuation: a large vocabulary stays small
            inputs["logits_to_keep"] = width + 1
        with torch.inference_mode():
            logits = model(input_ids=torch.cat([prompt_ids, tail], 1),
                           attention_mask=torch.cat([prompt_mask, tail_mask.to(prompt_mask.dtype)], 1),
                           **inputs).logits
        logprobs = torch.log_softmax(logits[:, -width - 1:-1].float(), dim=-1)
        picked = logprobs.gather(-1, tail.unsqueeze(-1)).squeeze(-1) * tail_mask
        for r in range(rows):
            if j < len(ids[r]):
                sums[r].append(float(picked[r].sum()))
    return sums


def vllm_scores(backend: Any, requests: Sequence[Request], continuations: Sequence[Sequence[str]]) -> list[Response]:
    """``VLLMBackend.score_continuations``: each (prompt, continuation) as one prompt with
    ``prompt_logprobs=0`` (vLLM then returns each prompt token's own log-probability) and one new
    token; text-only prompts as the token ids the backend generates from, prompts with an image as
    the rendered text with the image in ``multi_modal_data``."""
    check_continuations(requests, continuations)
    from mmstar.errors import require

    vllm = require("vllm", "vllm")
    params = vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
    responses = [Response() for _ in requests]
    prompts, owners = [], []  # owners: (request, continuation, its token count)
    for i, req in enumerate(requests):
        if any(not c for c in continuations[i]):
            responses[i] = Response(error="an empty continuation has no likelihood to score")
            continue
        try:
            built = _vllm_prompts(backend, req, continuations[i])
        except MmstarError as exc:
            responses[i] = Response(error=str(exc))
            continue
        for j, (prompt, _head, count) in enumerate(built):
            prompts.append(prompt)
            owners.append((i, j, count))
        responses[i] = Response(prompt_tokens=built[0][1],
                                extra={"loglik": [0.0] * len(built), "tokens": [c for _p, _s, c in built]})
    if prompts:
        for (i, j, count), out in zip(owners, backend.llm.generate(prompts, params, use_tqdm=False)):
            total = sum_prompt_logprobs(list(out.prompt_token_ids), out.prompt_logprobs or [], count)
            if total is None:
                responses[i] = Response(error=f"vLLM returned no log-probability for continuation {j}")
            elif not responses[i].error:
                responses[i].extra["loglik"][j] = total
    return responses


def sum_prompt_logprobs(token_ids: Sequence[int], prompt_logprobs: Sequence[Any], count: int) -> float | None:
    """The sum of the last ``count`` prompt tokens' log-probabilities from vLLM's ``prompt_logprobs``
    (per position: None for the first, else token id -> an object with ``.logprob``); None where one
    is missing."""
    total = 0.0
    for pos in range(len(token_ids) - count, len(token_ids)):
        entry = prompt_logprobs[pos] if 0 < pos < len(prompt_logprobs) else None
        if not entry or token_ids[pos] not in entry:
            return None
        total += float(entry[token_ids[pos]].logprob)
    return total


def _vllm_prompts(backend: Any, req: Request, continuations: Sequence[str]) -> list[tuple[Any, int, int]]:
    """(vLLM prompt, prompt tokens, continuation tokens) for each continuation of one request."""
    tok = backend.tokenizer
    if backend.has_template:  # image parts as the template's placeholders; vLLM expands them
        text = tok.apply_chat_template(_placeholders(req.messages), add_generation_prompt=True, tokenize=False,
                                       **backend.gen.chat_template_kwargs)
        special = False
    else:
        if req.has_image:
            raise MmstarError(f"{backend.model_id}: a prompt with an image needs the model's chat template")
        text, special = render_plain(req.messages), True
    head = tok(text, add_special_tokens=special)["input_ids"]
    out = []
    for c in continuations:
        cont = continuation_ids(tok, text, c, special)
        if req.has_image:
            images = [p["image_pil"] for m in backend._chat_messages(req.messages) for p in m["content"]
                      if p.get("type") == "image_pil"]
            out.append(({"prompt": join(text, c), "multi_modal_data": {"image": images}},
                        len(head), len(cont)))
        else:
            out.append(({"prompt_token_ids": head + cont}, len(head), len(cont)))
    return out


def _placeholders(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with each image part reduced to ``{"type": "image"}`` (what a template renders)."""
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, list):
            content = [{"type": "image"} if p.get("type") == "image" else p for p in content]
        out.append({**m, "content": content})
    return out
