"""Shared parts of the tiny checkpoints: the family spec, tokenizer training, chat templates,
text-model sizes and saving. What a family *is* (its classes, extra packages, where its language model
lives and how that becomes a standalone causal LM) is read from ``families.py``; the backbone is cut out
by ``backbone.py``, the extractor ``mmstar backbone extract`` runs. Importing this never imports torch."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..families import FAMILIES, FamilyFacts

# Chat templates kept deliberately small; each places the family's image placeholder where the
# image part is and renders string or list content, with an optional system turn.
_CONTENT = (
    "{%- if m['content'] is string -%}{{ m['content'] }}{%- else -%}"
    "{%- for p in m['content'] -%}{%- if p['type'] == 'image' -%}{{ IMG }}{%- elif p['type'] == 'text' -%}"
    "{{ p['text'] }}{%- endif -%}{%- endfor -%}{%- endif -%}"
)


def _lit(text: str) -> str:
    """A literal as a Jinja expression, so whitespace control never eats its spaces/newlines."""
    return "{{ " + json.dumps(text) + " }}"


def template(bos: str, turn: tuple[str, str], end: str, gen: str, img: str) -> str:
    """``turn`` is (text before the role, text after it); the role is rendered in between
    ("UPPER" renders it upper-case with nothing before it)."""
    body = _CONTENT.replace("{{ IMG }}", _lit(img))
    role = "{{ m['role'] | upper }}" if turn[0] == "UPPER" else "{{ m['role'] }}"
    before = "" if turn[0] == "UPPER" else _lit(turn[0])
    return (
        bos + "{%- for m in messages -%}" + before + role + _lit(turn[1]) + body + _lit(end) + "{%- endfor -%}"
        "{%- if add_generation_prompt -%}" + _lit(gen) + "{%- endif -%}"
    )


def role_template(bos: str, roles: dict[str, tuple[str, str]], gen: str, img: str) -> str:
    """A template whose turns are framed per role: ``roles[role] = (before, after)``."""
    body = _CONTENT.replace("{{ IMG }}", _lit(img))
    branches = "".join(
        ("{%- if" if i == 0 else "{%- elif") + f" m['role'] == {json.dumps(role)} -%}}" + _lit(before) + body
        + _lit(after) for i, (role, (before, after)) in enumerate(roles.items()))
    return (bos + "{%- for m in messages -%}" + branches + "{%- endif -%}{%- endfor -%}"
            "{%- if add_generation_prompt -%}" + _lit(gen) + "{%- endif -%}")


# ChatML, as Qwen, InternVL and LLaVA-OneVision render it; only the image placeholder differs
def chatml(img: str) -> str:
    return template("", ("<|im_start|>", "\n"), "<|im_end|>\n", "<|im_start|>assistant\n", img)


CHATML_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>")
CHATML_ROLES: dict[str, str | None] = {"eos_token": "<|im_end|>", "pad_token": "<pad>", "unk_token": None}


@dataclass(frozen=True)
class TinyFamily:
    """How to build one family's tiny checkpoint: tokenizer conventions and a builder. Everything
    that is a fact about the family rather than about tininess comes from its ``FamilyFacts``."""

    name: str  # the family's name in families.py
    template: str
    specials: tuple[str, ...]
    roles: dict[str, str | None]  # bos/eos/unk/pad plus extra named special tokens (image_token ...)
    build: Callable[..., Any]  # (tokenizer, seed) -> (model, processor)
    # parameters the family initialises to zero (gates, projections) that would make a random
    # model ignore the image; they get small random values so that v differs from wv
    zero_init: tuple[str, ...] = ()
    vocab_size: int = 400

    @property
    def facts(self) -> FamilyFacts:
        return FAMILIES[self.name]

    @property
    def needs(self) -> tuple[str, ...]:
        """Packages beyond torch/transformers the processor needs (e.g. torchvision; pip and import names agree)."""
        return self.facts.needs

    @property
    def known_failure(self) -> str:
        """The upstream fault that stops the built checkpoint from running in the installed
        transformers, or ""."""
        from importlib.metadata import version

        return self.facts.failure_now(version("transformers"))

    def classes(self) -> tuple[Any, Any, Any]:
        """(config, model, processor) classes, as the family's facts name them (imports transformers)."""
        import transformers

        model_cls = getattr(transformers, self.facts.model_class)
        return model_cls.config_class, model_cls, getattr(transformers, self.facts.processor_class)


@dataclass(frozen=True)
class TinyPair:
    family: str
    vlm: Path
    backbone: Path


DEFAULT_CORPUS = (
    "Question: What colour is the shape in the image? Options: A: red, B: green, C: blue, D: yellow\n"
    "Answer the question directly. Answer with the option's letter from the given choices directly.\n"
    "You are a helpful assistant. If you can't judge the answer, give your guess as to the most likely answer.\n"
    "Which one is the correct caption of this image? The man is sitting by the edge of the bathtub.\n"
    "How many objects are there? Where is the object? Which shape is shown? circle square triangle cross\n"
    "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.\n"
    "0 1 2 3 4 5 6 7 8 9 10 left right top bottom large small bigger smaller the a an of in on is are\n"
)

_BASIC_ROLES = ("bos_token", "eos_token", "unk_token", "pad_token")


def train_tokenizer(spec: TinyFamily, corpus: Iterable[str] = (DEFAULT_CORPUS,), vocab_size: int | None = None):
    """A byte-level BPE tokenizer trained here, with the family's special tokens and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size or spec.vocab_size, special_tokens=list(spec.specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    roles = {k: v for k, v in spec.roles.items() if k in _BASIC_ROLES}
    extra = {k: v for k, v in spec.roles.items() if k not in _BASIC_ROLES}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **roles, extra_special_tokens=extra or None)
    fast.chat_template = spec.template
    fast.padding_side = "left"
    return fast


def ids(tok, *tokens: str) -> list[int]:
    return [tok.convert_tokens_to_ids(t) for t in tokens]


def tiny_text(tok, **extra: object) -> dict:
    """The text-model sizes every tiny family shares, plus family-specific keys."""
    return {"vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 2048, **extra}


# a SigLIP/CLIP-style vision tower: 32x32 images in 8x8 patches -> 16 patch features
TINY_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
               "image_size": 32, "patch_size": 8}


def wake_zero_init(model, spec: TinyFamily, seed: int) -> None:
    """Give the family's zero-initialised parameters (named in ``spec.zero_init``) random values."""
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    woken = 0
    with torch.no_grad():
        for name, param in model.named_parameters():
            if any(part in name for part in spec.zero_init):
                param.copy_(torch.randn(param.shape, generator=gen, dtype=param.dtype) * 0.5)
                woken += 1
    if spec.zero_init and not woken:
        raise RuntimeError(f"{spec.name}: no parameter matches {spec.zero_init}")


def save(out: Path, model, processor) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
