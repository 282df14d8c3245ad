"""Cohere VLMs: Aya Vision and Command A Vision (cohere2_vision): SigLIP + pixel-shuffle adapter +
Cohere2 text model, GOT-OCR2-style tiling."""

from __future__ import annotations

import dataclasses

from .base import TINY_VISION, TinyFamily, ids, role_template, tiny_text

_TURN = "<|START_OF_TURN_TOKEN|>"
_END = "<|END_OF_TURN_TOKEN|>"


def build_aya_vision(tok, seed: int = 0):
    """32x32 tiles in 8x8 patches, pixel-shuffled by 2 -> 4 ``<|IMG_PATCH|>`` tokens per tile,
    between ``<|START_OF_IMG|>`` and ``<|END_OF_IMG|>`` (tiles plus a global view)."""
    import torch
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    config_cls, model_cls, processor_cls = AYA_VISION.classes()
    torch.manual_seed(seed)
    bos, eos, pad, patch = ids(tok, "<BOS_TOKEN>", _END, "<PAD>", "<|IMG_PATCH|>")
    text = tiny_text(tok, model_type="cohere2", sliding_window=512, bos_token_id=bos, eos_token_id=eos,
                     pad_token_id=pad)
    config = config_cls(vision_config={**TINY_VISION, "model_type": "siglip_vision_model"}, text_config=text,
                        downsample_factor=2, image_token_index=patch, tie_word_embeddings=False)
    model = model_cls(config).eval()
    image_proc = GotOcr2ImageProcessorPil(size={"height": 32, "width": 32}, max_patches=4)
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, patch_size=8, img_size=32,
                              downsample_factor=2, chat_template=AYA_VISION.template)
    return model, processor


def _cohere_template(img: str) -> str:
    return role_template("{{ bos_token }}", {role: (_TURN + token, _END) for role, token in (
        ("system", "<|SYSTEM_TOKEN|>"), ("user", "<|USER_TOKEN|>"), ("assistant", "<|CHATBOT_TOKEN|>"))},
        _TURN + "<|CHATBOT_TOKEN|>", img)


AYA_VISION = TinyFamily(
    "aya-vision",
    _cohere_template("<image>"),
    ("<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", "<UNK>", "<PAD>", _TURN, "<|SYSTEM_TOKEN|>", "<|USER_TOKEN|>",
     "<|CHATBOT_TOKEN|>", "<image>", "<|START_OF_IMG|>", "<|END_OF_IMG|>", "<|IMG_PATCH|>", "<|IMG_LINE_BREAK|>",
     "TILE", "TILE_GLOBAL"),
    {"bos_token": "<BOS_TOKEN>", "eos_token": _END, "unk_token": "<UNK>", "pad_token": "<PAD>"},
    build_aya_vision,
)


def build_cohere2_vision(tok, seed: int = 0):
    """Command A Vision: 32x32 tiles in 8x8 patches, pixel-shuffled by 2 -> 2x2 ``<|IMG_PATCH|>`` tokens
    and a line break per tile (the image processor's ``patch_size`` is that token grid's side)."""
    import torch
    from transformers.models.cohere2_vision.image_processing_cohere2_vision import Cohere2VisionImageProcessor

    config_cls, model_cls, processor_cls = COHERE2_VISION.classes()
    torch.manual_seed(seed)
    bos, eos, pad, patch = ids(tok, "<BOS_TOKEN>", _END, "<PAD>", "<|IMG_PATCH|>")
    text = tiny_text(tok, model_type="cohere2", sliding_window=512, bos_token_id=bos, eos_token_id=eos,
                     pad_token_id=pad)
    config = config_cls(vision_config={**TINY_VISION, "model_type": "siglip_vision_model"}, text_config=text,
                        downsample_factor=2, image_token_id=patch, alignment_intermediate_size=64,
                        tie_word_embeddings=False)
    model = model_cls(config).eval()
    image_proc = Cohere2VisionImageProcessor(size={"height": 32, "width": 32}, patch_size=2, max_patches=4)
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, chat_template=COHERE2_VISION.template)
    return model, processor


COHERE2_VISION = dataclasses.replace(
    # the processor expands one <|IMG_PATCH|> into <|START_OF_IMG|> tiles <|END_OF_IMG|>
    AYA_VISION, name="cohere2-vision", build=build_cohere2_vision, template=_cohere_template("<|IMG_PATCH|>"),
    roles={**AYA_VISION.roles, "boi_token": "<|START_OF_IMG|>", "eoi_token": "<|END_OF_IMG|>",
           "image_token": "<|IMG_PATCH|>", "img_line_break_token": "<|IMG_LINE_BREAK|>"})

SPECS = [AYA_VISION, COHERE2_VISION]
