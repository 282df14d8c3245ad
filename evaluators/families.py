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
    # None: no standalone checkpoint can be cut out (see notes). Extraction prefers the causal-LM
    # class transformers maps the checkpoint's text config to, and falls back to this one
    backbone_class: str | None = "LlamaForCausalLM"
    processor_kwargs: dict[str, Any] = field(default_factory=dict)  # resolution settings etc.
    # set on an extracted LM's config so that it computes what the VLM computes (e.g. a head scaling
    # that the standalone class applies and the VLM does not)
    backbone_config: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()  # extra pip packages the processor needs (e.g. torchvision)
    min_transformers: str = "5.0"
    notes: str = ""


# Qwen2/2.5-VL resolution: the released processors' own range, 4 to 16384 visual tokens of 28x28
# pixels; stated so that a run that changes it has to say so
_QWEN_PIXELS = {"min_pixels": 4 * 28 * 28, "max_pixels": 16384 * 28 * 28}
_TV = ("torchvision",)  # a video processor, or an image processor with no PIL variant, needs it
_FACTS = [
    FamilyFacts("llava", ("llava",), "LlavaForConditionalGeneration", "LlavaProcessor"),
    FamilyFacts("llava-next", ("llava_next",), "LlavaNextForConditionalGeneration", "LlavaNextProcessor",
                notes="the backbone class follows the checkpoint's text config (Vicuna/Mistral/Yi -> "
                      "Llama or Mistral)"),
    FamilyFacts("llava-onevision", ("llava_onevision",), "LlavaOnevisionForConditionalGeneration",
                "LlavaOnevisionProcessor", backbone_class="Qwen2ForCausalLM", needs=_TV),
    FamilyFacts("qwen2-vl", ("qwen2_vl",), "Qwen2VLForConditionalGeneration", "Qwen2VLProcessor",
                backbone_class="Qwen2ForCausalLM", needs=_TV, processor_kwargs=_QWEN_PIXELS,
                notes="text-only M-RoPE equals 1-D RoPE, so the LM saves as a plain Qwen2ForCausalLM"),
    FamilyFacts("qwen2.5-vl", ("qwen2_5_vl",), "Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor",
                backbone_class="Qwen2ForCausalLM", needs=_TV, processor_kwargs=_QWEN_PIXELS,
                notes="min/max pixels: the processor's defaults (4-16384 visual tokens of 28x28); the card "
                      "suggests e.g. 256-1280 tokens to save compute, which changes scores"),
    FamilyFacts("qwen3-vl", ("qwen3_vl",), "Qwen3VLForConditionalGeneration", "Qwen3VLProcessor",
                backbone_class="Qwen3ForCausalLM", needs=_TV,
                notes="interleaved M-RoPE; text-only positions are equal on all axes, so the LM saves as "
                      "Qwen3ForCausalLM (logits equal on a tiny checkpoint)"),
    FamilyFacts("gemma3", ("gemma3",), "Gemma3ForConditionalGeneration", "Gemma3Processor",
                backbone_class="Gemma3ForCausalLM"),
    FamilyFacts("idefics3", ("idefics3",), "Idefics3ForConditionalGeneration", "Idefics3Processor",
                language_model_attr="model.text_model"),
    FamilyFacts("smolvlm", ("smolvlm",), "SmolVLMForConditionalGeneration", "SmolVLMProcessor",
                language_model_attr="model.text_model", needs=("torchvision", "num2words"),
                notes="SmolVLM2: the video processor needs torchvision, the processor num2words"),
    FamilyFacts("paligemma", ("paligemma",), "PaliGemmaForConditionalGeneration", "PaliGemmaProcessor",
                text_only="tokenizer", backbone_class="GemmaForCausalLM",
                notes="the processor refuses text-only input ('images are expected'): the HF backend renders "
                      "wv with the checkpoint's chat template and encodes it with the tokenizer alone (all "
                      "prompt as prefix); without a template, one clear error. PaliGemma2's text config is "
                      "gemma2 -> Gemma2ForCausalLM"),
    FamilyFacts("internvl", ("internvl",), "InternVLForConditionalGeneration", "InternVLProcessor",
                backbone_class="Qwen2ForCausalLM", needs=_TV,
                notes="HF-native OpenGVLab/*-hf checkpoints only; the backbone class follows the text "
                      "config (Qwen2/Qwen3, InternLM3 or GPT-OSS by size)"),
    FamilyFacts("glm4v", ("glm4v",), "Glm4vForConditionalGeneration", "Glm4vProcessor",
                backbone_class="Glm4ForCausalLM", needs=_TV,
                notes="text model glm4v_text has no causal-LM class; it saves as Glm4ForCausalLM (text-only "
                      "3-D RoPE positions are equal; logits equal on a tiny checkpoint)"),
    FamilyFacts("mllama", ("mllama",), "MllamaForConditionalGeneration", "MllamaProcessor",
                backbone_class=None,
                notes="the text model interleaves cross-attention layers, so it is no plain Llama; the "
                      "original Llama-3.1 LLM is released (use it for t). Without the cross-attention "
                      "layers and the 8 extra embedding rows it is a LlamaForCausalLM with the VLM's text-only "
                      "logits (tiny checkpoint, evaluators/tiny/mllama.py). A batch mixing image and no-image "
                      "rows crashes in transformers (aspect_ratio_ids); the HF backend runs them as two batches"),
    FamilyFacts("mistral3", ("mistral3",), "Mistral3ForConditionalGeneration", "PixtralProcessor",
                backbone_class="MistralForCausalLM"),
    FamilyFacts("phi4-multimodal", ("phi4_multimodal",), "Phi4MultimodalForCausalLM", "Phi4MultimodalProcessor",
                language_model_attr="model", backbone_class=None, needs=_TV,
                notes="one causal LM with vision/speech LoRA adapters, not an image-text-to-text class (the "
                      "HF backend loads model_class); the base Phi-4-mini LM is released (use it for t). "
                      "Without its image/audio embedders the LM is a Phi3ForCausalLM with the VLM's text-only "
                      "logits (tiny checkpoint without adapters)"),
    FamilyFacts("molmo2", ("molmo2",), "Molmo2ForConditionalGeneration", "Molmo2Processor",
                backbone_class=None, needs=_TV,
                notes="text model molmo2_text has no standalone causal-LM class in transformers; it is Qwen3 "
                      "(qk norm) plus 128 embedding rows for image tokens: without those rows a "
                      "Qwen3ForCausalLM gives the VLM's text-only logits (tiny checkpoint)"),
    FamilyFacts("ovis2", ("ovis2",), "Ovis2ForConditionalGeneration", "Ovis2Processor",
                backbone_class="Qwen2ForCausalLM"),
    FamilyFacts("aya-vision", ("aya_vision",), "AyaVisionForConditionalGeneration", "AyaVisionProcessor",
                backbone_class="Cohere2ForCausalLM", backbone_config={"logit_scale": 1.0},
                notes="backbone class follows the text config (Cohere2 for 8B/32B); the VLM's head does not "
                      "apply Cohere2's logit_scale, so the extracted LM sets it to 1 (measured on a tiny model)"),
    FamilyFacts("deepseek-vl", ("deepseek_vl",), "DeepseekVLForConditionalGeneration", "DeepseekVLProcessor"),
    FamilyFacts("idefics2", ("idefics2",), "Idefics2ForConditionalGeneration", "Idefics2Processor",
                language_model_attr="model.text_model", backbone_class="MistralForCausalLM"),
]
FAMILIES: dict[str, FamilyFacts] = {f.name: f for f in _FACTS}


def facts_for_model_type(model_type: str) -> FamilyFacts | None:
    """The family whose checkpoints carry this ``config.model_type``, or None (a generic model)."""
    return next((f for f in FAMILIES.values() if model_type in f.model_types), None)
