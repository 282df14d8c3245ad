"""Qwen-VL families: M-RoPE text models with a dynamic-resolution ViT (processors need torchvision)."""

from __future__ import annotations

from .base import CHATML_ROLES, CHATML_SPECIALS, TinyFamily, chatml, ids, tiny_text

_QWEN_IMG = "<|vision_start|><|image_pad|><|vision_end|>"
_QWEN_SPECIALS = (*CHATML_SPECIALS, "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
# one 56x56 image -> 4x4 patches of 14 -> 4 tokens after 2x2 merging
_PIXELS = {"min_pixels": 56 * 56, "max_pixels": 56 * 56, "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2}


def _vision_ids(tok) -> dict:
    image_pad, video_pad, vstart, vend = ids(tok, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                             "<|vision_end|>")
    return {"image_token_id": image_pad, "video_token_id": video_pad, "vision_start_token_id": vstart,
            "vision_end_token_id": vend}


def _text(tok, **extra) -> dict:
    eos, pad = ids(tok, "<|im_end|>", "<pad>")
    return tiny_text(tok, bos_token_id=eos, eos_token_id=eos, pad_token_id=pad,
                     rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                     **extra)


def _processor(tok, spec: TinyFamily):
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    return spec.classes()[2](image_processor=Qwen2VLImageProcessor(**_PIXELS), tokenizer=tok,
                             video_processor=Qwen2VLVideoProcessor(**_PIXELS), chat_template=spec.template)


def _model(spec: TinyFamily, tok, text: dict, vision: dict):
    config_cls, model_cls, _ = spec.classes()
    return model_cls(config_cls(text_config=text, vision_config=vision, **_vision_ids(tok))).eval()


def build_qwen2_vl(tok, seed: int = 0):
    """Qwen2-VL architecture (M-RoPE, dynamic resolution)."""
    import torch

    torch.manual_seed(seed)
    vision = {"depth": 2, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "patch_size": 14,
              "spatial_merge_size": 2, "temporal_patch_size": 2}
    return _model(QWEN2_VL, tok, _text(tok), vision), _processor(tok, QWEN2_VL)


def build_qwen2_5_vl(tok, seed: int = 0):
    """Qwen2.5-VL architecture: windowed-attention ViT with RMSNorm + SwiGLU, M-RoPE text model."""
    import torch

    torch.manual_seed(seed)
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
              "fullatt_block_indexes": [1]}
    return _model(QWEN2_5_VL, tok, _text(tok), vision), _processor(tok, QWEN2_5_VL)


def build_qwen3_vl(tok, seed: int = 0):
    """Qwen3-VL architecture: 16-pixel patches, DeepStack (ViT features added to early text layers),
    interleaved M-RoPE, Qwen3 text model (q/k norm)."""
    import torch

    torch.manual_seed(seed)
    text = _text(tok, head_dim=16)
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_interleaved": True}
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 16,
              "deepstack_visual_indexes": [0]}
    return _model(QWEN3_VL, tok, text, vision), _qwen3_processor(tok, QWEN3_VL)


def _qwen3_processor(tok, spec: TinyFamily):
    """One 64x64 image -> 4x4 patches of 16 -> 4 tokens after 2x2 merging."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    pixels = {"patch_size": 16, "merge_size": 2, "temporal_patch_size": 2}
    image_proc = Qwen2VLImageProcessor(min_pixels=64 * 64, max_pixels=64 * 64, **pixels)
    video_proc = Qwen3VLVideoProcessor(size={"shortest_edge": 64 * 64, "longest_edge": 64 * 64 * 4}, **pixels)
    return spec.classes()[2](image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                             chat_template=spec.template)


def build_qwen3_vl_moe(tok, seed: int = 0):
    """Qwen3-VL-30B-A3B / 235B-A22B: Qwen3-VL with a mixture-of-experts text model (4 experts, top 2)."""
    import torch

    torch.manual_seed(seed)
    text = _text(tok, head_dim=16, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32)
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_interleaved": True}
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 16,
              "deepstack_visual_indexes": [0]}
    return _model(QWEN3_VL_MOE, tok, text, vision), _qwen3_processor(tok, QWEN3_VL_MOE)


def build_qwen3_5(tok, seed: int = 0):
    """Qwen3.5 (natively multimodal): Qwen3-VL's vision side and processor, and a hybrid text model
    (gated delta-net linear attention layers between full-attention ones)."""
    import torch

    torch.manual_seed(seed)
    text = _text(tok, head_dim=16, layer_types=["linear_attention", "full_attention"], linear_key_head_dim=16,
                 linear_value_head_dim=16, linear_num_key_heads=2, linear_num_value_heads=4)
    text["rope_parameters"] = {**text["rope_parameters"], "mrope_interleaved": True}
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 16}
    return _model(QWEN3_5, tok, text, vision), _qwen3_processor(tok, QWEN3_5)


def _qwen(name: str, build) -> TinyFamily:
    # the backbone (M-RoPE saved as 1-D RoPE; Qwen3-VL-MoE's norm_topk_prob) follows the family facts
    return TinyFamily(name, chatml(_QWEN_IMG), _QWEN_SPECIALS, CHATML_ROLES, build)


QWEN2_VL = _qwen("qwen2-vl", build_qwen2_vl)
QWEN2_5_VL = _qwen("qwen2.5-vl", build_qwen2_5_vl)
QWEN3_VL = _qwen("qwen3-vl", build_qwen3_vl)
QWEN3_VL_MOE = _qwen("qwen3-vl-moe", build_qwen3_vl_moe)
QWEN3_5 = _qwen("qwen3.5", build_qwen3_5)

SPECS = [QWEN2_VL, QWEN2_5_VL, QWEN3_VL, QWEN3_VL_MOE, QWEN3_5]
