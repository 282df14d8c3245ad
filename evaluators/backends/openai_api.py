"""OpenAI-compatible chat-completions backend: OpenAI, ``vllm serve``, SGLang, TGI, LMDeploy, ``mmstar
serve`` and providers' OpenAI-compatible endpoints.

Requests go through a continuous pool (``pool.py``): one keep-alive client, up to ``concurrency``
requests in flight, adaptive backoff on 429 / 503 / timeouts (honouring ``Retry-After``), optional
``rpm`` / ``tpm`` ceilings. The run loop submits requests one at a time (:meth:`OpenAIBackend.submit`,
the ``streams`` capability) and writes each answer as it arrives; :meth:`generate` serves callers that
think in batches (the judge, the curation filter) on the same pool.

A request that fails or that the provider refuses (context length, image size, content filter) gets
its reason in ``Response.error`` (kind first: ``context_length: ...``) and empty text: never an answer.
The API key comes from the environment and is never written to the manifest or logs. Secrets that
reach a stored text anyway are redacted: a provider that echoes the key (or any bearer-like token) in
its error body has it replaced by ``***`` before the error lands in ``v/wv/t.jsonl``, and credentials
inside ``--base-url`` (``https://user:pass@host``, ``?api_key=...``) are cut from the manifest's URL.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mmstar.errors import MmstarError, require
from mmstar.sample import ImageRef, image_format

from . import pool
from .base import GenerationConfig, Request, Response, finish_reason
from .base import _parts as parts_of
from .registry import REASONING_EFFORTS

# what the backend itself sends: --extra-body may add provider switches, not replace these
_OWN_KEYS = frozenset({"model", "messages", "stream", "n"})
_TOKENS_PER_IMAGE = 800  # a rough prompt-token estimate per image, for --tpm pacing (corrected by usage)


# query parameters that carry credentials (api_key, access_token, sig, ...): their values are redacted
_SECRET_PARAM = re.compile(r"key|token|secret|pass|auth|sig|credential|session", re.IGNORECASE)
# secret-looking spans of free text: bearer tokens, OpenAI-style keys, key=value pairs, URL credentials
_SECRET_TEXT = (
    (re.compile(r"(?i)\b(bearer\s+)[\w.~+/=-]{8,}"), r"\1***"),
    (re.compile(r"(?i)\b(basic\s+)[A-Za-z0-9+/=]{8,}"), r"\1***"),
    (re.compile(r"\b(sk|pk|rk)-[\w-]{8,}"), r"\1-***"),
    (re.compile(r"""(?i)\b((?:api[_-]?key|access[_-]?token|secret|password|token|x-api-key)["']?\s*[:=]\s*["']?)"""
                r"""[^\s"',;&}]{6,}"""), r"\1***"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@:]+:[^/\s@]+@"), r"\1***@"),
)


def redact_url(url: str) -> str:
    """``url`` without its credentials: the user-info's password and the values of key-like query
    parameters become ``***`` (the host, path and other parameters stay: they say which server)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"***@{hostport}"
    query = urllib.parse.urlencode([(k, "***" if _SECRET_PARAM.search(k) else v)
                                    for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)],
                                   safe="*")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str) -> list[str]:
    """The credentials inside ``url``: the user-info and its password, key-like query values."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return [url]
    # a user name alone may be a token (https://TOKEN@host); beside a password it is just a name
    out = [parts.password or "", "" if parts.password else parts.username or ""]
    out += [urllib.parse.unquote(x) for x in out]
    out += [v for k, v in urllib.parse.parse_qsl(parts.query) if _SECRET_PARAM.search(k)]
    return [x for x in out if x]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each known secret and anything token-like replaced by ``***``."""
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
        quoted = urllib.parse.quote(secret, safe="")
        if quoted != secret:
            text = text.replace(quoted, "***")
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def to_openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            out.append({"role": m["role"], "content": content})
            continue
        parts = []
        for p in content:
            if p.get("type") == "image":
                img = p["image"]
                data = img.data() if isinstance(img, ImageRef) else img
                fmt = image_format(data)
                url = f"data:image/{'jpeg' if fmt == 'bin' else fmt};base64,{base64.b64encode(data).decode('ascii')}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
            elif p.get("type") == "text":
                parts.append({"type": "text", "text": p["text"]})
        # text-only turns go as plain strings: some servers reject part lists without images
        if all(p["type"] == "text" for p in parts):
            out.append({"role": m["role"], "content": "".join(p["text"] for p in parts)})
        else:
            out.append({"role": m["role"], "content": parts})
    return out


def parse_extra_body(value: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """``--extra-body``: a JSON object merged into every request (a null value removes that key)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise MmstarError(f"--extra-body is not valid JSON ({exc.msg} at column {exc.colno}): "
                              f"{value[:80]}") from None
    if not isinstance(value, Mapping):
        raise MmstarError(f"--extra-body must be a JSON object such as '{{\"top_k\": 1}}', not {type(value).__name__}")
    taken = sorted(_OWN_KEYS & set(value))
    if taken:
        raise MmstarError(f"--extra-body may not set {', '.join(taken)} (the backend sets them)")
    return dict(value)


