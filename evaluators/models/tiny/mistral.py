"""Mistral-family VLMs: Mistral-Small-3.1 (mistral3: Pixtral ViT, patch merger, Mistral text model)."""

from __future__ import annotations

from .base import TinyFamily, ids, role_template, tiny_text


def build_mistral3(tok, seed: int = 0):
    """A 32x32 image in 8x8 patches -> 4x4 features, merged 2x2 -> 2x2 ``[IMG]`` tokens, one
    ``[IMG_BREAK]`` after each row but the last, which ends in ``[IMG_END]``."""
    import torch
    from transformers.models.pixtral.image_processing_pil_pixtral import PixtralImageProcessorPil

    config_cls, model_cls, processor_cls = MISTRAL3.classes()
    torch.manual_seed(seed)
    bos, eos, pad, img = ids(tok, "<s>", "</s>", "<pad>", "[IMG]")
    text = tiny_text(tok, model_type="mistral", head_dim=16, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8, "head_dim": 16}
    config = config_cls(vision_config=vision, text_config=text, image_token_index=img, spatial_merge_size=2,
                        tie_word_embeddings=False)
    model = model_cls(config).eval()
    image_proc = PixtralImageProcessorPil(size={"longest_edge": 32}, patch_size={"height": 8, "width": 8})
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, patch_size=8, spatial_merge_size=2,
                              chat_template=MISTRAL3.template)
    return model, processor


MISTRAL3 = TinyFamily(
    "mistral3",
    role_template("{{ bos_token }}", {"system": ("[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"), "user": ("[INST]", "[/INST]"),
                                      "assistant": ("", "</s>")}, "", "[IMG]"),
    ("<s>", "</s>", "<unk>", "<pad>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[IMG]",
     "[IMG_BREAK]", "[IMG_END]"),
    {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
    build_mistral3,
)

SPECS = [MISTRAL3]
