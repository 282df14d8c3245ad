"""Gemma-based families: Gemma-3 (SigLIP + Gemma3 text) and PaliGemma."""

from __future__ import annotations

from .base import TINY_VISION, TinyFamily, ids, template, tiny_text


def build_gemma3(tok, seed: int = 0):
    """Gemma-3 architecture (SigLIP vision tower + Gemma3 text, pooled to a square token count)."""
    import torch
    from transformers import Gemma3ImageProcessor

    config_cls, model_cls, processor_cls = GEMMA3.classes()
    torch.manual_seed(seed)
    bos, eos, pad, boi, eoi, img = ids(tok, "<bos>", "<end_of_turn>", "<pad>", "<start_of_image>",
                                       "<end_of_image>", "<image_soft_token>")
    text = tiny_text(tok, head_dim=16, sliding_window=512, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    config = config_cls(text_config=text, vision_config=TINY_VISION, mm_tokens_per_image=4, boi_token_index=boi,
                        eoi_token_index=eoi, image_token_index=img)
    model = model_cls(config).eval()
    image_proc = Gemma3ImageProcessor(size={"height": 32, "width": 32}, do_pan_and_scan=False)
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, chat_template=GEMMA3.template,
                              image_seq_length=4)
    return model, processor


GEMMA3 = TinyFamily(
    "gemma3",
    template("{{ bos_token }}", ("<start_of_turn>", "\n"), "<end_of_turn>\n", "<start_of_turn>model\n",
             "<start_of_image>"),
    ("<bos>", "<eos>", "<unk>", "<pad>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>",
     "<image_soft_token>"),
    {"bos_token": "<bos>", "eos_token": "<end_of_turn>", "unk_token": "<unk>", "pad_token": "<pad>",
     "boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"},
    build_gemma3, zero_init=("mm_input_projection_weight",),
)


def build_paligemma(tok, seed: int = 0):
    """PaliGemma 2 architecture: SigLIP + linear projector + Gemma2, a prefix-LM (image and prompt
    attend bidirectionally). The processor adds 1,152 ``<loc>``/``<seg>`` tokens to the tokenizer,
    so the vocabulary size is read after building it."""
    import torch
    from transformers.models.siglip.image_processing_siglip import SiglipImageProcessor

    config_cls, model_cls, processor_cls = PALIGEMMA.classes()
    image_proc = SiglipImageProcessor(size={"height": 32, "width": 32})
    image_proc.image_seq_length = 16  # (32 / 8)^2 patches, one token each
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, chat_template=PALIGEMMA.template)
    torch.manual_seed(seed)
    bos, eos, pad, image = ids(tok, "<bos>", "<eos>", "<pad>", "<image>")
    text = tiny_text(tok, model_type="gemma2", head_dim=16, sliding_window=512, bos_token_id=bos,
                     eos_token_id=eos, pad_token_id=pad)
    config = config_cls(vision_config={**TINY_VISION, "model_type": "siglip_vision_model"}, text_config=text,
                        image_token_index=image, projection_dim=64, vocab_size=len(tok))
    model = model_cls(config).eval()
    return model, processor


# PaliGemma has no chat turns: the prompt is the user's text. With an image the processor itself
# writes <image>*N <bos> text "\n"; without one it refuses, and the same frame (<bos> text "\n") is
# rendered here for the tokenizer (families.py: text_only="tokenizer")
_PALIGEMMA_TEMPLATE = (
    "{%- for m in messages if m['role'] == 'user' -%}"
    "{%- set parts = [{'type': 'text', 'text': m['content']}] if m['content'] is string else m['content'] -%}"
    "{%- set images = parts | selectattr('type', 'equalto', 'image') | list -%}"
    "{%- for p in images -%}<image>{%- endfor -%}"
    "{%- if not images -%}{{ bos_token }}{%- endif -%}"
    "{%- for p in parts if p['type'] == 'text' -%}{{ p['text'] }}{%- endfor -%}"
    "{%- if not images -%}{{ '\n' }}{%- endif -%}"
    "{%- endfor -%}"
)
PALIGEMMA = TinyFamily(
    "paligemma", _PALIGEMMA_TEMPLATE, ("<bos>", "<eos>", "<unk>", "<pad>", "<image>"),
    {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>", "image_token": "<image>"},
    # the backbone (Gemma 2 base, no chat turns) gets no template: families.py, backbone_chat_template
    build_paligemma,
)


def build_gemma4(tok, seed: int = 0):
    """Gemma 4: a ViT with 2-D RoPE pooled 3x3 into soft tokens (at most 70, the fewest the processor
    allows), an audio tower, and a Gemma4 text model (sliding and global layers, per-layer inputs)."""
    import torch
    from transformers.models.gemma4.feature_extraction_gemma4 import Gemma4AudioFeatureExtractor
    from transformers.models.gemma4.image_processing_pil_gemma4 import Gemma4ImageProcessorPil
    from transformers.models.gemma4.video_processing_gemma4 import Gemma4VideoProcessor

    config_cls, model_cls, processor_cls = GEMMA4.classes()
    torch.manual_seed(seed)
    bos, eos, pad = ids(tok, "<bos>", "<turn|>", "<pad>")
    boi, eoi, img, boa, eoa, audio = ids(tok, "<|image>", "<image|>", "<|image|>", "<|audio>", "<audio|>", "<|audio|>")
    text = tiny_text(tok, model_type="gemma4_text", head_dim=16, global_head_dim=16, sliding_window=512,
                     layer_types=["sliding_attention", "full_attention"], vocab_size_per_layer_input=len(tok),
                     hidden_size_per_layer_input=8, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "num_key_value_heads": 2, "head_dim": 16, "patch_size": 16, "pooling_kernel_size": 3,
              "position_embedding_size": 1024}
    audio_cfg = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                 "subsampling_conv_channels": [8, 4], "output_proj_dims": 64}
    config = config_cls(text_config=text, vision_config=vision, audio_config=audio_cfg, boi_token_id=boi,
                        eoi_token_id=eoi, image_token_id=img, boa_token_id=boa, eoa_token_index=eoa,
                        audio_token_id=audio)
    model = model_cls(config).eval()
    processor = processor_cls(
        feature_extractor=Gemma4AudioFeatureExtractor(),
        image_processor=Gemma4ImageProcessorPil(patch_size=16, max_soft_tokens=70, pooling_kernel_size=3),
        video_processor=Gemma4VideoProcessor(patch_size=16, max_soft_tokens=70, pooling_kernel_size=3),
        tokenizer=tok, chat_template=GEMMA4.template, image_seq_length=70)
    return model, processor


GEMMA4 = TinyFamily(
    "gemma4",
    template("{{ bos_token }}", ("<|turn>", "\n"), "<turn|>\n", "<|turn>model\n", "<|image|>"),
    ("<bos>", "<eos>", "<unk>", "<pad>", "<|turn>", "<turn|>", "<|image>", "<image|>", "<|image|>", "<|audio>",
     "<audio|>", "<|audio|>"),
    {"bos_token": "<bos>", "eos_token": "<turn|>", "unk_token": "<unk>", "pad_token": "<pad>",
     "boi_token": "<|image>", "eoi_token": "<image|>", "image_token": "<|image|>", "boa_token": "<|audio>",
     "eoa_token": "<audio|>", "audio_token": "<|audio|>"},
    build_gemma4,
)

SPECS = [GEMMA3, PALIGEMMA, GEMMA4]
