"""``mmstar backbone extract``: an LVLM's language model saved as a standalone causal-LM checkpoint.

What it measures: S_t of the LM *inside* the LVLM, after multimodal training. That is not the
paper's S_t, which runs the original LLM the LVLM was built from; the two differ wherever the LM
was trained on (most LVLMs). Without an image the LVLM runs these same weights, so S_wv minus an
extracted S_t is prompt sensitivity, not leakage; extracted S_t minus the original LLM's S_t is
what multimodal training changed. It serves families whose original LLM is not released (Gemma-3
4B-27B, Mistral-Small-3.1), and it is labelled "extracted" in the run manifest and leaderboard.

The folder holds safetensors weights, config, generation config, tokenizer with the LVLM's chat
template (none where the facts say the LM takes none: PaliGemma), and ``mmstar_backbone.json``
(source, family, "extracted"). The weights are the LVLM's own tensors under the standalone class's
names. Where the LM is no plain causal LM as it stands, the family facts say how it becomes one
(layers to drop, embedding rows to keep, modules to leave behind: Llama-3.2-Vision, Molmo2,
Phi-4-multimodal); every name and shape is checked against the class before anything is written, so
anything else that does not fit fails with one line.

``carve_lm`` is that extraction on a model already in memory; the tiny builders and the GPU benchmark
make their LLM backbones with it, so every family test runs this extractor.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmstar.errors import MmstarError, require

from .families import FamilyFacts, facts_for_model_type

MARKER = "mmstar_backbone.json"
DEFAULT_LM_ATTR = "model.language_model"  # where transformers' VLM classes keep the LM by convention


@dataclass(frozen=True)
class Extracted:
    out: Path
    source: str
    family: str
    backbone_class: str
    n_tensors: int


def backbone_label(backbone: str | None) -> dict[str, Any]:
    """Manifest fields for a run's backbone: ``backbone_kind`` "extracted" (with its source LVLM)
    when the folder was written by ``mmstar backbone extract``; nothing otherwise. Pure JSON."""
    if not backbone:
        return {}
    marker = Path(backbone) / MARKER
    if not marker.is_file():
        return {}
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return {"backbone_kind": "extracted", "backbone_extracted_from": info.get("source")}


def _read_config(transformers: Any, vlm: str, trust_remote_code: bool) -> Any:
    try:
        return transformers.AutoConfig.from_pretrained(vlm, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        if not Path(vlm).exists():
            raise MmstarError(f"cannot read {vlm}: not a local folder and not on the reachable hub ({first}); "
                              "download it elsewhere and pass its folder") from None
        raise MmstarError(f"cannot read {vlm}: {first}") from None


def backbone_class_for(config: Any, facts: FamilyFacts | None) -> str | None:
    """The standalone causal-LM class an LVLM's language model is saved as: the text config's own
    causal LM (Llama, Qwen2, Gemma3, ...) when transformers maps one, else the family's class (the text
    model is VLM-specific: qwen2_vl_text -> Qwen2ForCausalLM). A model with one config for everything
    (Phi-4-multimodal) maps to itself, so its family's class decides."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    text_config = config.get_text_config()
    mapped = None if text_config is config else MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(text_config.model_type)
    return mapped or (facts.backbone_class if facts else None)


