"""MiniCPM-V 4.6 / 4.7: SigLIP-style ViT with a window merger inside, a downsampling merger, and a Qwen3.5
text model (gated delta-net linear attention mixed with full attention)."""

from __future__ import annotations

from .base import CHATML_ROLES, CHATML_SPECIALS, TinyFamily, chatml, ids, tiny_text

_MM = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>", "image_start_token": "<image>",
       "image_end_token": "</image>", "slice_start_token": "<slice>", "slice_end_token": "</slice>",
       "image_id_start_token": "<image_id>", "image_id_end_token": "</image_id>"}


def _text(tok) -> dict:
    eos, pad = ids(tok, "<|im_end|>", "<pad>")
    return tiny_text(tok, model_type="qwen3_5_text", head_dim=16, layer_types=["linear_attention", "full_attention"],
                     linear_key_head_dim=16, linear_value_head_dim=16, linear_num_key_heads=2,
                     linear_num_value_heads=4, bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)


def _build(tok, seed: int, spec: TinyFamily, image_proc_cls=None, video_proc_cls=None, **extra):
    """One 112x112 image (no slicing) in 14-pixel patches -> 8x8, merged 16x (4x for OCR) -> 4 (16)
    image tokens. MiniCPM-V 4.7 has no processors of its own: it uses 4.6's."""
    import torch
    from transformers.models.minicpmv4_6.image_processing_pil_minicpmv4_6 import MiniCPMV4_6ImageProcessorPil
    from transformers.models.minicpmv4_6.video_processing_minicpmv4_6 import MiniCPMV4_6VideoProcessor

    config_cls, model_cls, processor_cls = spec.classes()
    torch.manual_seed(seed)
    image_proc_cls = image_proc_cls or MiniCPMV4_6ImageProcessorPil
    video_proc_cls = video_proc_cls or MiniCPMV4_6VideoProcessor
    image, video = ids(tok, _MM["image_token"], _MM["video_token"])
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 112, "patch_size": 14, "insert_layer_id": 0}
    config = config_cls(text_config=_text(tok), vision_config=vision, insert_layer_id=0, image_token_id=image,
                        video_token_id=video, **extra)
    model = model_cls(config).eval()
    pixels = {"scale_resolution": 112, "patch_size": 14, "slice_mode": False}
    processor = processor_cls(image_processor=image_proc_cls(**pixels), video_processor=video_proc_cls(), tokenizer=tok,
                              chat_template=spec.template)
    return model, processor


def build_minicpmv4_6(tok, seed: int = 0):
    return _build(tok, seed, MINICPMV4_6, image_size=112)


def build_minicpmv4_7(tok, seed: int = 0):
    """MiniCPM-V 4.7: the 4.6 design; the model also knows the image/slice boundary token ids."""
    start, end, sstart, send = ids(tok, _MM["image_start_token"], _MM["image_end_token"], _MM["slice_start_token"],
                                   _MM["slice_end_token"])
    return _build(tok, seed, MINICPMV4_7, image_size=112, image_start_id=start, image_end_id=end,
                  slice_start_id=sstart, slice_end_id=send)


def build_minicpm_ocr(tok, seed: int = 0):
    """MiniCPM-OCR: the same design with its own processors and 4x (not 16x) visual-token merging."""
    from transformers.models.minicpm_ocr.image_processing_minicpm_ocr import MiniCPMOcrImageProcessor
    from transformers.models.minicpm_ocr.video_processing_minicpm_ocr import MiniCPMOcrVideoProcessor

    return _build(tok, seed, MINICPM_OCR, image_proc_cls=MiniCPMOcrImageProcessor,
                  video_proc_cls=MiniCPMOcrVideoProcessor)


def _minicpm(name: str, build) -> TinyFamily:
    return TinyFamily(name, chatml(_MM["image_token"] + "\n"), (*CHATML_SPECIALS, *_MM.values()),
                      {**CHATML_ROLES, **_MM}, build)


MINICPMV4_6 = _minicpm("minicpm-v4.6", build_minicpmv4_6)
MINICPMV4_7 = _minicpm("minicpm-v4.7", build_minicpmv4_7)
MINICPM_OCR = _minicpm("minicpm-ocr", build_minicpm_ocr)

SPECS = [MINICPMV4_6, MINICPMV4_7, MINICPM_OCR]
