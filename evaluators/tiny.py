"""Tiny, randomly initialised checkpoints of real VLM families, built offline.

Each model is built from transformers' own config classes with a locally trained byte-level BPE
tokenizer, saved with ``save_pretrained`` (safetensors) and meant to be reloaded through the same
``from_pretrained`` path a real checkpoint takes. Each VLM comes with its LLM backbone: the VLM's
text weights saved as a standalone ``*ForCausalLM`` so that ``t`` mode runs the real backbone.
Used by the tests and by ``mmstar tiny-models DIR`` to smoke-test an install offline.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

FAMILIES = ("llava", "qwen2-vl", "gemma3", "idefics3")

# Chat templates kept deliberately small; each places the family's image placeholder where the
# image part is and renders string or list content, with an optional system turn.
_CONTENT = (
    "{%- if m['content'] is string -%}{{ m['content'] }}{%- else -%}"
    "{%- for p in m['content'] -%}{%- if p['type'] == 'image' -%}{{ IMG }}{%- elif p['type'] == 'text' -%}"
    "{{ p['text'] }}{%- endif -%}{%- endfor -%}{%- endif -%}"
)


def _lit(text: str) -> str:
    """A literal as a Jinja expression, so whitespace control never eats its spaces/newlines."""
    return "{{ " + json.dumps(text) + " }}"


def _template(bos: str, turn: tuple[str, str], end: str, gen: str, img: str) -> str:
    """``turn`` is (text before the role, text after it); the role is rendered in between."""
    body = _CONTENT.replace("{{ IMG }}", _lit(img))
    role = "{{ m['role'] | upper }}" if turn[0] == "UPPER" else "{{ m['role'] }}"
    before = "" if turn[0] == "UPPER" else _lit(turn[0])
    return (
        bos + "{%- for m in messages -%}" + before + role + _lit(turn[1]) + body + _lit(end) + "{%- endfor -%}"
        "{%- if add_generation_prompt -%}" + _lit(gen) + "{%- endif -%}"
    )


TEMPLATES = {
    "llava": _template("{{ bos_token }}", ("UPPER", ": "), "\n", "ASSISTANT:", "<image>\n"),
    "qwen2-vl": _template("", ("<|im_start|>", "\n"), "<|im_end|>\n", "<|im_start|>assistant\n",
                          "<|vision_start|><|image_pad|><|vision_end|>"),
    "gemma3": _template("{{ bos_token }}", ("<start_of_turn>", "\n"), "<end_of_turn>\n",
                        "<start_of_turn>model\n", "<start_of_image>"),
    # the processor expands <image> into <fake_token_around_image><global-img><image>... itself
    "idefics3": _template("{{ bos_token }}", ("UPPER", ":"), "<end_of_utterance>\n", "ASSISTANT:", "<image>"),
}
SPECIALS = {
    "llava": ["<s>", "</s>", "<unk>", "<pad>", "<image>"],
    "qwen2-vl": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>", "<pad>"],
    "gemma3": ["<bos>", "<eos>", "<unk>", "<pad>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
               "<end_of_image>", "<image_soft_token>"],
    "idefics3": ["<|im_start|>", "<end_of_utterance>", "<unk>", "<pad>", "<fake_token_around_image>", "<image>",
                 "<global-img>", *[f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]],
}
_TOKEN_ROLES = {
    "llava": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
    "qwen2-vl": {"eos_token": "<|im_end|>", "pad_token": "<pad>", "unk_token": None},
    "gemma3": {"bos_token": "<bos>", "eos_token": "<end_of_turn>", "unk_token": "<unk>", "pad_token": "<pad>",
               "boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"},
    "idefics3": {"bos_token": "<|im_start|>", "eos_token": "<end_of_utterance>", "unk_token": "<unk>",
                 "pad_token": "<pad>", "image_token": "<image>"},
}

DEFAULT_CORPUS = (
    "Question: What colour is the shape in the image? Options: A: red, B: green, C: blue, D: yellow\n"
    "Answer the question directly. Answer with the option's letter from the given choices directly.\n"
    "You are a helpful assistant. If you can't judge the answer, give your guess as to the most likely answer.\n"
    "Which one is the correct caption of this image? The man is sitting by the edge of the bathtub.\n"
    "How many objects are there? Where is the object? Which shape is shown? circle square triangle cross\n"
    "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.\n"
    "0 1 2 3 4 5 6 7 8 9 10 left right top bottom large small bigger smaller the a an of in on is are\n"
)


@dataclass(frozen=True)
class TinyPair:
    family: str
    vlm: Path
    backbone: Path


def train_tokenizer(family: str, corpus: Iterable[str] = (DEFAULT_CORPUS,), vocab_size: int = 400):
    """A byte-level BPE tokenizer trained here, with the family's special tokens and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS[family],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    roles = {k: v for k, v in _TOKEN_ROLES[family].items() if k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    extra = {k: v for k, v in _TOKEN_ROLES[family].items() if k not in roles}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **roles, extra_special_tokens=extra or None)
    fast.chat_template = TEMPLATES[family]
    fast.padding_side = "left"
    return fast


