"""LFM2-VL (Liquid AI): SigLIP2 NaFlex vision tower, pixel-unshuffle projector, LFM2 text model
(short gated convolutions mixed with attention layers)."""

from __future__ import annotations

from .base import TinyFamily, ids, role_template, tiny_text

_IMAGE = ("<image>", "<|image_start|>", "<|image_end|>", "<|img_thumbnail|>",
          *[f"<|img_row_{r}_col_{c}|>" for r in range(1, 3) for c in range(1, 3)])


def build_lfm2_vl(tok, seed: int = 0):
    """One 32x32 image (no tiling) in 8x8 patches, downsampled 2x -> 4 ``<image>`` tokens."""
    import torch
    from transformers.models.lfm2_vl.image_processing_lfm2_vl import Lfm2VlImageProcessor

    config_cls, model_cls, processor_cls = LFM2_VL.classes()
    torch.manual_seed(seed)
    bos, eos, pad, image = ids(tok, "<|startoftext|>", "<|im_end|>", "<|pad|>", "<image>")
    text = tiny_text(tok, model_type="lfm2", layer_types=["conv", "full_attention"], bos_token_id=bos,
                     eos_token_id=eos, pad_token_id=pad)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "patch_size": 8, "num_patches": 16, "model_type": "siglip2_vision_model"}
    config = config_cls(vision_config=vision, text_config=text, image_token_id=image, projector_hidden_size=64,
                        downsample_factor=2, tie_word_embeddings=False)
    model = model_cls(config).eval()
    image_proc = Lfm2VlImageProcessor(do_image_splitting=False, encoder_patch_size=8, tile_size=32,
                                      min_image_tokens=4, max_image_tokens=4, size={"height": 32, "width": 32})
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, chat_template=LFM2_VL.template)
    return model, processor


LFM2_VL = TinyFamily(
    "lfm2-vl",
    role_template("{{ bos_token }}", {role: (f"<|im_start|>{role}\n", "<|im_end|>\n")
                                      for role in ("system", "user", "assistant")},
                  "<|im_start|>assistant\n", "<image>"),
    ("<|startoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>", *_IMAGE),
    {"bos_token": "<|startoftext|>", "eos_token": "<|im_end|>", "pad_token": "<|pad|>", "unk_token": None,
     "image_token": "<image>"},
    build_lfm2_vl,
)

SPECS = [LFM2_VL]
