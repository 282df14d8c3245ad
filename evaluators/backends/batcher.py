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

from .base import GenerationConfig, Request, Response

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
        gen = items[0].gen(backend.gen)  # the group shares one config: the first request's, for this call only
        try:
            responses, generated = self._generate(backend, items, gen)
        except Exception as exc:  # the server must keep serving; the failure goes to these clients
            responses, generated = [Response(error=f"{type(exc).__name__}: {exc}"[:300])] * len(items), len(items)
        if generated:
            self.batch_sizes.append(generated)
            self.batch_kwargs.append(items[0].chat_template_kwargs)
        for p, r in zip(items, responses):
            p.future.set_result(r)

    def _generate(self, backend: Any, items: list[Pending], gen: GenerationConfig) -> tuple[list[Response], int]:
        """The batch's responses and how many reached the model. Where the backend prepares batches
        (HF), each prompt's length comes from the batch's own encoding, at no extra cost: a request
        whose prompt and budget exceed the model's context is refused (400) before the batch
        generates, so it cannot hold the others up; only then are the rest prepared again."""
        requests = [p.request for p in items]
        context = self.contexts.get(items[0].model)
        if context is None or not hasattr(backend, "prompt_lengths") or not hasattr(backend, "prepare"):
            return backend.generate(requests, gen=gen), len(items)
        prepared = backend.prepare(requests, gen)
        budget = gen.max_new_tokens
        over = {i: n for i, n in enumerate(backend.prompt_lengths(prepared)) if n is not None and n + budget > context}
        if not over:
            return backend.generate_prepared(prepared), len(items)
        responses = [Response(error=f"the prompt is {n} tokens and max_tokens {budget}: {n + budget} is over the "
                                    f"model's context length of {context} tokens",
                              extra={"status": 400, "code": "context_length_exceeded"}) for n in over.values()]
        out: dict[int, Response] = dict(zip(over, responses))
        keep = [i for i in range(len(items)) if i not in over]
        if keep:  # padded to the refused prompt's length: encoded again without it
            out.update(zip(keep, backend.generate([requests[i] for i in keep], gen=gen)))
        return [out[i] for i in range(len(items))], len(keep)
