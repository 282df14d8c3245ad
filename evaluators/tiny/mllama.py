"""Mllama (Llama-3.2-Vision): a tiled ViT whose features enter the Llama text model through gated
cross-attention layers; the image takes a single ``<|image|>`` token in the text."""

from __future__ import annotations

from .base import TinyFamily, ids, template, tiny_text

_CROSS = [1]  # text layer indices that are cross-attention layers (real 11B: every 5th of 40)


def build_mllama(tok, seed: int = 0):
    """32x32 tiles in 8x8 patches, up to 2 tiles; 3 text layers of which layer 1 cross-attends."""
    import torch
    from transformers import MllamaConfig, MllamaForConditionalGeneration, MllamaImageProcessor, MllamaProcessor

    torch.manual_seed(seed)
    bos, eos, pad, image = ids(tok, "<|begin_of_text|>", "<|eot_id|>", "<|finetune_right_pad_id|>", "<|image|>")
    text = tiny_text(tok, num_hidden_layers=3, cross_attention_layers=_CROSS, bos_token_id=bos, eos_token_id=eos,
                     pad_token_id=pad)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_global_layers": 1,
              "attention_heads": 2, "image_size": 32, "patch_size": 8, "max_num_tiles": 2,
              "intermediate_layers_indices": [0], "vision_output_dim": 64,
              "supported_aspect_ratios": [[1, 1], [1, 2], [2, 1]]}
    config = MllamaConfig(vision_config=vision, text_config=text, image_token_index=image)
    model = MllamaForConditionalGeneration(config).eval()
    image_proc = MllamaImageProcessor(size={"height": 32, "width": 32}, max_image_tiles=2)
    processor = MllamaProcessor(image_processor=image_proc, tokenizer=tok, chat_template=MLLAMA.template)
    return model, processor


def mllama_backbone(vlm, state: dict, text: dict) -> tuple[dict, dict]:
    """The Llama the model was built from: the cross-attention layers removed, the self-attention
    layers renumbered, and the 8 extra (image) embedding rows cut off."""
    cross = set(text["cross_attention_layers"])
    keep = [i for i in range(text["num_hidden_layers"]) if i not in cross]
    renumber = {f"model.layers.{old}.": f"model.layers.{new}." for new, old in enumerate(keep)}
    out = {}
    for key, value in state.items():
        if key.startswith("model.layers."):
            prefix = ".".join(key.split(".")[:3]) + "."
            if prefix not in renumber:
                continue
            key = renumber[prefix] + key[len(prefix):]
        if key == "model.embed_tokens.weight":
            value = value[: text["vocab_size"]]
        out[key] = value
    text = {k: v for k, v in text.items() if k != "cross_attention_layers"}
    return {**text, "num_hidden_layers": len(keep)}, out


MLLAMA = TinyFamily(
    "mllama",
    template("{{ bos_token }}", ("<|start_header_id|>", "<|end_header_id|>\n\n"), "<|eot_id|>",
             "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|image|>"),
    ("<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
     "<|finetune_right_pad_id|>", "<|python_tag|>", "<|image|>"),
    {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "pad_token": "<|finetune_right_pad_id|>",
     "unk_token": None, "image_token": "<|image|>"},
    build_mllama, "LlamaForCausalLM",
    # the gates start at 0: a random model would ignore the image without this
    zero_init=("cross_attn_attn_gate", "cross_attn_mlp_gate"), adapt_backbone=mllama_backbone,
)

SPECS = [MLLAMA]
