"""Meta's VLMs. Mllama (Llama-3.2-Vision): a tiled ViT whose features enter the Llama text model through gated
cross-attention layers; the image takes a single ``<|image|>`` token in the text. Llama 4: early
fusion, image patches as tokens in an MoE text model."""

from __future__ import annotations

from .base import TinyFamily, ids, template, tiny_text

_CROSS = [1]  # text layer indices that are cross-attention layers (real 11B: every 5th of 40)


def build_mllama(tok, seed: int = 0):
    """32x32 tiles in 8x8 patches, up to 2 tiles; 3 text layers of which layer 1 cross-attends."""
    import torch
    from transformers import MllamaImageProcessor

    config_cls, model_cls, processor_cls = MLLAMA.classes()
    torch.manual_seed(seed)
    bos, eos, pad, image = ids(tok, "<|begin_of_text|>", "<|eot_id|>", "<|finetune_right_pad_id|>", "<|image|>")
    text = tiny_text(tok, num_hidden_layers=3, cross_attention_layers=_CROSS, bos_token_id=bos, eos_token_id=eos,
                     pad_token_id=pad)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_global_layers": 1,
              "attention_heads": 2, "image_size": 32, "patch_size": 8, "max_num_tiles": 2,
              "intermediate_layers_indices": [0], "vision_output_dim": 64,
              "supported_aspect_ratios": [[1, 1], [1, 2], [2, 1]]}
    config = config_cls(vision_config=vision, text_config=text, image_token_index=image)
    model = model_cls(config).eval()
    image_proc = MllamaImageProcessor(size={"height": 32, "width": 32}, max_image_tiles=2)
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, chat_template=MLLAMA.template)
    return model, processor


MLLAMA = TinyFamily(
    "mllama",
    template("{{ bos_token }}", ("<|start_header_id|>", "<|end_header_id|>\n\n"), "<|eot_id|>",
             "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|image|>"),
    ("<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
     "<|finetune_right_pad_id|>", "<|python_tag|>", "<|image|>"),
    {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "pad_token": "<|finetune_right_pad_id|>",
     "unk_token": None, "image_token": "<|image|>"},
    # the gates start at 0: a random model would ignore the image without this. The backbone drops the
    # cross-attention layers and image embedding rows as the family facts say (backbone.py)
    build_mllama, zero_init=("cross_attn_attn_gate", "cross_attn_mlp_gate"),
)


def build_llama4(tok, seed: int = 0):
    """Llama 4 (Scout/Maverick): a ViT whose 32x32 tile of 8x8 patches is pixel-shuffled 0.5 into 4
    ``<|patch|>`` tokens, and an MoE Llama 4 text model (layer 1: 2 experts, top 1, plus a shared MLP)."""
    import torch
    from transformers.models.llama4.image_processing_llama4 import Llama4ImageProcessor

    config_cls, model_cls, processor_cls = LLAMA4.classes()
    torch.manual_seed(seed)
    bos, eos, pad, boi, eoi, patch = ids(tok, "<|begin_of_text|>", "<|eot|>", "<|finetune_right_pad|>",
                                         "<|image_start|>", "<|image_end|>", "<|patch|>")
    text = tiny_text(tok, head_dim=16, intermediate_size=32, intermediate_size_mlp=128, num_local_experts=2,
                     num_experts_per_tok=1, interleave_moe_layer_step=2, bos_token_id=bos, eos_token_id=eos,
                     pad_token_id=pad)
    # the pixel shuffle makes 4x-wide features, which the adapter's first layer takes as intermediate_size
    vision = {"hidden_size": 32, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8, "vision_output_dim": 64, "projector_input_dim": 64,
              "projector_output_dim": 64}
    config = config_cls(vision_config=vision, text_config=text, boi_token_index=boi, eoi_token_index=eoi,
                        image_token_index=patch)
    model = model_cls(config).eval()
    image_proc = Llama4ImageProcessor(size={"height": 32, "width": 32}, max_patches=1)
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, patch_size=8, pixel_shuffle_ratio=0.5,
                              chat_template=LLAMA4.template)
    return model, processor


LLAMA4 = TinyFamily(
    "llama4",
    template("{{ bos_token }}", ("<|header_start|>", "<|header_end|>\n\n"), "<|eot|>",
             "<|header_start|>assistant<|header_end|>\n\n", "<|image|>"),
    ("<|begin_of_text|>", "<|end_of_text|>", "<|eot|>", "<|header_start|>", "<|header_end|>",
     "<|finetune_right_pad|>", "<|image|>", "<|image_start|>", "<|image_end|>", "<|patch|>", "<|tile_x_separator|>",
     "<|tile_y_separator|>"),
    {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot|>", "pad_token": "<|finetune_right_pad|>",
     "unk_token": None},
    # it builds but does not run in transformers 5.24: the family facts' known_failure
    build_llama4,
)

SPECS = [MLLAMA, LLAMA4]
