"""vLLM backend (``--backend vllm``, extra ``[vllm]``): the offline engine, whole batches at once.

Text-only requests (``wv``, ``t``, the curation filter) are sent as token ids built exactly as the HF
backend builds them (the model's chat template, or the plain transcript for base LLMs), so both
backends see identical inputs. Requests with an image go through ``LLM.chat`` with PIL images.
Sampling matches the HF backend: greedy (temperature 0), ``max_tokens = max_new_tokens``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmstar.evaluators.models.loading import resolve_device_dtype

from mmstar.errors import MmstarError, require
from mmstar.sample import ImageRef

from .base import GenerationConfig, Request, Response, finish_reason, render_plain


class VLLMBackend:
    def __init__(self, model_id: str, kind: str, gen: GenerationConfig | None = None, *,
                 tensor_parallel_size: int = 1, max_model_len: int | None = None,
                 gpu_memory_utilization: float = 0.9, images_per_prompt: int = 1, dtype: str = "auto",
                 trust_remote_code: bool = False, seed: int = 0, prefix_cache: bool = True) -> None:
        vllm = require("vllm", "vllm")
        self.model_id, self.kind, self.gen = model_id, kind, gen or GenerationConfig()
        if dtype == "auto":
            # the HF backend's rule, so both backends compute in the same precision; vLLM's own
            # "auto" runs an fp32 checkpoint in bf16 on CPU
            dtype = str(resolve_device_dtype("auto", "auto")[1]).removeprefix("torch.")
        kwargs: dict[str, Any] = {"model": model_id, "tensor_parallel_size": tensor_parallel_size,
                                  "gpu_memory_utilization": gpu_memory_utilization, "dtype": dtype,
                                  "trust_remote_code": trust_remote_code, "seed": seed}
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        if kind == "vlm":
            kwargs["limit_mm_per_prompt"] = {"image": images_per_prompt}
        else:  # mode t and the filter share a system prompt + 2-shot context: keep its KV blocks
            kwargs["enable_prefix_caching"] = prefix_cache
        try:
            self.llm = vllm.LLM(**kwargs)
        except Exception as exc:  # vLLM raises many types while building an engine
            raise MmstarError(f"vLLM cannot load {model_id}: {str(exc).splitlines()[0][:200]}") from None
        self.params = vllm.SamplingParams(temperature=max(0.0, self.gen.temperature),
                                          max_tokens=self.gen.max_new_tokens, seed=seed)
        self.tokenizer = self.llm.get_tokenizer()
        self.has_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.settings = {k: v for k, v in kwargs.items() if k != "model"}
        try:
            self.max_len = int(self.llm.llm_engine.model_config.max_model_len)
        except (AttributeError, TypeError, ValueError):
            self.max_len = None

    def describe(self) -> dict[str, Any]:
        return {"backend": "vllm", "model": self.model_id, "kind": self.kind, **self.settings,
                "chat_template": self.has_template}

    def close(self) -> None:
        del self.llm

    def rank_letters(self, requests: Sequence[Request], letters: Sequence[Sequence[str]]) -> list[Response]:
        raise MmstarError("--scoring loglik needs the hf backend")

    def score_continuations(self, requests: Sequence[Request],
                            continuations: Sequence[Sequence[str]]) -> list[Response]:
        """Each continuation's log-likelihood after its prompt, from vLLM's prompt log-probabilities
        (``continuations.py``)."""
        from .continuations import vllm_scores

        return vllm_scores(self, requests, continuations)

    def _token_ids(self, messages: list[dict[str, Any]]) -> list[int]:
        if self.has_template:
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                                      **self.gen.chat_template_kwargs)
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self.tokenizer(render_plain(messages))["input_ids"]

    @staticmethod
    def _chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for m in messages:
            parts = []
            for p in m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]:
                if p.get("type") == "image":
                    img = p["image"].pil() if isinstance(p["image"], ImageRef) else p["image"]
                    parts.append({"type": "image_pil", "image_pil": img})
                else:
                    parts.append({"type": "text", "text": p["text"]})
            out.append({"role": m["role"], "content": parts})
        return out

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        responses: list[Response | None] = [None] * len(requests)
        text_slots, text_inputs, image_slots, image_convs = [], [], [], []
        for i, req in enumerate(requests):
            try:
                if req.has_image:
                    image_convs.append(self._chat_messages(req.messages))
                    image_slots.append(i)
                else:
                    ids = self._token_ids(req.messages)
                    if self.max_len and len(ids) + self.gen.max_new_tokens > self.max_len:
                        # vLLM would reject the whole batch for one long prompt: fail just this one
                        responses[i] = Response(error=f"prompt of {len(ids)} tokens + {self.gen.max_new_tokens} "
                                                      f"new exceeds the model's context of {self.max_len}")
                        continue
                    text_inputs.append({"prompt_token_ids": ids})
                    text_slots.append(i)
            except MmstarError as exc:
                responses[i] = Response(error=str(exc))
        if text_inputs:
            outs = self.llm.generate(text_inputs, self.params, use_tqdm=False)
            for i, o in zip(text_slots, outs):
                responses[i] = self._response(o)
        if image_convs:
            outs = self.llm.chat(image_convs, self.params, use_tqdm=False, add_generation_prompt=True,
                                 chat_template_kwargs=dict(self.gen.chat_template_kwargs) or None)
            for i, o in zip(image_slots, outs):
                responses[i] = self._response(o)
        return [r if r is not None else Response(error="no response") for r in responses]

    def _response(self, out: Any) -> Response:
        gen = out.outputs[0]
        # decoded as the HF backend decodes (vLLM's incremental detokenizer holds back an unfinished
        # UTF-8 byte sequence where HF writes U+FFFD), so equal tokens give equal predictions
        text = self.tokenizer.decode(list(gen.token_ids), skip_special_tokens=True)
        return Response(text=text.strip(), prompt_tokens=len(out.prompt_token_ids or []),
                        completion_tokens=len(gen.token_ids), finish_reason=finish_reason(gen.finish_reason))
