"""Molmo2 (AI2): overlapping-crop ViT, attention pooling adapter, Qwen3-style text model whose
embedding carries 128 extra rows for the image tokens."""

from __future__ import annotations

from .base import CHATML_ROLES, CHATML_SPECIALS, TinyFamily, chatml, ids, tiny_text

_IMAGE_TOKENS = ("<im_patch>", "<im_col>", "<im_start>", "<low_res_im_start>", "<frame_start>", "<im_end>",
                 "<frame_end>", "<im_low>", "<|image|>", "<|video|>")


def build_molmo2(tok, seed: int = 0):
    """56x56 crops of 14-pixel patches (4x4), pooled 2x2 -> 2x2 ``<im_patch>`` tokens per row/col
    view; at most 2 crops plus the low-resolution view."""
    import torch
    from transformers.models.molmo2.image_processing_molmo2 import Molmo2ImageProcessor
    from transformers.models.molmo2.video_processing_molmo2 import Molmo2VideoProcessor

    config_cls, model_cls, processor_cls = MOLMO2.classes()
    torch.manual_seed(seed)
    eos, pad = ids(tok, "<|im_end|>", "<pad>")
    start, low_start, end, patch, fstart, fend = ids(tok, "<im_start>", "<low_res_im_start>", "<im_end>",
                                                     "<im_patch>", "<frame_start>", "<frame_end>")
    text = tiny_text(tok, head_dim=16, bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "num_key_value_heads": 2, "head_dim": 16, "image_size": [56, 56], "patch_size": 14,
              "num_position_embeddings": 16}
    adapter = {"vision_feature_layer": [-1], "hidden_size": 32, "num_attention_heads": 2, "num_key_value_heads": 2,
               "head_dim": 16, "intermediate_size": 64, "text_hidden_size": 64}
    config = config_cls(vision_config=vision, adapter_config=adapter, text_config=text, image_start_token_id=start,
                        low_res_image_start_token_id=low_start, image_end_token_id=end, image_patch_id=patch,
                        frame_start_token_id=fstart, frame_end_token_id=fend)
    model = model_cls(config).eval()
    image_proc = Molmo2ImageProcessor(size={"height": 56, "width": 56}, max_crops=2, overlap_margins=[1, 1],
                                      patch_size=14, pooling_size=[2, 2])
    video_proc = Molmo2VideoProcessor(size={"height": 56, "width": 56}, patch_size=14, pooling_size=[2, 2])
    processor = processor_cls(image_processor=image_proc, video_processor=video_proc, tokenizer=tok,
                              chat_template=MOLMO2.template)
    return model, processor


MOLMO2 = TinyFamily(
    "molmo2", chatml("<|image|>"), (*CHATML_SPECIALS, *_IMAGE_TOKENS),
    {**CHATML_ROLES, "image_token": "<|image|>", "video_token": "<|video|>"},
    # the backbone leaves the 128 image-token embedding rows behind, as the family facts say (backbone.py)
    build_molmo2,
)

SPECS = [MOLMO2]
