"""Gemma-based families: Gemma-3 (SigLIP + Gemma3 text) and PaliGemma."""

from __future__ import annotations

from .base import TINY_VISION, TinyFamily, ids, template, tiny_text


def build_gemma3(tok, seed: int = 0):
    """Gemma-3 architecture (SigLIP vision tower + Gemma3 text, pooled to a square token count)."""
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3ImageProcessor, Gemma3Processor

    torch.manual_seed(seed)
    bos, eos, pad, boi, eoi, img = ids(tok, "<bos>", "<end_of_turn>", "<pad>", "<start_of_image>",
                                       "<end_of_image>", "<image_soft_token>")
    text = tiny_text(tok, head_dim=16, sliding_window=512, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    config = Gemma3Config(text_config=text, vision_config=TINY_VISION, mm_tokens_per_image=4,
                          boi_token_index=boi, eoi_token_index=eoi, image_token_index=img)
    model = Gemma3ForConditionalGeneration(config).eval()
    image_proc = Gemma3ImageProcessor(size={"height": 32, "width": 32}, do_pan_and_scan=False)
    processor = Gemma3Processor(image_processor=image_proc, tokenizer=tok, chat_template=GEMMA3.template,
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
    build_gemma3, "Gemma3ForCausalLM", zero_init=("mm_input_projection_weight",),
)



def build_paligemma(tok, seed: int = 0):
    """PaliGemma 2 architecture: SigLIP + linear projector + Gemma2, a prefix-LM (image and prompt
    attend bidirectionally). The processor adds 1,152 ``<loc>``/``<seg>`` tokens to the tokenizer,
    so the vocabulary size is read after building it."""
    import torch
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor
    from transformers.models.siglip.image_processing_siglip import SiglipImageProcessor

    image_proc = SiglipImageProcessor(size={"height": 32, "width": 32})
    image_proc.image_seq_length = 16  # (32 / 8)^2 patches, one token each
    processor = PaliGemmaProcessor(image_processor=image_proc, tokenizer=tok, chat_template=PALIGEMMA.template)
    torch.manual_seed(seed)
    bos, eos, pad, image = ids(tok, "<bos>", "<eos>", "<pad>", "<image>")
    text = tiny_text(tok, model_type="gemma2", head_dim=16, sliding_window=512, bos_token_id=bos,
                     eos_token_id=eos, pad_token_id=pad)
    config = PaliGemmaConfig(vision_config={**TINY_VISION, "model_type": "siglip_vision_model"}, text_config=text,
                             image_token_index=image, projection_dim=64, vocab_size=len(tok))
    model = PaliGemmaForConditionalGeneration(config).eval()
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
    # the backbone is Gemma 2 base, which has no chat turns: t uses mmstar's plain transcript
    build_paligemma, "Gemma2ForCausalLM", backbone_template="",
)

SPECS = [GEMMA3, PALIGEMMA]
