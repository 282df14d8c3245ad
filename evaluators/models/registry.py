"""Model registry: short aliases -> (LVLM id, LLM backbone id, defaults). Pure data: no torch."""

from __future__ import annotations

import difflib
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

    @property
    def text_only(self) -> str:
        """How text-only input (wv, t) reaches the model, from the family facts; "unknown" for a
        model outside the registry's families."""
        from .families import FAMILIES

        facts = FAMILIES.get(self.family)
        return facts.text_only if facts else "unknown"


_E = ModelEntry
# notes on the LLM backbone: "changed" = the LM was trained on during multimodal training, so the
# released LLM is the paper's S_t but not the weights inside the LVLM (`mmstar backbone extract`
# measures those); "frozen" = the LVLM's LM is the released LLM unchanged
_CHANGED = "LM trained during multimodal training (changed)"
_QWEN3_THINK = {"on": {"enable_thinking": True}, "off": {"enable_thinking": False}}
# Qwen3 LLMs think by default; an Instruct LVLM answers directly, so its Qwen3 backbone must too (the
# switch is ignored by templates that do not know it, such as the Qwen3-VL-Instruct one)
_NO_THINK = {"enable_thinking": False}

_ENTRIES = [
    # ---- the original 11 (2023-2024)
    _E("llava", "llava-hf/llava-1.5-7b-hf", "lmsys/vicuna-7b-v1.5", "llava", "LLaVA-1.5-7B (the paper's row)"),
    _E("llava-13b", "llava-hf/llava-1.5-13b-hf", "lmsys/vicuna-13b-v1.5", "llava", "LLaVA-1.5-13B"),
    _E("llava-next-7b", "llava-hf/llava-v1.6-vicuna-7b-hf", "lmsys/vicuna-7b-v1.5", "llava-next",
       "LLaVA-NeXT (v1.6) Vicuna-7B"),
    _E("llava-next-34b", "llava-hf/llava-v1.6-34b-hf", "NousResearch/Nous-Hermes-2-Yi-34B", "llava-next",
       "LLaVA-NeXT-34B (the reference submission's model)", {"device_map": "auto"}),
    _E("qwen2-vl-2b", "Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2-1.5B-Instruct", "qwen2-vl", "Qwen2-VL-2B"),
    _E("qwen2-vl-7b", "Qwen/Qwen2-VL-7B-Instruct", "Qwen/Qwen2-7B-Instruct", "qwen2-vl", "Qwen2-VL-7B"),
    _E("qwen2.5-vl-7b", "Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "qwen2.5-vl",
       f"Qwen2.5-VL-7B; {_CHANGED}"),
    _E("smolvlm", "HuggingFaceTB/SmolVLM-Instruct", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "idefics3",
       "SmolVLM (Idefics3 architecture)"),
    _E("idefics3-8b", "HuggingFaceM4/Idefics3-8B-Llama3", "meta-llama/Meta-Llama-3.1-8B-Instruct",
       "idefics3", "Idefics3-8B"),
    _E("gemma3-4b", "google/gemma-3-4b-it", "google/gemma-3-1b-it", "gemma3",
       "Gemma-3-4B-it; no separately released text-only 4B: the 1B text model stands in unless "
       "--backbone is given (the paper's S_t needs the VLM's own backbone; see `mmstar backbone extract`)"),
    _E("paligemma-3b", "google/paligemma-3b-mix-224", "google/gemma-2b", "paligemma", "PaliGemma-3B mix"),
    # ---- LLaVA-OneVision: SigLIP + Qwen2 (the -hf conversions)
    *[_E(f"llava-ov-{size}", f"llava-hf/llava-onevision-qwen2-{size}-ov-hf", f"Qwen/Qwen2-{llm}-Instruct",
         "llava-onevision", f"LLaVA-OneVision-{size.upper()} (OV stage); {_CHANGED}", dict(extra))
      for size, llm, extra in (("0.5b", "0.5B", {}), ("7b", "7B", {}), ("72b", "72B", {"device_map": "auto"}))],
    # ---- Qwen2.5-VL (7B above)
    *[_E(f"qwen2.5-vl-{size.lower()}", f"Qwen/Qwen2.5-VL-{size}-Instruct", f"Qwen/Qwen2.5-{size}-Instruct",
         "qwen2.5-vl", f"Qwen2.5-VL-{size}; {_CHANGED}", dict(extra))
      for size, extra in (("3B", {}), ("32B", {"device_map": "auto"}), ("72B", {"device_map": "auto"}))],
    # ---- Qwen3-VL dense, Instruct and Thinking
    *[_E(f"qwen3-vl-{size.lower()}{'-thinking' if kind == 'Thinking' else ''}", f"Qwen/Qwen3-VL-{size}-{kind}",
         f"Qwen/Qwen3-{llm}", "qwen3-vl",
         f"Qwen3-VL-{size}-{kind}; {_CHANGED}; the card does not name the starting LLM: the Qwen3 of matching "
         f"size is assumed{' (2B: Qwen3-1.7B, unsure)' if size == '2B' else ''}; the Qwen3 backbone thinks by "
         "default: --thinking off sets its enable_thinking=False"
         + ("; the Thinking model always thinks (no off switch in its template)" if kind == "Thinking" else "")
         + "; max_new_tokens: Qwen's recommended output length (16384 Instruct, 40960 Thinking) as we recall "
         "it, not verified against the card here",
         {"device_map": "auto"} if size == "32B" else {},
         max_new_tokens=40960 if kind == "Thinking" else 16384, thinking=_QWEN3_THINK,
         chat_template_kwargs={} if kind == "Thinking" else _NO_THINK)
      for size, llm in (("2B", "1.7B"), ("4B", "4B"), ("8B", "8B"), ("32B", "32B"))
      for kind in ("Instruct", "Thinking")],
    # ---- InternVL3 / InternVL3.5, HF-native checkpoints (InternVLForConditionalGeneration)
    *[_E(f"internvl3-{size.lower()}", f"OpenGVLab/InternVL3-{size}-hf", llm, "internvl",
         f"InternVL3-{size}; the card names {llm.split('/')[1]} as the LM; native multimodal pre-training "
         "trains the LM jointly (changed)", {"device_map": "auto"} if size in ("38B", "78B") else {})
      for size, llm in (("1B", "Qwen/Qwen2.5-0.5B"), ("2B", "Qwen/Qwen2.5-1.5B"), ("8B", "Qwen/Qwen2.5-7B"),
                        ("9B", "internlm/internlm3-8b-instruct"), ("14B", "Qwen/Qwen2.5-14B"),
                        ("38B", "Qwen/Qwen2.5-32B"), ("78B", "Qwen/Qwen2.5-72B"))],
    *[_E(f"internvl3.5-{size.lower()}", f"OpenGVLab/InternVL3_5-{size}-HF", f"Qwen/Qwen3-{llm}", "internvl",
         f"InternVL3.5-{size}; LM from Qwen3-{llm} per the card (changed: SFT + cascade RL); thinking mode "
         "is a system prompt in the original release, not a template switch (not encoded here); the Qwen3 "
         "backbone gets enable_thinking=False to answer directly, as the LVLM does",
         {"device_map": "auto"} if size == "38B" else {}, chat_template_kwargs=_NO_THINK)
      for size, llm in (("1B", "0.6B"), ("2B", "1.7B"), ("4B", "4B"), ("8B", "8B"), ("14B", "14B"),
                        ("38B", "32B"))],
    # ---- Gemma-3: the 4B/12B/27B LMs are not released text-only
    *[_E(f"gemma3-{size}", f"google/gemma-3-{size}-it", None, "gemma3",
         f"Gemma-3-{size.upper()}-it; its LM is not released text-only: pass --backbone, or "
         "`mmstar backbone extract` (labelled extracted, not the paper's S_t)",
         {"device_map": "auto"} if size == "27b" else {})
      for size in ("12b", "27b")],
    # ---- Llama-3.2-Vision: cross-attention adapters on a frozen Llama-3.1
    _E("llama3.2-vision-11b", "meta-llama/Llama-3.2-11B-Vision-Instruct", "meta-llama/Llama-3.1-8B-Instruct",
       "mllama", "Llama-3.2-11B-Vision; LM frozen during adapter training (Meta), so Llama-3.1-8B is its LM; "
       "gated on the hub"),
    _E("llama3.2-vision-90b", "meta-llama/Llama-3.2-90B-Vision-Instruct", "meta-llama/Llama-3.1-70B-Instruct",
       "mllama", "Llama-3.2-90B-Vision; LM frozen (Meta); gated on the hub", {"device_map": "auto"}),
    # ---- GLM-4.1V-Thinking
    _E("glm4.1v-9b-thinking", "zai-org/GLM-4.1V-9B-Thinking", "zai-org/GLM-4-9B-0414", "glm4v",
       f"GLM-4.1V-9B-Thinking (formerly THUDM/); LM from GLM-4-9B-0414 per the paper, {_CHANGED}; always "
       "reasons (<think>...</think><answer>); 8192 new tokens as in the card's example",
       max_new_tokens=8192),
    # ---- Mistral-Small-3.1 (Pixtral vision encoder + Mistral-Small-3 LM)
    _E("mistral-small-3.1", "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
       "mistralai/Mistral-Small-24B-Instruct-2501", "mistral3",
       "Mistral-Small-3.1-24B; builds on Mistral-Small-3 (2501), whose text-only model stands in: the 3.1 "
       "LM itself is not released text-only (changed)", {"device_map": "auto"}),
    # ---- Phi-4-multimodal: vision/speech LoRA adapters on a frozen Phi-4-mini
    _E("phi4-multimodal", "microsoft/Phi-4-multimodal-instruct", "microsoft/Phi-4-mini-instruct",
       "phi4-multimodal", "Phi-4-multimodal-instruct; LM frozen, modalities via LoRA adapters (card), so "
       "Phi-4-mini-instruct is its LM; unsure which hub revision holds the transformers-native weights"),
    # ---- Idefics3 / SmolVLM2 (SmolVLM v1 and Idefics3-8B above)
    _E("smolvlm2-2.2b", "HuggingFaceTB/SmolVLM2-2.2B-Instruct", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "smolvlm",
       f"SmolVLM2-2.2B; {_CHANGED}"),
    _E("smolvlm2-500m", "HuggingFaceTB/SmolVLM2-500M-Video-Instruct", "HuggingFaceTB/SmolLM2-360M-Instruct",
       "smolvlm", f"SmolVLM2-500M; {_CHANGED}"),
    # ---- PaliGemma2 mix checkpoints (Gemma-2 LMs); processor refuses text-only: tokenizer path
    _E("paligemma2-3b", "google/paligemma2-3b-mix-448", "google/gemma-2-2b", "paligemma",
       f"PaliGemma2-3B mix 448; Gemma-2-2B base LM, {_CHANGED}"),
    _E("paligemma2-10b", "google/paligemma2-10b-mix-448", "google/gemma-2-9b", "paligemma",
       f"PaliGemma2-10B mix 448; Gemma-2-9B base LM, {_CHANGED}"),
    # ---- families added with their facts (issue 15 follow-up); ids confirmed against model cards / docs
    # Qwen3-VL MoE, Instruct and Thinking
    *[_E(f"qwen3-vl-30b-a3b{'-thinking' if kind == 'Thinking' else ''}", f"Qwen/Qwen3-VL-30B-A3B-{kind}",
         "Qwen/Qwen3-30B-A3B", "qwen3-vl-moe",
         f"Qwen3-VL-30B-A3B-{kind} (MoE, ~3B active); {_CHANGED}; the card does not name the starting LLM: "
         "Qwen3-30B-A3B (same size and MoE layout) is assumed; the Qwen3 backbone thinks by default: "
         "--thinking off sets its enable_thinking=False"
         + ("; the Thinking model always thinks" if kind == "Thinking" else "")
         + "; max_new_tokens as for the dense Qwen3-VL entries, not verified against this card",
         {"device_map": "auto"}, max_new_tokens=40960 if kind == "Thinking" else 16384, thinking=_QWEN3_THINK,
         chat_template_kwargs={} if kind == "Thinking" else _NO_THINK)
      for kind in ("Instruct", "Thinking")],
    # GLM-4.5V: GLM-4.1V-Thinking's approach on GLM-4.5-Air (vLLM's GLM-4.5 post)
    _E("glm4.5v", "zai-org/GLM-4.5V", "zai-org/GLM-4.5-Air", "glm4v-moe",
       f"GLM-4.5V (106B MoE); based on GLM-4.5-Air, {_CHANGED}; a hybrid reasoning model: its template's "
       "thinking switch is not verified here (not encoded)", {"device_map": "auto"}),
    # LFM2-VL: LFM2 LMs per the transformers docs (450M <- LFM2-350M, 1.6B <- LFM2-1.2B)
    *[_E(f"lfm2-vl-{size.lower()}", f"LiquidAI/LFM2-VL-{size}", f"LiquidAI/LFM2-{llm}", "lfm2-vl",
         f"LFM2-VL-{size}; LM from LFM2-{llm} ({src}), {_CHANGED}")
      for size, llm, src in (("450M", "350M", "transformers docs"), ("1.6B", "1.2B", "transformers docs"),
                             ("3B", "2.6B", "assumed from the card's 2.6B LM size; the card says 'LFM2 backbone'"))],
    # Command A Vision (Cohere2 LM)
    _E("command-a-vision", "CohereLabs/command-a-vision-07-2025", "CohereLabs/c4ai-command-a-03-2025",
       "cohere2-vision", "Command A Vision (112B); built upon the Command A LLM (Cohere/OCI docs); whether its "
       "LM was trained during multimodal training is not stated in what we read; gated on the hub",
       {"device_map": "auto"}),
    # Gemma 4: natively multimodal, no text-only LM released
    *[_E(f"gemma4-{size.lower()}", f"google/gemma-4-{size}-it", None, "gemma4",
         f"Gemma-4-{size}-it; no text-only Gemma 4 LM is released: pass --backbone, or `mmstar backbone "
         "extract` (labelled extracted, not the paper's S_t); the card's configurable thinking mode is not "
         "encoded here", {"device_map": "auto"} if size == "31B" else {})
      for size in ("E2B", "E4B", "31B")],
    # Qwen3.5: natively multimodal (image-text-to-text on the hub), so no text-only LM is released
    _E("qwen3.5-0.8b", "Qwen/Qwen3.5-0.8B", None, "qwen3.5",
       "Qwen3.5-0.8B, natively multimodal: no text-only LM is released (Qwen3.5-0.8B-Base is the pre-trained "
       "model, also multimodal): pass --backbone, or `mmstar backbone extract` (labelled extracted); thinking "
       "is off by default, --thinking on sets enable_thinking=True (documented by a hosting provider, not "
       "verified against the card)", thinking=_QWEN3_THINK),
    # MiniCPM-V 4.6: SigLIP2-400M + Qwen3.5-0.8B (xinference docs); Instruct and Thinking are separate checkpoints
    *[_E(f"minicpm-v4.6{suffix.lower()}", f"openbmb/MiniCPM-V-4.6{suffix}", None, "minicpm-v4.6",
         f"MiniCPM-V-4.6{suffix} (1.3B); built on Qwen3.5-0.8B, which is itself multimodal on the hub: extract "
         "its LM (`mmstar backbone extract Qwen/Qwen3.5-0.8B`) and pass it as --backbone for the paper's S_t"
         + ("; thinks always (a separate checkpoint, no template switch)" if suffix else ""))
      for suffix in ("", "-Thinking")],
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
        close = difflib.get_close_matches(name.lower(), REGISTRY, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise MmstarError(f"unknown model {name!r}: not a registry alias, a local folder or a hub id like "
                          f"org/name; {hint}see `mmstar models`")
    label = Path(name).resolve().name if Path(name).exists() else name
    return ModelEntry(label, name, backbone, "custom")

