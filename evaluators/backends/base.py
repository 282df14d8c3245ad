"""The backend interface: a batch of chat requests in, one response each out.

A request's messages are chat turns whose content is a list of parts: ``{"type": "text", "text": ...}``
or ``{"type": "image", "image": ImageRef | PIL.Image}``. Backends never see benchmark names,
prompt presets or answers. Failures go in ``Response.error``; the text is then empty.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # concurrent.futures is not loaded for `mmstar --help`
    from concurrent.futures import Future


@dataclass
class Request:
    messages: list[dict[str, Any]]
    key: Any = None  # caller's id for the request (the sample index); backends pass it through

    @property
    def has_image(self) -> bool:
        return any(p.get("type") == "image" for m in self.messages for p in _parts(m))


@dataclass
class Response:
    text: str = ""
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # why generation stopped: "stop" (end of text or a stop sequence), "length" (the token budget ran
    # out: the reply may be cut mid-sentence) or None (unknown, or no generation: errors, loglik)
    finish_reason: str | None = None


# what servers and engines call the two reasons (OpenAI, vLLM, TGI, Anthropic-style); any other
# value (content_filter, abort, ...) is no statement about where the text ends: unknown
_FINISH = {"stop": "stop", "eos": "stop", "eos_token": "stop", "stop_sequence": "stop", "end_turn": "stop",
           "tool_calls": "stop", "function_call": "stop", "length": "length", "max_tokens": "length"}


def finish_reason(value: Any) -> str | None:
    """A server's or engine's finish reason as ``Response.finish_reason``: "stop", "length" or None."""
    return _FINISH.get(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 32
    temperature: float = 0.0  # 0 = greedy, the official protocol
    # chat-template switches (e.g. enable_thinking): rendered into the prompt by the HF/vLLM backends,
    # sent as the request's chat_template_kwargs by the openai backend
    chat_template_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
               "do_sample": self.temperature > 0}
        if self.chat_template_kwargs:  # only when set: earlier runs' identities stay as they were
            out["chat_template_kwargs"] = dict(self.chat_template_kwargs)
        return out


class Backend(Protocol):
    """What every backend implements. The optional protocols below are the capabilities a backend's
    spec may claim (``BackendSpec.prepares``, ``auto_batch``, ``streams``, ``loglik``, ``continuations``): the run loop
    branches on the spec and then calls these members; it never probes a backend for them, and
    ``registry.register`` refuses a spec that claims a capability its class does not implement."""

    def generate(self, requests: Sequence[Request]) -> list[Response]: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class RanksLetters(Protocol):
    """Capability ``loglik``: rank each request's option letters by log-likelihood (``--scoring loglik``)."""

    def rank_letters(self, requests: Sequence[Request], letters: Sequence[Sequence[str]]) -> list[Response]: ...


class ScoresContinuations(Protocol):
    """Capability ``continuations``: each given text's log-likelihood after its prompt, in
    ``Response.extra`` (``loglik``, ``tokens``; the contract is in continuations.py): the recall probe."""

    def score_continuations(self, requests: Sequence[Request],
                            continuations: Sequence[Sequence[str]]) -> list[Response]: ...


class PreparesBatches(Protocol):
    """Capability ``prepares`` (and ``auto_batch``, which needs it): batches are prepared (decoded,
    tokenised) apart from generation, so the run loop prepares the next batch while this one
    generates, and ``--batch-size auto`` can probe (``generate_prepared(split_on_oom=False)`` raises
    ``autobatch.BatchTooLarge`` for a batch that does not fit)."""

    @property
    def prefetch_depth(self) -> int:  # batches the loop may hand over ahead of the one it waits for
        ...

    def prepare(self, requests: Sequence[Request]) -> Any: ...

    def generate_prepared(self, prepared: Any, split_on_oom: bool = True) -> list[Response]: ...

    # a Future of the prepared batch from the backend's own workers, or None (the loop then prepares
    # in a thread of this process)
    def submit_prepare(self, requests: Sequence[Request]) -> Future[Any] | None: ...

    def worker_cpu_seconds(self) -> float:  # CPU of worker processes, which process_time misses
        ...


class Streams(Protocol):
    """Capability ``streams``: takes requests one at a time and answers each as it completes. The run
    loop keeps ``window`` of them submitted (``run/stream.py``); backends with equal ``pool_key`` meet
    on one server, so a sweep gives their runs one shared window."""

    @property
    def window(self) -> int: ...

    @property
    def pool_key(self) -> Hashable: ...

    def submit(self, request: Request) -> Future[Response]: ...


def protocol_members(protocol: type) -> tuple[str, ...]:
    """The members a class must have to implement ``protocol`` (methods and properties)."""
    return tuple(sorted(k for k, v in vars(protocol).items()
                        if not k.startswith("_") and (callable(v) or isinstance(v, property))))


def _parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content or [])


def text_of(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in _parts(message) if p.get("type") == "text")


def render_plain(messages: list[dict[str, Any]]) -> str:
    """A transcript for base LLMs without a chat template: the system text, each shot's question
    followed directly by its answer, then the final question; blocks separated by a blank line."""
    blocks: list[str] = []
    pending = ""
    for m in messages:
        role, text = m.get("role"), text_of(m)
        if role == "system":
            blocks.append(text.strip())
        elif role == "user":
            if pending:
                blocks.append(pending)
            pending = text
        elif role == "assistant":
            blocks.append(pending + text)
            pending = ""
    if pending:
        blocks.append(pending)
    return "\n\n".join(blocks)