def parse_reply(resp: Any) -> Response:
    """A 200 reply -> the answer; a reply whose answer the provider withheld is an error, not an answer."""
    try:
        body = resp.json()
        choice = body["choices"][0]
        message = choice.get("message") or {}
        content = message.get("content")
        usage = body.get("usage") or {}
        tokens = {"prompt_tokens": int(usage.get("prompt_tokens") or 0),
                  "completion_tokens": int(usage.get("completion_tokens") or 0)}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        return pool.failure("malformed_response", f"{type(exc).__name__}: {' '.join(resp.text.split())[:200]}")
    finish = choice.get("finish_reason")
    if finish == "content_filter" or (not content and message.get("refusal")):
        kind = "content_filter" if finish == "content_filter" else "refusal"
        answer = pool.failure(kind, f"the provider withheld the answer (finish_reason {finish}"
                              f"{'; ' + str(message['refusal'])[:200] if message.get('refusal') else ''})")
        answer.prompt_tokens, answer.completion_tokens = tokens["prompt_tokens"], tokens["completion_tokens"]
        return answer
    if content is not None and not isinstance(content, str):
        return pool.failure("malformed_response", f"message content is {type(content).__name__}, not text")
    return Response(text=(content or "").strip(), **tokens, finish_reason=finish_reason(finish))


