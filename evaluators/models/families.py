"""Facts per VLM family, as data: classes, processor settings, text-only support, where the LLM lives.

Backends, the tiny-checkpoint builders (classes, needs, and their backbones through
``backbone.py``), ``mmstar models --check`` and ``mmstar backbone extract`` read this table instead of
branching on family names. Pure data: importing it never imports torch
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
    # the first transformers release whose VLM computes what the standalone class does, so that
    # backbone_config is no longer needed (e.g. 5.25's Aya Vision head applies logit_scale); "" = always needed
    backbone_config_until: str = ""
    # how an LM that is no plain causal LM becomes one (``mmstar backbone extract``):
    # text-config key listing layers to leave out (renumbering the rest), e.g. Mllama's cross-attention layers
    backbone_drop_layers: str | None = None
    # text-config key giving how many embedding rows the causal LM keeps (rows past it embed image tokens)
    backbone_embedding_rows: str | None = None
    # state-dict name fragments of modules inside the LM that stay behind (e.g. image/audio embedders)
    backbone_drop_modules: tuple[str, ...] = ()
    backbone_config_drop: tuple[str, ...] = ()  # text-config keys the standalone class must not get
    # text-config values the extraction relies on; a checkpoint with other values is refused in one line
    backbone_requires: dict[str, Any] = field(default_factory=dict)
    # the extracted LM keeps the LVLM's chat template. False where that template frames one image-text
    # turn and the LM is a base LM (PaliGemma): mode t then renders mmstar's plain transcript, which
    # keeps the few-shot turns that such a template would drop
    backbone_chat_template: bool = True
    # the LM was kept frozen during multimodal training (per the model's makers), so an extracted LM
    # reproduces the released original LLM rather than a changed one
    lm_frozen: bool = False
    needs: tuple[str, ...] = ()  # extra pip packages the processor needs (e.g. torchvision)
    # transformers' image processors for the family: how far the torchvision implementation (the one
    # transformers picks, and the HF backend's default) lies from the PIL one (``--image-backend pil``),
    # in 8-bit levels of the resized image: 1 = the two resizes round some pixels apart; 0 = equal;
    # None = torchvision only. Measured on the tiny checkpoints with 640x480 images (so every processor
    # resizes), benchmarks/processor_backends.py; greedy predictions agreed on every family either way
    pil_level_diff: int | None = 1
    min_transformers: str = "5.0"
    # an upstream fault that stops the family from running in the installed transformers (the exact
    # error); the tiny family test expects it, so a release that fixes it shows up as a test to update
    known_failure: str = ""
    known_failure_until: str = ""  # the transformers release that fixed it ("" = not fixed yet)
    notes: str = ""

    def failure_now(self, transformers_version: str) -> str:
        """``known_failure`` where the installed transformers still has the fault, else ""."""
        from packaging.version import Version

        if self.known_failure_until and Version(transformers_version) >= Version(self.known_failure_until):
            return ""
        return self.known_failure

    def backbone_overrides(self, transformers_version: str) -> dict[str, Any]:
        """``backbone_config`` for the installed transformers: empty from ``backbone_config_until`` on."""
        from packaging.version import Version

        if self.backbone_config_until and Version(transformers_version) >= Version(self.backbone_config_until):
            return {}
        return dict(self.backbone_config)


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
                text_only="tokenizer", backbone_class="GemmaForCausalLM", backbone_chat_template=False,
                notes="the processor refuses text-only input ('images are expected'): the HF backend renders "
                      "wv with the checkpoint's chat template and encodes it with the tokenizer alone (all "
                      "prompt as prefix); without a template, one clear error. PaliGemma2's text config is "
                      "gemma2 -> Gemma2ForCausalLM, a base LM with no chat turns: the extracted LM gets no "
                      "chat template (t uses mmstar's plain transcript)"),
    FamilyFacts("internvl", ("internvl",), "InternVLForConditionalGeneration", "InternVLProcessor",
                backbone_class="Qwen2ForCausalLM", needs=_TV,
                notes="HF-native OpenGVLab/*-hf checkpoints only; the backbone class follows the text "
                      "config (Qwen2/Qwen3, InternLM3 or GPT-OSS by size)"),
    FamilyFacts("glm4v", ("glm4v",), "Glm4vForConditionalGeneration", "Glm4vProcessor",
                backbone_class="Glm4ForCausalLM", needs=_TV,
                notes="text model glm4v_text has no causal-LM class; it saves as Glm4ForCausalLM (text-only "
                      "3-D RoPE positions are equal; logits equal on a tiny checkpoint)"),
    FamilyFacts("mllama", ("mllama",), "MllamaForConditionalGeneration", "MllamaProcessor",
                backbone_drop_layers="cross_attention_layers", backbone_embedding_rows="vocab_size", lm_frozen=True,
                pil_level_diff=0,
                backbone_config_drop=("cross_attention_layers",),
                notes="the text model interleaves gated cross-attention layers with the Llama-3.1 layers; without "
                      "them and the 8 extra embedding rows it is a LlamaForCausalLM with the VLM's text-only logits. "
                      "The Llama-3.1 LM was frozen during adapter training (Meta), so the extraction reproduces the "
                      "original LLM (released: use it for t). A batch mixing image and no-image rows crashes in "
                      "transformers (aspect_ratio_ids); the HF backend runs them as two batches"),
    FamilyFacts("mistral3", ("mistral3",), "Mistral3ForConditionalGeneration", "PixtralProcessor",
                backbone_class="MistralForCausalLM"),
    FamilyFacts("phi4-multimodal", ("phi4_multimodal",), "Phi4MultimodalForCausalLM", "Phi4MultimodalProcessor",
                language_model_attr="model", backbone_class="Phi3ForCausalLM", needs=_TV, lm_frozen=True,
                pil_level_diff=None,
                backbone_drop_modules=("embed_tokens_extend",), backbone_config_drop=("vision_config", "audio_config"),
                notes="one causal LM with vision/speech LoRA adapters, not an image-text-to-text class (the "
                      "HF backend loads model_class). Without its image/audio embedders (embed_tokens_extend) the "
                      "LM is a Phi3ForCausalLM with the VLM's text-only logits (tiny checkpoint without adapters). "
                      "The LM is frozen Phi-4-mini (card), so the extraction reproduces the original LLM (released: "
                      "use it for t); a checkpoint whose weights carry merged LoRA names fails the name check in "
                      "one line"),
    FamilyFacts("molmo2", ("molmo2",), "Molmo2ForConditionalGeneration", "Molmo2Processor",
                backbone_class="Qwen3ForCausalLM", needs=_TV, backbone_embedding_rows="vocab_size", pil_level_diff=None,
                backbone_config_drop=("additional_vocab_size", "qk_norm_type", "norm_after", "rope_scaling_layers"),
                backbone_requires={"qk_norm_type": "qwen3", "norm_after": False},
                notes="text model molmo2_text has no causal-LM class in transformers; with Qwen3-style qk norm "
                      "and no norm-after it is Qwen3 plus 128 embedding rows for image tokens: without those rows "
                      "a Qwen3ForCausalLM gives the VLM's text-only logits (tiny checkpoint). Other text configs "
                      "(an OLMo-based Molmo2) are refused in one line"),
    FamilyFacts("ovis2", ("ovis2",), "Ovis2ForConditionalGeneration", "Ovis2Processor",
                backbone_class="Qwen2ForCausalLM"),
    FamilyFacts("aya-vision", ("aya_vision",), "AyaVisionForConditionalGeneration", "AyaVisionProcessor",
                backbone_class="Cohere2ForCausalLM", backbone_config={"logit_scale": 1.0}, backbone_config_until="5.25",
                notes="backbone class follows the text config (Cohere2 for 8B/32B); before transformers 5.25 the "
                      "VLM's head did not apply Cohere2's logit_scale, so the extracted LM sets it to 1 there; from "
                      "5.25 the head applies it and the LM keeps its own (both measured on a tiny model)"),
    FamilyFacts("deepseek-vl", ("deepseek_vl",), "DeepseekVLForConditionalGeneration", "DeepseekVLProcessor"),
    FamilyFacts("idefics2", ("idefics2",), "Idefics2ForConditionalGeneration", "Idefics2Processor",
                language_model_attr="model.text_model", backbone_class="MistralForCausalLM"),
    # ---- families added with their tiny builders (evaluators/models/tiny/); classes checked against transformers 5.24
    FamilyFacts("gemma4", ("gemma4",), "Gemma4ForConditionalGeneration", "Gemma4Processor",
                backbone_class="Gemma4ForCausalLM", needs=_TV,
                notes="Gemma 4: pooled 2-D-RoPE ViT, audio tower on the small models, Gemma4 text model with "
                      "per-layer inputs; no text-only Gemma 4 LM is released (extract it). Whether the 26B-A4B "
                      "MoE checkpoint shares this model_type is not verified here"),
    FamilyFacts("qwen3-vl-moe", ("qwen3_vl_moe",), "Qwen3VLMoeForConditionalGeneration", "Qwen3VLProcessor",
                backbone_class="Qwen3MoeForCausalLM", backbone_config={"norm_topk_prob": True}, needs=_TV,
                notes="Qwen3-VL-30B-A3B / 235B-A22B; text model qwen3_vl_moe_text has no causal-LM class: it saves "
                      "as Qwen3MoeForCausalLM with norm_topk_prob=True (the VL-MoE router always renormalises its "
                      "top-k weights; without it the logits differ, measured on a tiny checkpoint)"),
    FamilyFacts("glm4v-moe", ("glm4v_moe",), "Glm4vMoeForConditionalGeneration", "Glm4vProcessor",
                backbone_class="Glm4MoeForCausalLM", needs=_TV,
                notes="GLM-4.5V; text model glm4v_moe_text has no causal-LM class: it saves as Glm4MoeForCausalLM "
                      "(text-only 3-D RoPE positions are equal; logits equal on a tiny checkpoint). Its processor "
                      "is glm4v's, whose video processor needs torchvision"),
    FamilyFacts("lfm2-vl", ("lfm2_vl",), "Lfm2VlForConditionalGeneration", "Lfm2VlProcessor",
                backbone_class="Lfm2ForCausalLM", needs=_TV, pil_level_diff=None,
                notes="LFM2-VL: SigLIP2 NaFlex tower, LFM2 text model (gated short convolutions + attention)"),
    FamilyFacts("cohere2-vision", ("cohere2_vision",), "Cohere2VisionForConditionalGeneration",
                "Cohere2VisionProcessor", backbone_class="Cohere2ForCausalLM", backbone_config={"logit_scale": 1.0},
                needs=_TV, pil_level_diff=None,
                notes="Command A Vision; as Aya Vision, the VLM's head applies no logit_scale, so the extracted "
                      "Cohere2ForCausalLM sets it to 1 (measured on a tiny model)"),
    FamilyFacts("qwen3.5", ("qwen3_5",), "Qwen3_5ForConditionalGeneration", "Qwen3VLProcessor",
                backbone_class="Qwen3_5ForCausalLM", needs=_TV,
                notes="Qwen3.5, natively multimodal: Qwen3-VL vision side, hybrid text model (gated delta-net "
                      "linear attention + full attention) -> Qwen3_5ForCausalLM. The MoE variant (qwen3_5_moe) "
                      "has its own classes and is not in this table"),
    *[FamilyFacts(name, (model_type,), f"{cls}ForConditionalGeneration", f"{cls}Processor",
                  backbone_class="Qwen3_5ForCausalLM", needs=_TV, pil_level_diff=levels,
                  notes=f"{label}: window-merger ViT on a Qwen3.5 text model (qwen3_5_text -> Qwen3_5ForCausalLM)")
      for name, model_type, cls, label, levels in (
          ("minicpm-v4.6", "minicpmv4_6", "MiniCPMV4_6", "MiniCPM-V 4.6", 1),
          ("minicpm-v4.7", "minicpmv4_7", "MiniCPMV4_7", "MiniCPM-V 4.7 (the 4.6 image/video processors)", 1),
          ("minicpm-ocr", "minicpm_ocr", "MiniCPMOcr", "MiniCPM-OCR (4x visual-token merging)", None))],
    FamilyFacts("llama4", ("llama4",), "Llama4ForConditionalGeneration", "Llama4Processor",
                language_model_attr="language_model.model", backbone_class="Llama4ForCausalLM", needs=_TV,
                pil_level_diff=None,
                known_failure="transformers 5.24: Llama4ForConditionalGeneration.forward reads outputs.image_outputs "
                              "from its language model's MoeCausalLMOutputWithPast, which has none (AttributeError, "
                              "modeling_llama4.py:1318), with or without an image",
                known_failure_until="5.25",
                notes="Llama 4 Scout/Maverick: early fusion, MoE text model; the VLM holds a whole "
                      "Llama4ForCausalLM. Does not run in transformers 5.24 (known_failure); runs from 5.25 (the "
                      "tiny family test); extraction is not yet proven on a tiny checkpoint"),
]
FAMILIES: dict[str, FamilyFacts] = {f.name: f for f in _FACTS}


def facts_for_model_type(model_type: str) -> FamilyFacts | None:
    """The family whose checkpoints carry this ``config.model_type``, or None (a generic model)."""
    return next((f for f in FAMILIES.values() if model_type in f.model_types), None)
