"""How weights are loaded, shared by model knowledge (``backbone.py``) and the backends that load in
this process (hf, vllm) and the registry: the one rule for ``--device auto`` / ``--dtype auto``, and
the one wording of a failed load. Kept here, below the backends, so that the models layer never
imports a backend (tests/test_layers.py); torch is imported only when a rule is applied."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mmstar.errors import MmstarError, require


def resolve_device_dtype(device: str = "auto", dtype: str = "auto") -> tuple[str, Any]:
    """``(device, torch dtype)``: auto is CUDA when present (under torchrun each rank its own GPU),
    and bf16 on CUDA, fp32 elsewhere."""
    torch = require("torch", "hf")
    if device == "auto":
        # under torchrun each rank takes its own GPU
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda"):
        check_cuda(torch, device)
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    try:
        return device, getattr(torch, dtype)
    except AttributeError:
        raise MmstarError(f"unknown --dtype {dtype!r} (use auto, float32, bfloat16, float16)") from None


def check_cuda(torch: Any, device: str) -> None:
    """A CUDA device that is not there fails here with one line, not deep inside a model load."""
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise MmstarError(f"--device {device}: no CUDA device is available (torch {torch.__version__}, {build}); "
                          "use --device cpu")
    _, _, index = device.partition(":")
    if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
        raise MmstarError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                          f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})")


def load_error(model_id: str, exc: Exception) -> MmstarError:
    """One line for a checkpoint that would not load: pickled weights refused, an unreachable hub,
    or the loader's own first line."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    local = Path(model_id).exists()
    if ("safetensors" in first.lower() and "not found" not in first.lower()) or "use_safetensors" in first:
        return MmstarError(f"cannot load {model_id}: it has no safetensors weights; pickled checkpoints run "
                           "code when loaded, pass --allow-pickle to accept them")
    if not local and (os.environ.get("HF_HUB_OFFLINE") == "1" or "offline" in first.lower()
                      or "connect" in first.lower() or "resolve" in first.lower()):
        return MmstarError(f"cannot load {model_id}: not a local folder and the Hugging Face hub is unreachable "
                           f"({first}); download it elsewhere and pass its folder")
    return MmstarError(f"cannot load {model_id}: {first}")