class OpenAIBackend:
    def __init__(self, model: str, kind: str = "vlm", gen: GenerationConfig | None = None, *, base_url: str,
                 api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8, max_retries: int = 6,
                 timeout: float = 120.0, backoff: float = 1.0, rpm: float | None = None, tpm: float | None = None,
                 extra_body: str | Mapping[str, Any] | None = None, max_completion_tokens: bool = False,
                 reasoning_effort: str | None = None, backbone_base_url: str | None = None) -> None:
        # ``kind`` is the registry's common signature: it picks the server when the LLM backbone (mode
        # t, kind "llm") is served apart from the LVLM
        self.httpx = require("httpx", "openai")
        if kind == "llm" and backbone_base_url:
            base_url = backbone_base_url
        self.model, self.kind, self.base_url = model, kind, base_url.rstrip("/")
        self.gen = gen or GenerationConfig()
        self.api_key_env = api_key_env
        for name, value in (("concurrency", concurrency), ("rpm", rpm), ("tpm", tpm)):
            if value is not None and (isinstance(value, bool) or value <= 0):
                raise MmstarError(f"--{name} must be a positive number, not {value!r}")
        if reasoning_effort is not None and reasoning_effort not in REASONING_EFFORTS:
            raise MmstarError(f"--reasoning-effort {reasoning_effort!r} is not one of {', '.join(REASONING_EFFORTS)}")
        self.concurrency, self.max_retries, self.timeout, self.backoff = int(concurrency), max_retries, timeout, backoff
        self.rpm, self.tpm = rpm, tpm
        self.extra_body = parse_extra_body(extra_body)
        self.reasoning_effort = reasoning_effort
        # OpenAI's reasoning models refuse max_tokens; most other servers take both names
        self.budget_key = "max_completion_tokens" if max_completion_tokens or reasoning_effort else "max_tokens"
        key = os.environ.get(api_key_env, "")
        # what a stored error must never hold: the key, and any credentials inside the URL
        self._secrets = (key, *url_secrets(self.base_url))
        headers = (("Content-Type", "application/json"),) + ((("Authorization", f"Bearer {key}"),) if key else ())
        self._endpoint_config = pool.EndpointConfig(
            f"{self.base_url}/chat/completions", headers, self.concurrency, rpm, tpm, timeout, max_retries, backoff)
        self._endpoint: pool.Endpoint | None = None
        self._lock = threading.Lock()

    @property
    def window(self) -> int:
        """Requests the run loop keeps submitted: twice the ceiling, so payloads are ready when slots free."""
        return 2 * self.concurrency

    @property
    def pool_key(self) -> pool.EndpointConfig:
        """The server this backend sends to, with its key and limits: backends with equal keys share one
        client and one concurrency limit, and a sweep gives their runs one request window."""
        return self._endpoint_config

    def endpoint(self) -> pool.Endpoint:
        with self._lock:
            if self._endpoint is None:
                self._endpoint = pool.acquire(self._endpoint_config, self.httpx)
            return self._endpoint

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": "openai", "model": self.model, "base_url": redact_url(self.base_url),
                               "api_key_env": self.api_key_env, "concurrency": self.concurrency,
                               "max_retries": self.max_retries, "budget_key": self.budget_key}
        for name in ("rpm", "tpm", "reasoning_effort"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.extra_body:
            out["extra_body"] = self.extra_body
        # the fields every request carries besides its messages: what the server was really asked for
        # (e.g. no temperature under --reasoning-effort, whatever the run's decoding says)
        out["request"] = {k: v for k, v in self.payload(Request([])).items() if k not in ("model", "messages")}
        if self._endpoint is not None:  # shared with the other model on this server: the server's totals
            out["pool"] = self._endpoint.stats()
        return out

    def close(self) -> None:
        with self._lock:
            endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            pool.release(endpoint)

    def rank_letters(self, requests: Sequence[Request], letters: Sequence[Sequence[str]]) -> list[Response]:
        raise MmstarError("--scoring loglik needs the hf backend (chat APIs do not expose next-token scores)")

    def score_continuations(self, requests: Sequence[Request],
                            continuations: Sequence[Sequence[str]]) -> list[Response]:
        from .continuations import CANNOT

        raise MmstarError(CANNOT.format(what="the openai backend", why="a chat completions API returns the "
                                        "reply's log-probabilities, not those of a text it did not write"))

    def payload(self, req: Request) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": to_openai_messages(req.messages),
                                self.budget_key: self.gen.max_new_tokens}
        if self.reasoning_effort:  # reasoning models take only their default temperature
            body["reasoning_effort"] = self.reasoning_effort
        else:
            body["temperature"] = self.gen.temperature
        if self.gen.chat_template_kwargs:  # vLLM / SGLang servers render these into the template
            body["chat_template_kwargs"] = dict(self.gen.chat_template_kwargs)
        for key, value in self.extra_body.items():
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value
        return body

    def _estimate(self, req: Request) -> float:
        chars = sum(len(p.get("text", "")) for m in req.messages for p in parts_of(m))
        images = sum(p.get("type") == "image" for m in req.messages for p in parts_of(m))
        return chars / 4 + images * _TOKENS_PER_IMAGE + self.gen.max_new_tokens

    def submit(self, req: Request) -> concurrent.futures.Future[Response]:
        """Send one request through the pool; the future holds its response (never raises for a
        failed request: the failure is in ``Response.error``)."""
        try:
            body = self.payload(req)
        except MmstarError as exc:  # e.g. an image that cannot be read: this request fails, not the run
            done: concurrent.futures.Future[Response] = concurrent.futures.Future()
            done.set_result(pool.failure("image", str(exc)))
            return done
        return self._redacted(self.endpoint().submit(body, parse_reply, self._estimate(req)))

    def _redacted(self, sent: concurrent.futures.Future[Response]) -> concurrent.futures.Future[Response]:
        """The response with its error redacted: a provider may echo the key (or another token) in
        its error body, and the error text is stored with the predictions."""
        out: concurrent.futures.Future[Response] = concurrent.futures.Future()

        def settle(done: concurrent.futures.Future[Response]) -> None:
            try:
                resp = done.result()
            except Exception as exc:  # the pool's own failure: one client error, redacted too
                resp = pool.failure("client_error", f"{type(exc).__name__}: {exc}")
            if resp.error:
                resp.error = redact(resp.error, self._secrets)
            out.set_result(resp)

        sent.add_done_callback(settle)
        return out

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        futures = [self.submit(r) for r in requests]
        return [f.result() for f in futures]

