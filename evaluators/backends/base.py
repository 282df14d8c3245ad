"""The backend interface: a batch of chat requests in, one response each out.

A request's messages are chat turns whose content is a list of parts: ``{"type": "text", "text": ...}``
or ``{"type": "image", "image": ImageRef | PIL.Image}``. Backends never see benchmark names,
prompt presets or answers. Failures go in ``Response.error``; the text is then empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


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
    def generate(self, requests: Sequence[Request]) -> list[Response]: ...

    def rank_letters(self, requests: Sequence[Request], letters: Sequence[Sequence[str]]) -> list[Response]: ...

    # where the registry says ``continuations``: each text's log-likelihood after its prompt, in
    # ``Response.extra`` (``loglik``, ``tokens``; the contract is in continuations.py); others refuse
    def score_continuations(self, requests: Sequence[Request],
                            continuations: Sequence[Sequence[str]]) -> list[Response]: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


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
