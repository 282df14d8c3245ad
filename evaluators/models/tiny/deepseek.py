"""DeepSeek-VL (the HF-native deepseek_vl: SigLIP + MLP aligner + Llama-architecture LLM)."""

from __future__ import annotations

from .base import TINY_VISION, TinyFamily, ids, role_template, tiny_text


def build_deepseek_vl(tok, seed: int = 0):
    """32x32 image in 8x8 patches -> 16 ``<image_placeholder>`` tokens (no pooling)."""
    import torch
    from transformers.models.deepseek_vl.image_processing_pil_deepseek_vl import DeepseekVLImageProcessorPil

    config_cls, model_cls, processor_cls = DEEPSEEK_VL.classes()
    torch.manual_seed(seed)
    bos, eos, pad, image = ids(tok, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<pad>", "<image_placeholder>")
    text = tiny_text(tok, model_type="llama", bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    config = config_cls(vision_config={**TINY_VISION, "model_type": "siglip_vision_model"}, text_config=text,
                        image_token_id=image, tie_word_embeddings=False)
    model = model_cls(config).eval()
    image_proc = DeepseekVLImageProcessorPil(size={"height": 32, "width": 32})
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, num_image_tokens=16,
                              chat_template=DEEPSEEK_VL.template)
    return model, processor


DEEPSEEK_VL = TinyFamily(
    "deepseek-vl",
    role_template("{{ bos_token }}", {"system": ("", "\n\n"), "user": ("User: ", "\n\n"),
                                      "assistant": ("Assistant: ", "<｜end▁of▁sentence｜>")},
                  "Assistant:", "<image_placeholder>"),
    ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<unk>", "<pad>", "<image_placeholder>"),
    {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>", "unk_token": "<unk>",
     "pad_token": "<pad>", "image_token": "<image_placeholder>"},
    build_deepseek_vl,
)

SPECS = [DEEPSEEK_VL]
