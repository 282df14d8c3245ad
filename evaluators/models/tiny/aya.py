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
    from transformers import AyaVisionConfig, AyaVisionForConditionalGeneration, AyaVisionProcessor
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    torch.manual_seed(seed)
    bos, eos, pad, patch = ids(tok, "<BOS_TOKEN>", _END, "<PAD>", "<|IMG_PATCH|>")
    text = tiny_text(tok, model_type="cohere2", sliding_window=512, bos_token_id=bos, eos_token_id=eos,
                     pad_token_id=pad)
    config = AyaVisionConfig(vision_config={**TINY_VISION, "model_type": "siglip_vision_model"}, text_config=text,
                             downsample_factor=2, image_token_index=patch, tie_word_embeddings=False)
    model = AyaVisionForConditionalGeneration(config).eval()
    image_proc = GotOcr2ImageProcessorPil(size={"height": 32, "width": 32}, max_patches=4)
    processor = AyaVisionProcessor(image_processor=image_proc, tokenizer=tok, patch_size=8, img_size=32,
                                   downsample_factor=2, chat_template=AYA_VISION.template)
    return model, processor


def _cohere_template(img: str) -> str:
    return role_template("{{ bos_token }}", {role: (_TURN + token, _END) for role, token in (
        ("system", "<|SYSTEM_TOKEN|>"), ("user", "<|USER_TOKEN|>"), ("assistant", "<|CHATBOT_TOKEN|>"))},
        _TURN + "<|CHATBOT_TOKEN|>", img)


def _unscaled_logits(vlm, state: dict, text: dict) -> tuple[dict, dict]:
    """AyaVision's head applies no logit scale; Cohere2ForCausalLM multiplies by ``logit_scale``
    (0.0625 by default). 1.0 keeps the backbone's logits equal to the VLM's."""
    return {**text, "logit_scale": 1.0}, state


AYA_VISION = TinyFamily(
    "aya-vision",
    _cohere_template("<image>"),
    ("<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", "<UNK>", "<PAD>", _TURN, "<|SYSTEM_TOKEN|>", "<|USER_TOKEN|>",
     "<|CHATBOT_TOKEN|>", "<image>", "<|START_OF_IMG|>", "<|END_OF_IMG|>", "<|IMG_PATCH|>", "<|IMG_LINE_BREAK|>",
     "TILE", "TILE_GLOBAL"),
    {"bos_token": "<BOS_TOKEN>", "eos_token": _END, "unk_token": "<UNK>", "pad_token": "<PAD>"},
    build_aya_vision, "Cohere2ForCausalLM", adapt_backbone=_unscaled_logits,
)



def build_cohere2_vision(tok, seed: int = 0):
    """Command A Vision: 32x32 tiles in 8x8 patches, pixel-shuffled by 2 -> 2x2 ``<|IMG_PATCH|>`` tokens
    and a line break per tile (the image processor's ``patch_size`` is that token grid's side)."""
    import torch
    from transformers import Cohere2VisionConfig, Cohere2VisionForConditionalGeneration, Cohere2VisionProcessor
    from transformers.models.cohere2_vision.image_processing_cohere2_vision import Cohere2VisionImageProcessor

    torch.manual_seed(seed)
    bos, eos, pad, patch = ids(tok, "<BOS_TOKEN>", _END, "<PAD>", "<|IMG_PATCH|>")
    text = tiny_text(tok, model_type="cohere2", sliding_window=512, bos_token_id=bos, eos_token_id=eos,
                     pad_token_id=pad)
    config = Cohere2VisionConfig(vision_config={**TINY_VISION, "model_type": "siglip_vision_model"},
                                 text_config=text, downsample_factor=2, image_token_id=patch,
                                 alignment_intermediate_size=64, tie_word_embeddings=False)
    model = Cohere2VisionForConditionalGeneration(config).eval()
    image_proc = Cohere2VisionImageProcessor(size={"height": 32, "width": 32}, patch_size=2, max_patches=4)
    processor = Cohere2VisionProcessor(image_processor=image_proc, tokenizer=tok,
                                       chat_template=COHERE2_VISION.template)
    return model, processor


COHERE2_VISION = dataclasses.replace(
    # the processor expands one <|IMG_PATCH|> into <|START_OF_IMG|> tiles <|END_OF_IMG|>
    AYA_VISION, name="cohere2-vision", build=build_cohere2_vision, template=_cohere_template("<|IMG_PATCH|>"),
    roles={**AYA_VISION.roles, "boi_token": "<|START_OF_IMG|>", "eoi_token": "<|END_OF_IMG|>",
           "image_token": "<|IMG_PATCH|>", "img_line_break_token": "<|IMG_LINE_BREAK|>"})

SPECS = [AYA_VISION, COHERE2_VISION]
