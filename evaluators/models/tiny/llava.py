"""LLaVA-style families: a CLIP/SigLIP vision tower, a projector, and an unchanged text LM.

``build_llava`` takes a ``LlavaShape``: the tiny test shape by default, ``DEMO`` for the models in
``data/demo-models`` (``scripts/train_demo_models.py``) and ``LLAVA_7B`` for the GPU benchmark
(``benchmarks/gpu_throughput.py``), so all three build LLaVA through this one builder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import CHATML_ROLES, CHATML_SPECIALS, TINY_VISION, TinyFamily, chatml, ids, template, tiny_text

# anyres: tile grids that are multiples of the 32-pixel tile (+ the base image)
_PINPOINTS = [[32, 32], [32, 64], [64, 32], [64, 64]]


@dataclass(frozen=True)
class LlavaShape:
    """Sizes of a LLaVA-1.5-architecture model: a Llama text model and a CLIP vision tower."""

    hidden: int = 64
    layers: int = 2
    heads: int = 4  # key/value heads too (Llama-2-7B has no grouped-query attention)
    mlp: int = 128
    vocab: int = 0  # embedding rows: at least the tokenizer's size (0: exactly that)
    positions: int = 2048
    v_hidden: int = 32
    v_layers: int = 2
    v_heads: int = 2
    v_mlp: int = 64
    image: int = 32
    patch: int = 8
    feature_layer: int = -2  # LLaVA-1.5 takes the penultimate ViT layer

    @property
    def image_tokens(self) -> int:
        return (self.image // self.patch) ** 2


TINY = LlavaShape()
# data/demo-models: trained on the CPU (scripts/train_demo_models.py); the last ViT layer's features
DEMO = LlavaShape(hidden=128, layers=4, mlp=256, positions=512, v_hidden=64, v_heads=4, v_mlp=128, image=64,
                  feature_layer=-1)
# LLaVA-1.5-7B: CLIP ViT-L/14-336 (24 layers, 1024 wide) -> 576 image tokens, Llama-2-7B (32 x 4096, MLP 11008)
LLAVA_7B = LlavaShape(hidden=4096, layers=32, heads=32, mlp=11008, vocab=32064, positions=4096, v_hidden=1024,
                      v_layers=24, v_heads=16, v_mlp=4096, image=336, patch=14)


def llama_text(tok, shape: LlavaShape = TINY):
    """The Llama text config of a LLaVA of ``shape`` (also the demo's base LLM, trained before the LVLM)."""
    from transformers import LlamaConfig

    bos, eos, pad = ids(tok, "<s>", "</s>", "<pad>")
    return LlamaConfig(vocab_size=max(shape.vocab, len(tok)), hidden_size=shape.hidden, intermediate_size=shape.mlp,
                       num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                       num_key_value_heads=shape.heads, max_position_embeddings=shape.positions, bos_token_id=bos,
                       eos_token_id=eos, pad_token_id=pad)


def _clip_vision(shape: LlavaShape):
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=shape.v_hidden, intermediate_size=shape.v_mlp,
                            num_hidden_layers=shape.v_layers, num_attention_heads=shape.v_heads,
                            image_size=shape.image, patch_size=shape.patch, projection_dim=shape.v_hidden)


def llava_processor(tok, shape: LlavaShape = TINY):
    from transformers import CLIPImageProcessor

    image_proc = CLIPImageProcessor(size={"shortest_edge": shape.image},
                                    crop_size={"height": shape.image, "width": shape.image})
    return LLAVA.classes()[2](image_processor=image_proc, tokenizer=tok, patch_size=shape.patch,
                              vision_feature_select_strategy="default", num_additional_image_tokens=1,
                              chat_template=LLAVA.template)


