"""Ovis2: a ViT whose patches become soft "visual words" (a probability over a visual vocabulary),
embedded through a visual embedding table, with a Qwen2 text model."""

from __future__ import annotations

from .base import CHATML_ROLES, CHATML_SPECIALS, TinyFamily, chatml, ids, tiny_text

# the processor expands <image> into <IMG_START> <IMG_ATOM>*N <IMG_GRID> [tiles] <IMG_END>; the five
# structure tokens are the model's visual indicators
_INDICATORS = ("<IMG_START>", "<IMG_GRID>", "<IMG_COL>", "<IMG_ROW>", "<IMG_END>")


def build_ovis2(tok, seed: int = 0):
    """32x32 image in 8x8 patches, hidden stride 2 -> 4 ``<IMG_ATOM>`` tokens; a visual vocabulary of 64."""
    import torch
    from transformers.models.ovis2.image_processing_pil_ovis2 import Ovis2ImageProcessorPil

    config_cls, model_cls, processor_cls = OVIS2.classes()
    torch.manual_seed(seed)
    eos, pad, atom = ids(tok, "<|im_end|>", "<pad>", "<IMG_ATOM>")
    text = tiny_text(tok, model_type="qwen2", bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8, "hidden_stride": 2, "vocab_size": 64,
              "num_visual_indicator_tokens": len(_INDICATORS)}
    config = config_cls(vision_config=vision, text_config=text, image_token_id=atom,
                        visual_indicator_token_ids=ids(tok, *_INDICATORS), vocab_size=len(tok), hidden_size=64,
                        tie_word_embeddings=False)
    model = model_cls(config).eval()
    image_proc = Ovis2ImageProcessorPil(size={"height": 32, "width": 32}, crop_to_patches=False)
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, image_seq_length=4,
                              chat_template=OVIS2.template)
    return model, processor


OVIS2 = TinyFamily(
    "ovis2", chatml("<image>\n"), (*CHATML_SPECIALS, "<image>", "<IMG_ATOM>", *_INDICATORS), CHATML_ROLES,
    build_ovis2,
)

SPECS = [OVIS2]
