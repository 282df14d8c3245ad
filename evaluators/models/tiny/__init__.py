"""Tiny, randomly initialised checkpoints of real VLM families, built offline.

Each model is built from transformers' own config classes with a locally trained byte-level BPE
tokenizer, saved with ``save_pretrained`` (safetensors) and meant to be reloaded through the same
``from_pretrained`` path a real checkpoint takes. Each VLM comes with its LLM backbone: the VLM's
language model cut out by ``backbone.py`` (the extractor of ``mmstar backbone extract``, run on the
model in memory) and saved as a standalone ``*ForCausalLM``, so that ``t`` mode runs the real backbone
and every family test runs the real extractor. Used by the tests, by ``mmstar tiny-models DIR`` to
smoke-test an install offline, and (``llava.build_llava`` with a ``LlavaShape``) by the demo-model
training script and the GPU benchmark.

One module per family group; each lists its ``SPECS``; the family facts (classes, extra packages, how
the LM becomes a causal LM) come from ``families.py``. Importing this package never imports torch or
transformers (the builders do, when called).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..backbone import backbone_tokenizer, carve_lm, write_backbone
from . import aya, deepseek, gemma, glm, idefics, internvl, lfm, llava, minicpm, mistral, mllama, molmo, ovis, phi, qwen
from .base import DEFAULT_CORPUS, TinyFamily, TinyPair, save, wake_zero_init
from .base import train_tokenizer as _train

# the order `mmstar tiny-models` builds in
_MODULES = (llava, qwen, gemma, idefics, internvl, mllama, glm, mistral, aya, ovis, deepseek, phi, molmo, minicpm, lfm)
SPECS: dict[str, TinyFamily] = {s.name: s for m in _MODULES for s in m.SPECS}
FAMILIES: tuple[str, ...] = tuple(SPECS)
TEMPLATES: dict[str, str] = {name: s.template for name, s in SPECS.items()}

__all__ = ["DEFAULT_CORPUS", "FAMILIES", "SPECS", "TEMPLATES", "TinyFamily", "TinyPair", "build_tiny_pair",
           "train_tokenizer"]


def _spec(family: str) -> TinyFamily:
    if family not in SPECS:
        raise ValueError(f"unknown tiny family {family!r}; choose from {', '.join(FAMILIES)}")
    return SPECS[family]


def train_tokenizer(family: str, corpus: Iterable[str] = (DEFAULT_CORPUS,), vocab_size: int | None = None):
    """A byte-level BPE tokenizer with ``family``'s special tokens and chat template."""
    return _train(_spec(family), corpus, vocab_size)


def build_tiny_pair(family: str, root: Path, corpus: Iterable[str] | None = None, seed: int = 0) -> TinyPair:
    """Build, save and return the paths of one family's tiny VLM and its LLM backbone."""
    spec = _spec(family)
    tok = _train(spec, corpus or (DEFAULT_CORPUS,))
    vlm_dir, lm_dir = root / f"tiny-{family}", root / f"tiny-{family}-backbone"
    model, processor = spec.build(tok, seed)
    wake_zero_init(model, spec, seed)
    save(vlm_dir, model, processor)
    # the backbone: `mmstar backbone extract`'s own extractor, on the model in memory. Without its
    # marker file, so runs on a tiny pair keep their manifests (no "extracted" S_t label)
    carved = carve_lm(model, spec.name)
    write_backbone(carved.lm, backbone_tokenizer(tok, carved.facts), lm_dir)
    return TinyPair(family, vlm_dir, lm_dir)