def _plan(transformers: Any, vlm: str, config: Any) -> tuple[FamilyFacts | None, str, str]:
    """(family facts or None, language-model attribute path, standalone class name) or one clear error."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = config.model_type
    facts = facts_for_model_type(model_type)
    if facts is not None and facts.backbone_class is None:  # the facts know better than the config's shape
        raise MmstarError(f"{vlm}: family {facts.name} has no standalone language model to extract: "
                          f"{facts.notes.split('. ')[0]}")
    text_config = config.get_text_config()
    # a family in the facts is a VLM even when one config holds everything (Phi-4-multimodal)
    if facts is None and (text_config is config or getattr(config, "vision_config", None) is None):
        if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            raise MmstarError(f"{vlm}: model type {model_type!r} is already a text-only causal LM; pass it to "
                              "--backbone as it is")
        raise MmstarError(f"{vlm}: model type {model_type!r} has no language-model part to extract "
                          "(not a vision-language model with a text model)")
    cls = backbone_class_for(config, facts)
    if cls is None or not hasattr(transformers, cls):
        raise MmstarError(f"{vlm}: text model type {text_config.model_type!r} has no standalone causal-LM class "
                          "in the installed transformers")
    if facts is not None:
        wrong = {k: getattr(text_config, k, None) for k, v in facts.backbone_requires.items()
                 if getattr(text_config, k, None) != v}
        if wrong:
            raise MmstarError(f"{vlm}: family {facts.name}'s language model is a {cls} only with "
                              f"{facts.backbone_requires}; this checkpoint has {wrong}")
    return facts, (facts.language_model_attr if facts else DEFAULT_LM_ATTR), cls


def _load_vlm(transformers: Any, vlm: str, facts: FamilyFacts | None, trust_remote_code: bool,
              allow_pickle: bool) -> Any:
    from .loading import load_error

    cls = getattr(transformers, facts.model_class) if facts else transformers.AutoModelForImageTextToText
    try:  # dtype "auto": the checkpoint's own precision, so the weights are copied bit for bit
        return cls.from_pretrained(vlm, dtype="auto", trust_remote_code=trust_remote_code,
                                   use_safetensors=None if allow_pickle else True)
    except (OSError, ValueError, ImportError, KeyError) as exc:
        raise load_error(vlm, exc) from None


def _lm_state(vlm: str, model: Any, attr: str) -> tuple[dict[str, Any], bool]:
    """The LM's tensors under a ``*ForCausalLM``'s names, and whether the head is tied to the embeddings."""
    try:
        lm = model.get_submodule(attr)
    except AttributeError:
        raise MmstarError(f"{vlm}: no language-model part at {attr!r} in {type(model).__name__}") from None
    head = model.get_output_embeddings()
    if head is None:
        raise MmstarError(f"{vlm}: {type(model).__name__} has no output head to give the language model")
    state = {f"model.{k}": v for k, v in lm.state_dict().items()}
    state.update({f"lm_head.{k}": v for k, v in head.state_dict().items()})
    embed = lm.get_input_embeddings()
    tied = embed is not None and head.weight.data_ptr() == embed.weight.data_ptr()
    return state, tied


def transformers_version() -> str:
    """The installed transformers' version, read without importing it (a family fact may depend on it)."""
    from importlib.metadata import version

    return version("transformers")


