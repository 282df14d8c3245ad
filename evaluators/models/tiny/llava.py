"""LLaVA-style families: a CLIP/SigLIP vision tower, a projector, and an unchanged text LM."""

from __future__ import annotations

from .base import CHATML_ROLES, CHATML_SPECIALS, TINY_VISION, TinyFamily, chatml, ids, template, tiny_text

# anyres: tile grids that are multiples of the 32-pixel tile (+ the base image)
_PINPOINTS = [[32, 32], [32, 64], [64, 32], [64, 64]]


def _llama_text(tok, hidden: int = 64, layers: int = 2):
    from transformers import LlamaConfig

    bos, eos, pad = ids(tok, "<s>", "</s>", "<pad>")
    return LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                       num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                       max_position_embeddings=2048, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)


def build_llava(tok, seed: int = 0, image_size: int = 32, patch: int = 8):
    """LLaVA-1.5 architecture: CLIP vision tower + Llama."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    torch.manual_seed(seed)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=image_size, patch_size=patch, projection_dim=32)
    config = LlavaConfig(vision_config=vision, text_config=_llama_text(tok),
                         image_token_index=tok.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-2)
    model = LlavaForConditionalGeneration(config).eval()
    image_proc = CLIPImageProcessor(size={"shortest_edge": image_size},
                                    crop_size={"height": image_size, "width": image_size})
    processor = LlavaProcessor(image_processor=image_proc, tokenizer=tok, patch_size=patch,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA.template)
    return model, processor


LLAVA = TinyFamily(
    "llava", template("{{ bos_token }}", ("UPPER", ": "), "\n", "ASSISTANT:", "<image>\n"),
    ("<s>", "</s>", "<unk>", "<pad>", "<image>"),
    {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
    build_llava, "LlamaForCausalLM",
)



def build_llava_next(tok, seed: int = 0):
    """LLaVA-NeXT (v1.6): CLIP + Llama with anyres tiling; the token count depends on the image size."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    torch.manual_seed(seed)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=32)
    config = LlavaNextConfig(vision_config=vision, text_config=_llama_text(tok), image_grid_pinpoints=_PINPOINTS,
                             image_token_index=tok.convert_tokens_to_ids("<image>"),
                             vision_feature_select_strategy="default", vision_feature_layer=-2)
    model = LlavaNextForConditionalGeneration(config).eval()
    image_proc = LlavaNextImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                         image_grid_pinpoints=_PINPOINTS)
    processor = LlavaNextProcessor(image_processor=image_proc, tokenizer=tok, patch_size=8,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                   chat_template=LLAVA_NEXT.template)
    return model, processor


def build_llava_onevision(tok, seed: int = 0):
    """LLaVA-OneVision: SigLIP + Qwen2 with anyres_max_9 tiling (video processor needs torchvision)."""
    import torch
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration, LlavaOnevisionProcessor
    from transformers.models.llava_onevision.image_processing_llava_onevision import LlavaOnevisionImageProcessor
    from transformers.models.llava_onevision.video_processing_llava_onevision import LlavaOnevisionVideoProcessor

    torch.manual_seed(seed)
    eos, pad, image, video = ids(tok, "<|im_end|>", "<pad>", "<image>", "<video>")
    text = tiny_text(tok, model_type="qwen2", bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)
    config = LlavaOnevisionConfig(vision_config={**TINY_VISION, "model_type": "siglip_vision_model"},
                                  text_config=text, image_token_index=image, video_token_index=video,
                                  image_grid_pinpoints=_PINPOINTS, vision_feature_select_strategy="full",
                                  vision_feature_layer=-1)
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    size = {"height": 32, "width": 32}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=_PINPOINTS),
        video_processor=LlavaOnevisionVideoProcessor(size=size), tokenizer=tok, num_image_tokens=16,
        vision_feature_select_strategy="full", chat_template=LLAVA_ONEVISION.template)
    return model, processor


LLAVA_NEXT = TinyFamily("llava-next", LLAVA.template, LLAVA.specials, LLAVA.roles, build_llava_next,
                        "LlamaForCausalLM")
LLAVA_ONEVISION = TinyFamily(
    "llava-onevision", chatml("<image>\n"), (*CHATML_SPECIALS, "<image>", "<video>"),
    {**CHATML_ROLES, "image_token": "<image>", "video_token": "<video>"}, build_llava_onevision,
    "Qwen2ForCausalLM", needs=("torchvision",),
)

SPECS = [LLAVA, LLAVA_NEXT, LLAVA_ONEVISION]
