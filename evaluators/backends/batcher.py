"""The batcher behind ``mmstar serve``: requests that arrive together go to the backend as one batch.

One worker thread owns the backends (they are not re-entrant, and a GPU runs one batch at a time);
request handlers queue a :class:`Pending` and await its future. A batch gathers up to ``max_batch``
requests, waiting at most ``batch_wait_s`` after the first, and only requests that agree on model,
image presence and generation settings (``max_tokens``, ``temperature``, ``chat_template_kwargs``):
the backend gets those settings as a per-call ``gen``, so one request's switches never leak into
another's prompt.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .base import GenerationConfig, Request, Response, _parts

TEMPLATE_SLACK = 1024  # tokens a chat template may add around the text (system prompt, role markers)

# apply_chat_template's own arguments, which the backend sets: a request may not turn them
RESERVED_TEMPLATE_KWARGS = frozenset({
    "conversation", "messages", "chat_template", "add_generation_prompt", "continue_final_message", "tokenize",
    "return_dict", "return_tensors", "padding", "truncation", "max_length", "processor_kwargs", "tokenizer_kwargs"})


class Servable(Protocol):
    """A backend the server can share between requests: default settings, overridable per call."""

    gen: GenerationConfig

    def generate(self, requests: Sequence[Request], gen: GenerationConfig | None = None) -> list[Response]: ...


def template_kwargs(body: dict[str, Any]) -> dict[str, Any]:
    """The request's ``chat_template_kwargs`` (absent or null: none); anything but a JSON object,
    or a key the backend sets itself, is the client's error."""
    value = body.get("chat_template_kwargs")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"chat_template_kwargs must be a JSON object such as {{\"enable_thinking\": false}}, "
                         f"not {type(value).__name__} {json.dumps(value)[:60]}")
    taken = sorted(RESERVED_TEMPLATE_KWARGS & value.keys())
    if taken:
        raise ValueError(f"chat_template_kwargs may not set {', '.join(taken)} (the server sets them)")
    return value


@dataclasses.dataclass
class Pending:
    model: str
    request: Request
    max_tokens: int | None
    temperature: float | None
    chat_template_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    future: concurrent.futures.Future[Response] = dataclasses.field(default_factory=concurrent.futures.Future)

    def group(self) -> tuple[str, bool, int | None, float | None, str]:
        # one backend call needs one model, one generation config (template switches included: they
        # change the prompt), and (for families such as Mllama that cannot mix them) either
        # all-image or all-text rows; the switches as canonical JSON, so equal objects group together
        return (self.model, self.request.has_image, self.max_tokens, self.temperature,
                json.dumps(self.chat_template_kwargs, sort_keys=True))

    def gen(self, default: GenerationConfig) -> GenerationConfig:
        """The backend's settings with this request's on top (its switches added to the backend's own)."""
        changes: dict[str, Any] = {k: v for k, v in (("max_new_tokens", self.max_tokens),
                                                     ("temperature", self.temperature)) if v is not None}
        if self.chat_template_kwargs:
            changes["chat_template_kwargs"] = {**default.chat_template_kwargs, **self.chat_template_kwargs}
        return dataclasses.replace(default, **changes)


class Batcher:
    """Gathers queued requests into backend calls on one worker thread."""

    def __init__(self, models: Mapping[str, Servable], max_batch: int = 32, batch_wait_s: float = 0.01,
                 contexts: Mapping[str, int | None] | None = None) -> None:
        self.models, self.max_batch, self.batch_wait_s = models, max(1, max_batch), max(0.0, batch_wait_s)
        self.contexts = dict(contexts or {})  # model -> context window, where known: prompts are checked
        self.queue: queue.Queue[Pending | None] = queue.Queue()
        self.batch_sizes: list[int] = []
        self.batch_kwargs: list[dict[str, Any]] = []  # each batch's chat_template_kwargs, beside its size
        self.thread = threading.Thread(target=self._loop, daemon=True, name="mmstar-serve-batcher")
        self.thread.start()

    def submit(self, pending: Pending) -> concurrent.futures.Future[Response]:
        """Queue a request; the future gets its response (an error Response, never an exception)."""
        self.queue.put(pending)
        return pending.future

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=30)

    def _collect(self, first: Pending) -> list[Pending]:
        batch, deadline = [first], time.monotonic() + self.batch_wait_s
        while len(batch) < self.max_batch:
            try:
                item = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:  # stop after this batch
                self.queue.put(None)
                break
            batch.append(item)
        return batch

    def _loop(self) -> None:
        while (first := self.queue.get()) is not None:
            groups: dict[tuple, list[Pending]] = {}
            for item in self._collect(first):
                groups.setdefault(item.group(), []).append(item)
            for items in groups.values():
                self._run(items)

    def _run(self, items: list[Pending]) -> None:
        backend = self.models[items[0].model]
        items = [p for p in items if not self._over_context(backend, p)]
        if not items:
            return
        try:  # the group shares one config: the first request's is everyone's, for this call only
            responses = backend.generate([p.request for p in items], gen=items[0].gen(backend.gen))
        except Exception as exc:  # the server must keep serving; the failure goes to these clients
            responses = [Response(error=f"{type(exc).__name__}: {exc}"[:300])] * len(items)
        self.batch_sizes.append(len(items))
        self.batch_kwargs.append(items[0].chat_template_kwargs)
        for p, r in zip(items, responses):
            p.future.set_result(r)

    def _over_context(self, backend: Servable, pending: Pending) -> bool:
        """Refuse (400) a request whose prompt and budget exceed the model's context, before it can
        hold a batch up. Counted here, on the thread that owns the backend (tokenizers are not
        re-entrant); a text prompt whose UTF-8 bytes alone fit is not counted (no tokenizer makes more
        tokens than bytes, and TEMPLATE_SLACK covers the chat template's own)."""
        context, count = self.contexts.get(pending.model), getattr(backend, "prompt_length", None)
        if context is None or count is None:
            return False
        budget = pending.max_tokens or backend.gen.max_new_tokens
        text = sum(len(p.get("text", "").encode()) for m in pending.request.messages for p in _parts(m))
        if not pending.request.has_image and text + TEMPLATE_SLACK + budget <= context:
            return False
        try:
            tokens = count(pending.request, pending.gen(backend.gen))
        except Exception:  # a request that cannot be encoded fails in generate, with its reason
            return False
        if tokens + budget <= context:
            return False
        pending.future.set_result(Response(
            error=f"the prompt is {tokens} tokens and max_tokens {budget}: {tokens + budget} is over the model's "
                  f"context length of {context} tokens", extra={"status": 400, "code": "context_length_exceeded"}))
        return True