def adapt_lm(state: dict[str, Any], text: dict[str, Any], facts: FamilyFacts | None
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The LM's tensors and text config made into a plain causal LM's, as the family facts say: modules
    left behind, layers dropped (the rest renumbered), extra embedding rows cut off, config keys set or
    removed. Nothing is copied: kept tensors are the VLM's own (the embedding a view of its first rows)."""
    rope = text.get("rope_parameters")
    if isinstance(rope, dict) and any(k.startswith("mrope") for k in rope):
        # text-only positions are equal on every M-RoPE axis, so M-RoPE is 1-D RoPE: the standalone LM
        # takes 1-D positions and gets no sections (which would mark it as a multimodal-RoPE model)
        text = {**text, "rope_parameters": {k: v for k, v in rope.items() if not k.startswith("mrope")}}
    if facts is None:
        return state, text
    state = {k: v for k, v in state.items() if not any(part in k for part in facts.backbone_drop_modules)}
    if facts.backbone_drop_layers:
        dropped = set(text[facts.backbone_drop_layers])
        keep = [i for i in range(text["num_hidden_layers"]) if i not in dropped]
        renumber = {f"model.layers.{old}.": f"model.layers.{new}." for new, old in enumerate(keep)}
        kept = {}
        for key, value in state.items():
            prefix = ".".join(key.split(".")[:3]) + "."
            if key.startswith("model.layers."):
                if prefix not in renumber:
                    continue  # a dropped layer
                key = renumber[prefix] + key[len(prefix):]
            kept[key] = value
        state, text = kept, {**text, "num_hidden_layers": len(keep)}
        # per-layer lists in the config follow the kept layers
        for name in ("layer_types",):
            if isinstance(text.get(name), list) and len(text[name]) == len(keep) + len(dropped):
                text[name] = [text[name][i] for i in keep]
    if facts.backbone_embedding_rows:
        rows = text[facts.backbone_embedding_rows]
        state["model.embed_tokens.weight"] = state["model.embed_tokens.weight"][:rows]
    text = {k: v for k, v in text.items() if k not in facts.backbone_config_drop}
    return state, {**text, **facts.backbone_overrides(transformers_version())}


def _build_lm(transformers: Any, vlm: str, model: Any, cls_name: str, state: dict[str, Any], tied: bool,
              text: dict[str, Any]) -> Any:
    """The standalone LM holding the VLM's tensors; built on the meta device, so nothing is copied."""
    import torch

    cls = getattr(transformers, cls_name)
    skip = {"model_type", "architectures", "transformers_version", "auto_map"}
    config = cls.config_class(**{k: v for k, v in text.items() if k not in skip})
    config.tie_word_embeddings = tied
    with torch.device("meta"):
        lm = cls(config)
    shapes = {k: tuple(v.shape) for k, v in lm.state_dict().items()}
    missing, unexpected = sorted(shapes.keys() - state.keys()), sorted(state.keys() - shapes.keys())
    if missing or unexpected:
        raise MmstarError(f"{vlm}: its language model does not fit {cls_name} (missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]}); this family cannot be extracted as a plain causal LM")
    resized = [f"{k} {tuple(v.shape)} vs {shapes[k]}" for k, v in state.items() if tuple(v.shape) != shapes[k]]
    if resized:
        raise MmstarError(f"{vlm}: its language model does not fit {cls_name} (shape of {resized[0]}); this "
                          "family cannot be extracted as a plain causal LM")
    lm.load_state_dict(state, strict=True, assign=True)
    if tied:
        lm.tie_weights()
    lm.generation_config = model.generation_config
    return lm.eval()


def _tokenizer(transformers: Any, vlm: str, trust_remote_code: bool) -> Any:
    """The LVLM's tokenizer, carrying the LVLM's chat template (often stored with the processor)."""
    tok = transformers.AutoTokenizer.from_pretrained(vlm, trust_remote_code=trust_remote_code)
    if not getattr(tok, "chat_template", None):
        try:
            processor = transformers.AutoProcessor.from_pretrained(vlm, trust_remote_code=trust_remote_code)
            tok.chat_template = getattr(processor, "chat_template", None)
        except (OSError, ValueError, ImportError, KeyError):
            pass  # no template: the backend falls back to a plain transcript, as for any base LLM
    return tok


def backbone_tokenizer(tokenizer: Any, facts: FamilyFacts | None) -> Any:
    """The tokenizer the extracted LM is saved with: the LVLM's, without its chat template where the
    facts say the LM takes none (a copy then, so the LVLM's own tokenizer keeps its template)."""
    if facts is None or facts.backbone_chat_template or not getattr(tokenizer, "chat_template", None):
        return tokenizer
    import copy

    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.chat_template = None  # no template: the backend falls back to a plain transcript
    return tokenizer


@dataclass(frozen=True)
class Carved:
    """An LVLM's language model as a standalone causal LM, in memory, holding the LVLM's own tensors."""

    lm: Any
    facts: FamilyFacts | None
    language_model_attr: str
    backbone_class: str
    tied: bool
    n_tensors: int


def carve_lm(model: Any, source: str) -> Carved:
    """The standalone causal LM inside a loaded LVLM: the one extraction path for ``mmstar backbone
    extract`` (a checkpoint on disk) and for models built in memory (the tiny builders, the GPU
    benchmark's 7B-shaped LLaVA). Built on the meta device over the LVLM's tensors, so nothing is copied
    (a model on an accelerator stays there). ``source`` names the LVLM in error messages."""
    transformers = require("transformers", "hf")
    facts, attr, cls_name = _plan(transformers, source, model.config)
    state, tied = _lm_state(source, model, attr)
    state, text = adapt_lm(state, model.config.get_text_config().to_dict(), facts)
    lm = _build_lm(transformers, source, model, cls_name, state, tied, text)
    return Carved(lm, facts, attr, cls_name, tied, len(state))


def write_backbone(lm: Any, tokenizer: Any, out: Path, marker: dict[str, Any] | None = None) -> None:
    """Save a carved LM and its tokenizer (and the extraction marker, if given) into ``out``, replacing it.
    Written beside the target and renamed into place: a killed write leaves no half folder."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        lm.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if marker is not None:
            (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _marker_note(facts: FamilyFacts | None) -> str:
    if facts is not None and facts.lm_frozen:
        return (f"family {facts.name} keeps its LM frozen during multimodal training, so this reproduces the "
                "original, released LLM (the paper's S_t when run with its protocol)")
    return "the LVLM's language model after multimodal training, not the original LLM (not the paper's S_t)"


def extract_backbone(vlm: str, out: Path, *, trust_remote_code: bool = False, allow_pickle: bool = False,
                     overwrite: bool = False) -> Extracted:
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise MmstarError(f"{out}: exists and is not empty; pass --overwrite or another --out")
    if not Path(vlm).exists():
        from mmstar.hub import prefer_offline_if_unreachable

        prefer_offline_if_unreachable()  # before transformers reads the env
    transformers = require("transformers", "hf")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    config = _read_config(transformers, vlm, trust_remote_code)
    facts, _, _ = _plan(transformers, vlm, config)  # refuses from the config alone, before any weights load
    model = _load_vlm(transformers, vlm, facts, trust_remote_code, allow_pickle)
    carved = carve_lm(model, vlm)
    tok = backbone_tokenizer(_tokenizer(transformers, vlm, trust_remote_code), carved.facts)
    family = facts.name if facts else config.model_type
    marker = {"kind": "extracted", "extracted": True, "source": vlm, "family": family,
              "model_type": config.model_type, "backbone_class": carved.backbone_class,
              "language_model_attr": carved.language_model_attr, "tied_embeddings": carved.tied,
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "lm_frozen": bool(facts and facts.lm_frozen), "note": _marker_note(facts)}
    write_backbone(carved.lm, tok, out, marker)
    return Extracted(out, vlm, family, carved.backbone_class, carved.n_tensors)
