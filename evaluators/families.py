"""Facts per VLM family, as data: classes, processor settings, text-only support, where the LLM lives.

Backends, the tiny-checkpoint builders, ``mmstar models --check`` and ``mmstar backbone extract``
read this table instead of branching on family names. Pure data: importing it never imports torch
or transformers. Keys are our family names (the registry's ``family`` field); ``model_types`` are
the ``config.model_type`` strings a checkpoint of the family carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# how a text-only request (modes wv and t) reaches the model:
#   "processor"  the processor's chat template takes a conversation without an image part
#   "tokenizer"  the processor refuses text-only input; template/tokenise with the tokenizer alone
#   "none"       no text-only path; asking for one is a clear error naming the family
TextOnly = Literal["processor", "tokenizer", "none"]


@dataclass(frozen=True)
class FamilyFacts:
    name: str
    model_types: tuple[str, ...]
    model_class: str  # transformers class of the LVLM
    processor_class: str
    text_only: TextOnly = "processor"
    # dotted path from the loaded LVLM to its language model, and the standalone class that
    # the extracted language model is saved as (``mmstar backbone extract``)
    language_model_attr: str = "model.language_model"
    backbone_class: str = "LlamaForCausalLM"
    processor_kwargs: dict[str, Any] = field(default_factory=dict)  # resolution settings etc.
    needs: tuple[str, ...] = ()  # extra pip packages the processor needs (e.g. torchvision)
    min_transformers: str = "5.0"
    notes: str = ""


_FACTS = [
    FamilyFacts("llava", ("llava",), "LlavaForConditionalGeneration", "LlavaProcessor"),
    FamilyFacts("qwen2-vl", ("qwen2_vl",), "Qwen2VLForConditionalGeneration", "Qwen2VLProcessor",
                backbone_class="Qwen2ForCausalLM", needs=("torchvision",)),
    FamilyFacts("gemma3", ("gemma3",), "Gemma3ForConditionalGeneration", "Gemma3Processor",
                backbone_class="Gemma3ForCausalLM"),
    FamilyFacts("idefics3", ("idefics3",), "Idefics3ForConditionalGeneration", "Idefics3Processor",
                language_model_attr="model.text_model"),
    FamilyFacts("paligemma", ("paligemma",), "PaliGemmaForConditionalGeneration", "PaliGemmaProcessor",
                text_only="tokenizer", backbone_class="GemmaForCausalLM",
                notes="the processor refuses text-only input ('images are expected')"),
]
FAMILIES: dict[str, FamilyFacts] = {f.name: f for f in _FACTS}


def facts_for_model_type(model_type: str) -> FamilyFacts | None:
    """The family whose checkpoints carry this ``config.model_type``, or None (a generic model)."""
    return next((f for f in FAMILIES.values() if model_type in f.model_types), None)
