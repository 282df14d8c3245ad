"""Phi-4-multimodal: one Phi-3-style causal LM whose embedding layer also embeds images (SigLIP
crops, 2x2 average pooled) and audio; vision/speech LoRA adapters load separately (not built here)."""

from __future__ import annotations

from .base import TinyFamily, ids, role_template

_IMG = "<|endoftext10|>"  # Phi-4-multimodal's image placeholder (its tokenizer's image_token)
_AUDIO = "<|endoftext11|>"


def build_phi4_multimodal(tok, seed: int = 0):
    """The image processor hard-codes the real geometry (448-pixel crops of 14-pixel patches, pooled
    2x2 -> 256 tokens per crop plus 16 separators), so the tiny ViT keeps it: one crop plus the
    global view, ~530 image tokens, on a 32-wide, 2-layer tower."""
    import torch
    from transformers.models.phi4_multimodal.feature_extraction_phi4_multimodal import (
        Phi4MultimodalFeatureExtractor,
    )
    from transformers.models.phi4_multimodal.image_processing_phi4_multimodal import Phi4MultimodalImageProcessor

    config_cls, model_cls, processor_cls = PHI4_MULTIMODAL.classes()
    torch.manual_seed(seed)
    bos, eos, pad, img, audio = ids(tok, "<|endoftext|>", "<|end|>", "<|endoftext|>", _IMG, _AUDIO)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 448, "patch_size": 14, "crop_size": 448, "image_token_id": img}
    audio_cfg = {"hidden_size": 32, "intermediate_size": 64, "num_blocks": 1, "num_attention_heads": 2,
                 "ext_pw_out_channel": 32, "depthwise_separable_out_channel": 32, "nemo_conv_channels": 32,
                 "audio_token_id": audio}
    config = config_cls(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                        original_max_position_embeddings=2048, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad,
                        vision_config=vision, audio_config=audio_cfg)
    model = model_cls(config).eval()
    image_proc = Phi4MultimodalImageProcessor(dynamic_hd=1)
    processor = processor_cls(image_processor=image_proc, audio_processor=Phi4MultimodalFeatureExtractor(),
                              tokenizer=tok, chat_template=PHI4_MULTIMODAL.template)
    return model, processor


PHI4_MULTIMODAL = TinyFamily(
    "phi4-multimodal",
    role_template("", {role: (f"<|{role}|>", "<|end|>") for role in ("system", "user", "assistant")},
                  "<|assistant|>", _IMG),
    ("<|endoftext|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", _IMG, _AUDIO),
    {"bos_token": "<|endoftext|>", "eos_token": "<|end|>", "pad_token": "<|endoftext|>", "unk_token": None,
     "image_token": _IMG, "audio_token": _AUDIO},
    # the LM without its LoRA adapters is Phi-4-mini; the image/audio embedders inside its embedding
    # layer stay behind, as the family facts say (backbone.py)
    build_phi4_multimodal,
)

SPECS = [PHI4_MULTIMODAL]
