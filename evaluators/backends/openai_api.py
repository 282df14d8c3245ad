"""OpenAI-compatible chat-completions backend (OpenAI, ``vllm serve``, other compatible servers).

Async with bounded concurrency; retries with exponential backoff (honouring ``Retry-After``) on 429,
5xx, timeouts and connection errors; images sent as base64 data URLs. A request that still fails gets
its failure in ``Response.error`` and empty text. The API key comes from the environment and is
never written to the manifest or logs.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
from collections.abc import Sequence
from typing import Any

from mmstar.errors import MmstarError, require
from mmstar.sample import ImageRef, image_format

from .base import GenerationConfig, Request, Response

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


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


class OpenAIBackend:
    def __init__(self, model: str, base_url: str, gen: GenerationConfig | None = None, *,
                 api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8, max_retries: int = 6,
                 timeout: float = 120.0, backoff: float = 1.0) -> None:
        self.httpx = require("httpx", "openai")
        self.model, self.base_url = model, base_url.rstrip("/")
        self.gen = gen or GenerationConfig()
        self.api_key_env = api_key_env
        self._key = os.environ.get(api_key_env, "")
        self.concurrency, self.max_retries, self.timeout, self.backoff = concurrency, max_retries, timeout, backoff
        self.stats = {"retries": 0, "failed": 0}

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai", "model": self.model, "base_url": self.base_url, "api_key_env": self.api_key_env,
                "concurrency": self.concurrency, "max_retries": self.max_retries}

    def close(self) -> None:
        pass

    def rank_letters(self, requests: Sequence[Request], letters: Sequence[Sequence[str]]) -> list[Response]:
        raise MmstarError("--scoring loglik needs the hf backend (chat APIs do not expose next-token scores)")

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return asyncio.run(self._all(requests))

    async def _all(self, requests: Sequence[Request]) -> list[Response]:
        sem = asyncio.Semaphore(self.concurrency)
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        async with self.httpx.AsyncClient(timeout=self.timeout, headers=headers) as client:
            return list(await asyncio.gather(*(self._one(client, sem, r) for r in requests)))

    async def _one(self, client, sem: asyncio.Semaphore, req: Request) -> Response:
        try:
            payload = {"model": self.model, "messages": to_openai_messages(req.messages),
                       "max_tokens": self.gen.max_new_tokens, "temperature": self.gen.temperature}
            if self.gen.chat_template_kwargs:  # vLLM / SGLang servers render these into the template
                payload["chat_template_kwargs"] = dict(self.gen.chat_template_kwargs)
        except MmstarError as exc:
            return Response(error=str(exc))
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            async with sem:
                try:
                    resp = await client.post(f"{self.base_url}/chat/completions", json=payload)
                except (self.httpx.TimeoutException, self.httpx.TransportError) as exc:
                    last, retry_after = f"{type(exc).__name__}: {exc}"[:200], None
                else:
                    if resp.status_code == 200:
                        return self._parse(resp)
                    last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                    if resp.status_code not in RETRY_STATUS:
                        break
                    retry_after = resp.headers.get("retry-after")
            if attempt < self.max_retries:
                self.stats["retries"] += 1
                await asyncio.sleep(self._delay(attempt, retry_after))
        self.stats["failed"] += 1
        return Response(error=f"request failed after {attempt + 1} attempt(s): {last}")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        try:
            if retry_after is not None:
                return min(60.0, float(retry_after))
        except ValueError:
            pass
        return min(60.0, self.backoff * (2 ** attempt)) * (0.5 + random.random() / 2)

    @staticmethod
    def _parse(resp: Any) -> Response:
        try:
            body = resp.json()
            text = body["choices"][0]["message"].get("content") or ""
            usage = body.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return Response(error=f"malformed response ({type(exc).__name__}): {resp.text[:200]}")
        return Response(text=text.strip(), prompt_tokens=int(usage.get("prompt_tokens") or 0),
                        completion_tokens=int(usage.get("completion_tokens") or 0))
