"""Fail fast when the Hugging Face hub is unreachable.

Without network, huggingface_hub retries for ~25 s per file before giving up. A 3-second probe
tells first; if the hub cannot be reached we switch to offline mode (cached copies still load, a
miss fails in about a second) so the user gets one clear line quickly.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

_checked: bool | None = None


def hub_reachable(timeout: float = 3.0) -> bool:
    global _checked
    if _checked is None:
        host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            _checked = True
        except OSError:
            _checked = False
    return _checked


def prefer_offline_if_unreachable() -> None:
    """Call before importing huggingface_hub / datasets / transformers (they read the env at import)."""
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
        return
    if not hub_reachable():
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
