"""InternVL (the HF-native ``-hf`` checkpoints of InternVL3 / 3.5): InternViT + pixel shuffle + Qwen2."""

from __future__ import annotations

from .base import CHATML_ROLES, CHATML_SPECIALS, TinyFamily, chatml, ids, tiny_text


def build_internvl(tok, seed: int = 0):
    """32x32 image in 8x8 patches -> 16 features, pixel-shuffled by 0.5 -> 4 ``<IMG_CONTEXT>`` tokens
    between ``<img>`` and ``</img>``; one tile (no cropping to patches)."""
    import torch
    from transformers.models.got_ocr2.image_processing_got_ocr2 import GotOcr2ImageProcessor
    from transformers.models.internvl.video_processing_internvl import InternVLVideoProcessor

    config_cls, model_cls, processor_cls = INTERNVL.classes()
    torch.manual_seed(seed)
    eos, pad, ctx = ids(tok, "<|im_end|>", "<pad>", "<IMG_CONTEXT>")
    text = tiny_text(tok, model_type="qwen2", bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": [32, 32], "patch_size": [8, 8]}
    config = config_cls(vision_config=vision, text_config=text, image_token_id=ctx, image_seq_length=4,
                        downsample_ratio=0.5, tie_word_embeddings=False)
    model = model_cls(config).eval()
    size = {"height": 32, "width": 32}
    processor = processor_cls(image_processor=GotOcr2ImageProcessor(size=size, crop_to_patches=False),
                              tokenizer=tok, video_processor=InternVLVideoProcessor(size=size),
                              image_seq_length=4, chat_template=INTERNVL.template)
    return model, processor


INTERNVL = TinyFamily(
    # the processor expands <IMG_CONTEXT> into <img><IMG_CONTEXT>*image_seq_length</img>
    "internvl", chatml("<IMG_CONTEXT>\n"), (*CHATML_SPECIALS, "<img>", "</img>", "<IMG_CONTEXT>", "<video>"),
    {**CHATML_ROLES, "start_image_token": "<img>", "end_image_token": "</img>",
     "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"},
    build_internvl,
)

SPECS = [INTERNVL]
