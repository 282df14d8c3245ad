"""Model registry: short aliases -> (LVLM id, LLM backbone id, defaults). Pure data: no torch."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmstar.errors import MmstarError


@dataclass(frozen=True)
class ModelEntry:
    alias: str
    lvlm: str
    backbone: str | None
    family: str
    notes: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    # the model's own recommended generation budget (its card's max_new_tokens); the official
    # protocol (32 tokens) stays the default, this applies under a reasoning protocol
    max_new_tokens: int | None = None
    # chat-template switches passed to apply_chat_template: always, and per --thinking on|off
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    thinking: dict[str, dict[str, Any]] = field(default_factory=dict)  # {"on": {...}, "off": {...}}


_ENTRIES = [
    ModelEntry("llava", "llava-hf/llava-1.5-7b-hf", "lmsys/vicuna-7b-v1.5", "llava", "LLaVA-1.5-7B (the paper's row)"),
    ModelEntry("llava-13b", "llava-hf/llava-1.5-13b-hf", "lmsys/vicuna-13b-v1.5", "llava", "LLaVA-1.5-13B"),
    ModelEntry("llava-next-7b", "llava-hf/llava-v1.6-vicuna-7b-hf", "lmsys/vicuna-7b-v1.5", "llava-next",
               "LLaVA-NeXT (v1.6) Vicuna-7B"),
    ModelEntry("llava-next-34b", "llava-hf/llava-v1.6-34b-hf", "NousResearch/Nous-Hermes-2-Yi-34B", "llava-next",
               "LLaVA-NeXT-34B (the reference submission's model)", {"device_map": "auto"}),
    ModelEntry("qwen2-vl-2b", "Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2-1.5B-Instruct", "qwen2-vl", "Qwen2-VL-2B"),
    ModelEntry("qwen2-vl-7b", "Qwen/Qwen2-VL-7B-Instruct", "Qwen/Qwen2-7B-Instruct", "qwen2-vl", "Qwen2-VL-7B"),
    ModelEntry("qwen2.5-vl-7b", "Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "qwen2.5-vl",
               "Qwen2.5-VL-7B"),
    ModelEntry("smolvlm", "HuggingFaceTB/SmolVLM-Instruct", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "idefics3",
               "SmolVLM (Idefics3 architecture)"),
    ModelEntry("idefics3-8b", "HuggingFaceM4/Idefics3-8B-Llama3", "meta-llama/Meta-Llama-3.1-8B-Instruct",
               "idefics3", "Idefics3-8B"),
    ModelEntry("gemma3-4b", "google/gemma-3-4b-it", "google/gemma-3-1b-it", "gemma3",
               "Gemma-3-4B-it; no separately released text-only 4B: the 1B text model stands in unless "
               "--backbone is given (the paper's S_t needs the VLM's own backbone)"),
    ModelEntry("paligemma-3b", "google/paligemma-3b-mix-224", "google/gemma-2b", "paligemma", "PaliGemma-3B mix"),
]
REGISTRY: dict[str, ModelEntry] = {e.alias: e for e in _ENTRIES}


def resolve_model(name: str, backbone: str | None = None, any_name: bool = False) -> ModelEntry:
    """An alias, a local folder or any hub id; ``backbone`` overrides the registry's. With
    ``any_name`` (API backends) any model name the server knows is accepted."""
    entry = REGISTRY.get(name.lower())
    if entry is not None:
        return replace(entry, backbone=backbone or entry.backbone)
    looks_like_id = any_name or "/" in name or Path(name).exists()
    if not looks_like_id:
        raise MmstarError(f"unknown model {name!r}: not a registry alias ({', '.join(REGISTRY)}), "
                          "a local folder or a hub id like org/name; see `mmstar models`")
    label = Path(name).resolve().name if Path(name).exists() else name
    return ModelEntry(label, name, backbone, "custom")


def model_slug(name: str) -> str:
    """A safe folder name for a model alias, path or hub id."""
    from mmstar.runs import slugify

    path = Path(name)
    if path.exists():
        return slugify(path.resolve().name)
    return slugify(name.replace("/", "__"))
