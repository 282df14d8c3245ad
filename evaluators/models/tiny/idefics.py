"""Idefics3 / SmolVLM: SigLIP-style vision tower, pixel-shuffle connector, Llama text model."""

from __future__ import annotations

from .base import TINY_VISION, TinyFamily, ids, template, tiny_text

_ROW_COL = tuple(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7))


def build_idefics3(tok, seed: int = 0):
    """Idefics3 (SmolVLM v1). Its image processor runs on PIL, and vLLM's CPU build can load the
    family: the text part uses a head size of 32, which vLLM's CPU attention supports, so the vLLM
    image path is testable here."""
    import torch
    from transformers import Idefics3ImageProcessor

    config_cls, model_cls, processor_cls = IDEFICS3.classes()
    torch.manual_seed(seed)
    bos, eos, pad, image = ids(tok, "<|im_start|>", "<end_of_utterance>", "<pad>", "<image>")
    text = tiny_text(tok, num_attention_heads=2, num_key_value_heads=2, head_dim=32, model_type="llama",
                     bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    # (32 / 8)^2 = 16 patches, pixel-shuffled by 2 -> 4 image tokens; no tiling: one global image
    config = config_cls(vision_config=TINY_VISION, text_config=text, scale_factor=2, image_token_id=image,
                        pad_token_id=pad, tie_word_embeddings=False)
    model = model_cls(config).eval()
    image_proc = Idefics3ImageProcessor(do_image_splitting=False, size={"longest_edge": 32},
                                        max_image_size={"longest_edge": 32})
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, image_seq_len=4,
                              chat_template=IDEFICS3.template)
    return model, processor


IDEFICS3 = TinyFamily(
    # the processor expands <image> into <fake_token_around_image><global-img><image>... itself
    "idefics3", template("{{ bos_token }}", ("UPPER", ":"), "<end_of_utterance>\n", "ASSISTANT:", "<image>"),
    ("<|im_start|>", "<end_of_utterance>", "<unk>", "<pad>", "<fake_token_around_image>", "<image>", "<global-img>",
     *_ROW_COL),
    {"bos_token": "<|im_start|>", "eos_token": "<end_of_utterance>", "unk_token": "<unk>", "pad_token": "<pad>",
     "image_token": "<image>"},
    build_idefics3,
)


def build_smolvlm(tok, seed: int = 0):
    """SmolVLM2: the Idefics3 design with its own classes; the processor needs num2words and its
    video processor torchvision. Sizes as for Idefics3: 4 image tokens, one global image."""
    import torch
    from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil
    from transformers.models.smolvlm.video_processing_smolvlm import SmolVLMVideoProcessor

    config_cls, model_cls, processor_cls = SMOLVLM.classes()
    torch.manual_seed(seed)
    bos, eos, pad, image = ids(tok, "<|im_start|>", "<end_of_utterance>", "<pad>", "<image>")
    text = tiny_text(tok, num_attention_heads=2, num_key_value_heads=2, head_dim=32, model_type="llama",
                     bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    config = config_cls(vision_config=TINY_VISION, text_config=text, scale_factor=2, image_token_id=image,
                        pad_token_id=pad, tie_word_embeddings=False)
    model = model_cls(config).eval()
    size = {"longest_edge": 32}
    image_proc = SmolVLMImageProcessorPil(do_image_splitting=False, size=size, max_image_size=size)
    video_proc = SmolVLMVideoProcessor(size=size, max_image_size=size)
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                              image_seq_len=4, chat_template=SMOLVLM.template)
    return model, processor


def build_idefics2(tok, seed: int = 0):
    """Idefics2: SigLIP-style tower, a perceiver resampler to a fixed 4 latents per image, Mistral."""
    import torch
    from transformers.models.idefics2.image_processing_pil_idefics2 import Idefics2ImageProcessorPil

    config_cls, model_cls, processor_cls = IDEFICS2.classes()
    torch.manual_seed(seed)
    bos, eos, pad, image = ids(tok, "<|im_start|>", "<end_of_utterance>", "<pad>", "<image>")
    text = tiny_text(tok, model_type="mistral", head_dim=16, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    perceiver = {"hidden_size": 64, "resampler_n_latents": 4, "resampler_depth": 1, "resampler_n_heads": 2,
                 "resampler_head_dim": 16, "num_key_value_heads": 2}
    config = config_cls(vision_config=TINY_VISION, perceiver_config=perceiver, text_config=text,
                        image_token_id=image, tie_word_embeddings=False)
    model = model_cls(config).eval()
    image_proc = Idefics2ImageProcessorPil(do_image_splitting=False, size={"longest_edge": 32, "shortest_edge": 32})
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, image_seq_len=4,
                              chat_template=IDEFICS2.template)
    return model, processor


IDEFICS2 = TinyFamily("idefics2", IDEFICS3.template, IDEFICS3.specials[:6],
                      {**IDEFICS3.roles, "image_boundary_token": "<fake_token_around_image>"}, build_idefics2)
SMOLVLM = TinyFamily("smolvlm", IDEFICS3.template, (*IDEFICS3.specials, "<video>"), IDEFICS3.roles, build_smolvlm)

SPECS = [IDEFICS3, SMOLVLM, IDEFICS2]
