"""What ``mmstar serve`` checks before a request reaches the model: who may ask, and what it may cost.

- **Host.** A page on another site can rebind its DNS name to 127.0.0.1 and then talk to a keyless
  loopback server as "same origin". The ``Host`` header still carries the attacker's name, so only
  loopback names and the names the operator configured are answered (403 otherwise). A wildcard bind
  (``0.0.0.0``, ``::``) has no one name to check and requires a key instead.
- **Content type.** A cross-site form or ``fetch`` may send ``text/plain`` without a CORS preflight;
  ``application/json`` always needs one, which this server never grants. A POST must say JSON (415).
- **Body.** At most ``max_body_bytes`` (413), read in pieces so an oversized body is never held whole.
- **JSON.** ``NaN``, ``Infinity`` and numbers that overflow to infinity are not JSON; a body nested
  deeper than ``max_depth`` is refused before anything walks it (400 for all of them).
- **Keys.** A public bind needs a key of at least :data:`MIN_KEY_LENGTH` characters.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mmstar.errors import MmstarError

MIN_KEY_LENGTH = 16  # e.g. 16 random characters; a one-character key is a guessable one
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024  # a few base64 images of real benchmark size fit many times over
DEFAULT_MAX_DEPTH = 32  # a chat body is about 6 deep
NAME_ECHO = 64  # characters of a client's string that an error message repeats
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class Refused(Exception):
    """A request refused before parsing: its HTTP status, message and OpenAI-style code."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def clip(value: Any, limit: int = NAME_ECHO) -> str:
    """A client's value as an error message may repeat it: repr, at most ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_wildcard(host: str) -> bool:
    try:
        return not host or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def check_exposure(host: str, api_key: str | None) -> None:
    """Beyond loopback the model is on the network: refuse that without a key, or with a short one."""
    if is_loopback(host):
        return
    if not api_key:
        raise MmstarError(f"--host {host} serves beyond this machine; give --api-key-env NAME (an environment "
                          "variable holding the key that every request must then carry as a bearer token)")
    if len(api_key) < MIN_KEY_LENGTH:
        raise MmstarError(f"--host {host} serves beyond this machine: its API key must be at least {MIN_KEY_LENGTH} "
                          f"characters, not {len(api_key)} (e.g. python -c 'import secrets; "
                          "print(secrets.token_urlsafe(24))')")


def host_name(header: str) -> str:
    """``Host`` header -> the bare lower-case name: ``[::1]:8000`` -> ``::1``, ``a.b:80`` -> ``a.b``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    name, _, _port = header.partition(":") if header.count(":") == 1 else (header, "", "")
    return name.rstrip(".")


@dataclass(frozen=True)
class Guard:
    """The request checks of one server: which ``Host`` names it answers and how big a body may be."""

    bind_host: str = "127.0.0.1"
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)  # beyond loopback and the bind host
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH

    @classmethod
    def create(cls, bind_host: str = "127.0.0.1", allowed_hosts: Iterable[str] = (),
               max_body_bytes: int | None = None, max_depth: int | None = None) -> Guard:
        if max_body_bytes is not None and max_body_bytes < 1024:
            raise MmstarError(f"--max-body-bytes must be at least 1024, not {max_body_bytes}")
        return cls(bind_host.strip("[]").lower(), frozenset(host_name(h) for h in allowed_hosts),
                   max_body_bytes or DEFAULT_MAX_BODY_BYTES, max_depth or DEFAULT_MAX_DEPTH)

    def check_host(self, headers: Mapping[str, str]) -> None:
        if _is_wildcard(self.bind_host):  # every address of the machine: the key is the check
            return
        name = host_name(headers.get("host", ""))
        if name in LOOPBACK_NAMES or name == self.bind_host or name in self.allowed_hosts or (
                is_loopback(name) and is_loopback(self.bind_host)):
            return
        raise Refused(403, f"Host {clip(name)} is not a name this server answers to (loopback, {self.bind_host} "
                      "and --allowed-host names are): a DNS-rebinding page?", "host_not_allowed")

    @staticmethod
    def check_json_type(headers: Mapping[str, str]) -> None:
        kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "application/json" and not (kind.startswith("application/") and kind.endswith("+json")):
            raise Refused(415, f"Content-Type must be application/json, not {clip(kind or 'none', 40)}",
                          "unsupported_media_type")

    async def read_body(self, headers: Mapping[str, str], stream: AsyncIterator[bytes]) -> bytes:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_large(int(declared))
        chunks, size = [], 0
        async for chunk in stream:  # a chunked body has no length up front: count as it comes
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large(size, more=True)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, size: int, more: bool = False) -> Refused:
        return Refused(413, f"the body is {'over ' if more else ''}{size:,} bytes, over this server's limit of "
                       f"{self.max_body_bytes:,}", "request_too_large")

    def parse_json(self, raw: bytes) -> Any:
        try:
            body = json.loads(raw, parse_constant=_non_finite, parse_float=_finite_float)
        except RecursionError:
            raise Refused(400, f"the body is nested deeper than {self.max_depth} levels", "invalid_json") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise Refused(400, f"the body is not valid JSON ({exc})"[:200], "invalid_json") from None
        if _depth_over(body, self.max_depth):
            raise Refused(400, f"the body is nested deeper than {self.max_depth} levels", "invalid_json")
        return body


def _non_finite(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} overflows to infinity")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (iterative: a deep body cannot exhaust the stack)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False