def _ids(tok, *tokens: str) -> list[int]:
    return [tok.convert_tokens_to_ids(t) for t in tokens]


def _llama_text(tok, hidden: int = 64, layers: int = 2):
    from transformers import LlamaConfig

    bos, eos, pad = _ids(tok, "<s>", "</s>", "<pad>")
    return LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                       num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                       max_position_embeddings=2048, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)


def build_llava(out: Path, tok=None, image_size: int = 32, patch: int = 8, seed: int = 0):
    """LLaVA-1.5 architecture: CLIP vision tower + Llama. Returns (model, processor) after saving."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = tok or train_tokenizer("llava")
    torch.manual_seed(seed)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=image_size, patch_size=patch, projection_dim=32)
    config = LlavaConfig(vision_config=vision, text_config=_llama_text(tok),
                         image_token_index=tok.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-2)
    model = LlavaForConditionalGeneration(config).eval()
    image_proc = CLIPImageProcessor(size={"shortest_edge": image_size},
                                    crop_size={"height": image_size, "width": image_size})
    processor = LlavaProcessor(image_processor=image_proc, tokenizer=tok, patch_size=patch,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=TEMPLATES["llava"])
    _save(out, model, processor)
    return model, processor


def _tiny_text(tok, **extra: object) -> dict:
    """The text-model sizes every tiny family shares, plus family-specific keys."""
    return {"vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 2048, **extra}


def build_qwen2_vl(out: Path, tok=None, seed: int = 0):
    """Qwen2-VL architecture (M-RoPE, dynamic resolution; its processor needs torchvision)."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tok = tok or train_tokenizer("qwen2-vl")
    torch.manual_seed(seed)
    image_pad, video_pad, vstart, vend, eos, pad = _ids(
        tok, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|im_end|>", "<pad>")
    text = _tiny_text(tok, bos_token_id=eos, eos_token_id=eos, pad_token_id=pad,
                      rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]})
    vision = {"depth": 2, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "patch_size": 14,
              "spatial_merge_size": 2, "temporal_patch_size": 2}
    config = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=image_pad,
                           video_token_id=video_pad, vision_start_token_id=vstart, vision_end_token_id=vend)
    model = Qwen2VLForConditionalGeneration(config).eval()
    pixels = {"min_pixels": 56 * 56, "max_pixels": 56 * 56, "patch_size": 14, "merge_size": 2,
              "temporal_patch_size": 2}  # one 56x56 image -> 4x4 patches -> 4 tokens after merging
    image_proc, video_proc = Qwen2VLImageProcessor(**pixels), Qwen2VLVideoProcessor(**pixels)
    processor = Qwen2VLProcessor(image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                                 chat_template=TEMPLATES["qwen2-vl"])
    _save(out, model, processor)
    return model, processor


def build_gemma3(out: Path, tok=None, seed: int = 0):
    """Gemma-3 architecture (SigLIP vision tower + Gemma3 text, pooled to a square token count)."""
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3ImageProcessor, Gemma3Processor

    tok = tok or train_tokenizer("gemma3")
    torch.manual_seed(seed)
    bos, eos, pad, boi, eoi, img = _ids(tok, "<bos>", "<end_of_turn>", "<pad>", "<start_of_image>",
                                        "<end_of_image>", "<image_soft_token>")
    text = _tiny_text(tok, head_dim=16, sliding_window=512, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8}
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                          boi_token_index=boi, eoi_token_index=eoi, image_token_index=img)
    model = Gemma3ForConditionalGeneration(config).eval()
    image_proc = Gemma3ImageProcessor(size={"height": 32, "width": 32}, do_pan_and_scan=False)
    processor = Gemma3Processor(image_processor=image_proc, tokenizer=tok, chat_template=TEMPLATES["gemma3"],
                                image_seq_length=4)
    _save(out, model, processor)
    return model, processor