def build_llava(tok, seed: int | None = 0, shape: LlavaShape = TINY, device: str = "cpu", dtype: Any = None):
    """LLaVA-1.5 architecture: CLIP vision tower + Llama. ``seed`` None keeps the caller's random state
    (the demo script seeds once for its whole run); ``device``/``dtype``: the weights are created there
    in that dtype (the 7B shape is born on the GPU in bf16, with no CPU copy)."""
    import torch

    config_cls, model_cls, _ = LLAVA.classes()
    if seed is not None:
        torch.manual_seed(seed)
    config = config_cls(vision_config=_clip_vision(shape), text_config=llama_text(tok, shape),
                        image_token_index=tok.convert_tokens_to_ids("<image>"),
                        vision_feature_select_strategy="default", vision_feature_layer=shape.feature_layer)
    with torch.device(device):
        model = model_cls._from_config(config, dtype=dtype).eval()
    return model, llava_processor(tok, shape)


LLAVA = TinyFamily(
    "llava", template("{{ bos_token }}", ("UPPER", ": "), "\n", "ASSISTANT:", "<image>\n"),
    ("<s>", "</s>", "<unk>", "<pad>", "<image>"),
    {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
    build_llava,
)


def build_llava_next(tok, seed: int = 0):
    """LLaVA-NeXT (v1.6): CLIP + Llama with anyres tiling; the token count depends on the image size."""
    import torch
    from transformers import LlavaNextImageProcessor

    config_cls, model_cls, processor_cls = LLAVA_NEXT.classes()
    torch.manual_seed(seed)
    config = config_cls(vision_config=_clip_vision(TINY), text_config=llama_text(tok), image_grid_pinpoints=_PINPOINTS,
                        image_token_index=tok.convert_tokens_to_ids("<image>"),
                        vision_feature_select_strategy="default", vision_feature_layer=-2)
    model = model_cls(config).eval()
    image_proc = LlavaNextImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                         image_grid_pinpoints=_PINPOINTS)
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, patch_size=8,
                              vision_feature_select_strategy="default", num_additional_image_tokens=1,
                              chat_template=LLAVA_NEXT.template)
    return model, processor


def build_llava_onevision(tok, seed: int = 0):
    """LLaVA-OneVision: SigLIP + Qwen2 with anyres_max_9 tiling (video processor needs torchvision)."""
    import torch
    from transformers.models.llava_onevision.image_processing_llava_onevision import LlavaOnevisionImageProcessor
    from transformers.models.llava_onevision.video_processing_llava_onevision import LlavaOnevisionVideoProcessor

    config_cls, model_cls, processor_cls = LLAVA_ONEVISION.classes()
    torch.manual_seed(seed)
    eos, pad, image, video = ids(tok, "<|im_end|>", "<pad>", "<image>", "<video>")
    text = tiny_text(tok, model_type="qwen2", bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)
    config = config_cls(vision_config={**TINY_VISION, "model_type": "siglip_vision_model"},
                        text_config=text, image_token_index=image, video_token_index=video,
                        image_grid_pinpoints=_PINPOINTS, vision_feature_select_strategy="full",
                        vision_feature_layer=-1)
    model = model_cls(config).eval()
    size = {"height": 32, "width": 32}
    processor = processor_cls(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=_PINPOINTS),
        video_processor=LlavaOnevisionVideoProcessor(size=size), tokenizer=tok, num_image_tokens=16,
        vision_feature_select_strategy="full", chat_template=LLAVA_ONEVISION.template)
    return model, processor


LLAVA_NEXT = TinyFamily("llava-next", LLAVA.template, LLAVA.specials, LLAVA.roles, build_llava_next)
LLAVA_ONEVISION = TinyFamily(
    "llava-onevision", chatml("<image>\n"), (*CHATML_SPECIALS, "<image>", "<video>"),
    {**CHATML_ROLES, "image_token": "<image>", "video_token": "<video>"}, build_llava_onevision,
)

SPECS = [LLAVA, LLAVA_NEXT, LLAVA_ONEVISION]
