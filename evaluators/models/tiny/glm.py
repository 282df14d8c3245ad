"""GLM-4.1V (glm4v) and GLM-4.5V (glm4v_moe): a Qwen2-VL-style dynamic-resolution ViT and a GLM-4
text model (dense, or mixture-of-experts) with 3-D RoPE."""

from __future__ import annotations

import dataclasses

from .base import TinyFamily, ids, template, tiny_text

_SPECIALS = ("[gMASK]", "<sop>", "<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>", "<|begin_of_image|>",
             "<|end_of_image|>", "<|image|>", "<|begin_of_video|>", "<|end_of_video|>", "<|video|>", "<pad>")


def _build(tok, seed: int, spec: TinyFamily, **text_extra):
    """One 56x56 image -> 4x4 patches of 14 -> 4 ``<|image|>`` tokens after 2x2 merging."""
    import torch
    from transformers.models.glm4v.image_processing_glm4v import Glm4vImageProcessor
    from transformers.models.glm4v.video_processing_glm4v import Glm4vVideoProcessor

    config_cls, model_cls, processor_cls = spec.classes()
    torch.manual_seed(seed)
    eos, user, pad = ids(tok, "<|endoftext|>", "<|user|>", "<pad>")
    # half the head is rotated (partial rotary), so the 3-D sections sum to a quarter of head_dim
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2], "partial_rotary_factor": 0.5}
    text = tiny_text(tok, num_key_value_heads=2, head_dim=16, bos_token_id=eos, eos_token_id=[eos, user],
                     pad_token_id=pad, rope_parameters=rope, **text_extra)
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "image_size": 56, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
    img, vid, istart, iend, vstart, vend = ids(tok, "<|image|>", "<|video|>", "<|begin_of_image|>",
                                               "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>")
    config = config_cls(text_config=text, vision_config=vision, image_token_id=img, video_token_id=vid,
                        image_start_token_id=istart, image_end_token_id=iend, video_start_token_id=vstart,
                        video_end_token_id=vend)
    model = model_cls(config).eval()
    pixels = {"patch_size": 14, "merge_size": 2, "temporal_patch_size": 2}
    size = {"shortest_edge": 56 * 56, "longest_edge": 56 * 56}
    processor = processor_cls(image_processor=Glm4vImageProcessor(size=size, **pixels), tokenizer=tok,
                              video_processor=Glm4vVideoProcessor(**pixels), chat_template=spec.template)
    return model, processor


def build_glm4v(tok, seed: int = 0):
    return _build(tok, seed, GLM4V)


def build_glm4v_moe(tok, seed: int = 0):
    """GLM-4.5V: layer 0 dense, layer 1 a mixture of 4 routed experts (top 2) plus a shared one."""
    return _build(tok, seed, GLM4V_MOE, n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                  first_k_dense_replace=1)


GLM4V = TinyFamily(
    "glm4v",
    template("[gMASK]<sop>", ("<|", "|>\n"), "", "<|assistant|>\n", "<|begin_of_image|><|image|><|end_of_image|>"),
    _SPECIALS,
    {"eos_token": "<|endoftext|>", "pad_token": "<pad>", "unk_token": None, "image_token": "<|image|>",
     "video_token": "<|video|>"},
    build_glm4v,
)
GLM4V_MOE = dataclasses.replace(GLM4V, name="glm4v-moe", build=build_glm4v_moe)

SPECS = [GLM4V, GLM4V_MOE]