def build_idefics3(out: Path, tok=None, seed: int = 0):
    """Idefics3 (SmolVLM v1) architecture: SigLIP-style vision tower, pixel-shuffle connector, Llama.
    Its image processor runs on PIL, and vLLM's CPU build can load the family: the text part uses a
    head size of 32, which vLLM's CPU attention supports, so the vLLM image path is testable here."""
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor

    tok = tok or train_tokenizer("idefics3")
    torch.manual_seed(seed)
    bos, eos, pad, image = _ids(tok, "<|im_start|>", "<end_of_utterance>", "<pad>", "<image>")
    text = _tiny_text(tok, num_attention_heads=2, num_key_value_heads=2, head_dim=32, model_type="llama",
                      bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8}
    # (32 / 8)^2 = 16 patches, pixel-shuffled by 2 -> 4 image tokens; no tiling: one global image
    config = Idefics3Config(vision_config=vision, text_config=text, scale_factor=2, image_token_id=image,
                            pad_token_id=pad, tie_word_embeddings=False)
    model = Idefics3ForConditionalGeneration(config).eval()
    image_proc = Idefics3ImageProcessor(do_image_splitting=False, size={"longest_edge": 32},
                                        max_image_size={"longest_edge": 32})
    processor = Idefics3Processor(image_processor=image_proc, tokenizer=tok, image_seq_len=4,
                                  chat_template=TEMPLATES["idefics3"])
    _save(out, model, processor)
    return model, processor


def _save(out: Path, model, processor) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)


def extract_backbone(vlm, tokenizer, out: Path, causal_lm_class: str) -> None:
    """Save the VLM's language model as a standalone ``*ForCausalLM`` with the same weights."""
    import transformers

    cls = getattr(transformers, causal_lm_class)
    text_config = vlm.config.get_text_config()
    if causal_lm_class == "Qwen2ForCausalLM":  # text-only M-RoPE equals 1-D RoPE
        text_config = transformers.Qwen2Config(**{k: v for k, v in text_config.to_dict().items()
                                                 if k not in ("model_type", "architectures")})
    lm = cls(text_config).eval()
    state = {}
    for key, value in vlm.state_dict().items():
        for prefix in ("model.language_model.", "model.text_model."):  # Idefics3 names it text_model
            if key.startswith(prefix):
                state["model." + key[len(prefix):]] = value
        if key.startswith("lm_head."):
            state[key] = value
    missing, unexpected = lm.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("rotary_emb.inv_freq")]
    if missing or unexpected:
        raise RuntimeError(f"backbone extraction mismatch: missing {missing[:3]}, unexpected {unexpected[:3]}")
    out.mkdir(parents=True, exist_ok=True)
    lm.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


_BUILDERS: dict[str, tuple[Callable, str]] = {
    "llava": (build_llava, "LlamaForCausalLM"),
    "qwen2-vl": (build_qwen2_vl, "Qwen2ForCausalLM"),
    "gemma3": (build_gemma3, "Gemma3ForCausalLM"),
    "idefics3": (build_idefics3, "LlamaForCausalLM"),
}


def build_tiny_pair(family: str, root: Path, corpus: Iterable[str] | None = None) -> TinyPair:
    """Build, save and return the paths of one family's tiny VLM and its LLM backbone."""
    if family not in _BUILDERS:
        raise ValueError(f"unknown tiny family {family!r}; choose from {', '.join(FAMILIES)}")
    builder, lm_class = _BUILDERS[family]
    tok = train_tokenizer(family, corpus or (DEFAULT_CORPUS,))
    vlm_dir, lm_dir = root / f"tiny-{family}", root / f"tiny-{family}-backbone"
    model, _processor = builder(vlm_dir, tok)
    extract_backbone(model, tok, lm_dir, lm_class)
    return TinyPair(family, vlm_dir, lm_dir)
