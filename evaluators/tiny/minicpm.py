"""MiniCPM-V 4.6: SigLIP-style ViT with a window merger inside, a downsampling merger, and a Qwen3.5
text model (gated delta-net linear attention mixed with full attention)."""

from __future__ import annotations

from .base import CHATML_ROLES, CHATML_SPECIALS, TinyFamily, chatml, ids, tiny_text

_MM = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>", "image_start_token": "<image>",
       "image_end_token": "</image>", "slice_start_token": "<slice>", "slice_end_token": "</slice>",
       "image_id_start_token": "<image_id>", "image_id_end_token": "</image_id>"}


def build_minicpmv4_6(tok, seed: int = 0):
    """One 112x112 image (no slicing) in 14-pixel patches -> 8x8, merged 16x -> 4 image tokens."""
    import torch
    from transformers import MiniCPMV4_6Config, MiniCPMV4_6ForConditionalGeneration, MiniCPMV4_6Processor
    from transformers.models.minicpmv4_6.image_processing_pil_minicpmv4_6 import MiniCPMV4_6ImageProcessorPil
    from transformers.models.minicpmv4_6.video_processing_minicpmv4_6 import MiniCPMV4_6VideoProcessor

    torch.manual_seed(seed)
    eos, pad, image, video = ids(tok, "<|im_end|>", "<pad>", _MM["image_token"], _MM["video_token"])
    text = tiny_text(tok, model_type="qwen3_5_text", head_dim=16, layer_types=["linear_attention", "full_attention"],
                     linear_key_head_dim=16, linear_value_head_dim=16, linear_num_key_heads=2,
                     linear_num_value_heads=4, bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 112, "patch_size": 14, "insert_layer_id": 0}
    config = MiniCPMV4_6Config(text_config=text, vision_config=vision, image_size=112, insert_layer_id=0,
                               image_token_id=image, video_token_id=video)
    model = MiniCPMV4_6ForConditionalGeneration(config).eval()
    pixels = {"scale_resolution": 112, "patch_size": 14, "slice_mode": False}
    processor = MiniCPMV4_6Processor(image_processor=MiniCPMV4_6ImageProcessorPil(**pixels),
                                     video_processor=MiniCPMV4_6VideoProcessor(), tokenizer=tok,
                                     chat_template=MINICPMV4_6.template)
    return model, processor


MINICPMV4_6 = TinyFamily(
    "minicpm-v4.6", chatml(_MM["image_token"] + "\n"), (*CHATML_SPECIALS, *_MM.values()), {**CHATML_ROLES, **_MM},
    build_minicpmv4_6, "Qwen3_5ForCausalLM", needs=("torchvision",),
)

SPECS = [MINICPMV4_6]
