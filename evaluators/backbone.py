"""``mmstar backbone extract``: an LVLM's language model saved as a standalone causal-LM checkpoint.

What it measures: S_t of the LM *inside* the LVLM, after multimodal training. That is not the
paper's S_t, which runs the original LLM the LVLM was built from; the two differ wherever the LM
was trained on (most LVLMs). Without an image the LVLM runs these same weights, so S_wv minus an
extracted S_t is prompt sensitivity, not leakage; extracted S_t minus the original LLM's S_t is
what multimodal training changed. It serves families whose original LLM is not released (Gemma-3
4B-27B, Mistral-Small-3.1), and it is labelled "extracted" in the run manifest and leaderboard.

The folder holds safetensors weights, config, generation config, tokenizer with the LVLM's chat
template, and ``mmstar_backbone.json`` (source, family, "extracted"). The weights are the LVLM's
own tensors under the standalone class's names; every name is checked against that class before
anything is written, so a family whose LM is no plain causal LM fails with one line.
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


def _plan(transformers: Any, vlm: str, config: Any) -> tuple[FamilyFacts | None, str, str]:
    """(family facts or None, language-model attribute path, standalone class name) or one clear error."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = config.model_type
    facts = facts_for_model_type(model_type)
    if facts is not None and facts.backbone_class is None:  # the facts know better than the config's shape
        raise MmstarError(f"{vlm}: family {facts.name} has no standalone language model to extract: "
                          f"{facts.notes.split('. ')[0]}")
    text_config = config.get_text_config()
    if text_config is config or getattr(config, "vision_config", None) is None:
        if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            raise MmstarError(f"{vlm}: model type {model_type!r} is already a text-only causal LM; pass it to "
                              "--backbone as it is")
        raise MmstarError(f"{vlm}: model type {model_type!r} has no language-model part to extract "
                          "(not a vision-language model with a text model)")
    # the text config's own causal LM (Llama, Qwen2, Gemma3, ...) when transformers maps one; the
    # family's class when the text model is VLM-specific (qwen2_vl_text -> Qwen2ForCausalLM)
    cls = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(text_config.model_type) or (facts.backbone_class if facts else None)
    if cls is None or not hasattr(transformers, cls):
        raise MmstarError(f"{vlm}: text model type {text_config.model_type!r} has no standalone causal-LM class "
                          "in the installed transformers")
    return facts, (facts.language_model_attr if facts else DEFAULT_LM_ATTR), cls


def _load_vlm(transformers: Any, vlm: str, facts: FamilyFacts | None, trust_remote_code: bool,
              allow_pickle: bool) -> Any:
    from .hf import _load_error

    cls = getattr(transformers, facts.model_class) if facts else transformers.AutoModelForImageTextToText
    try:  # dtype "auto": the checkpoint's own precision, so the weights are copied bit for bit
        return cls.from_pretrained(vlm, dtype="auto", trust_remote_code=trust_remote_code,
                                   use_safetensors=None if allow_pickle else True)
    except (OSError, ValueError, ImportError, KeyError) as exc:
        raise _load_error(vlm, exc) from None


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


def _build_lm(transformers: Any, vlm: str, model: Any, cls_name: str, state: dict[str, Any], tied: bool,
              overrides: dict[str, Any]) -> Any:
    """The standalone LM holding the VLM's tensors; built on the meta device, so nothing is copied."""
    import torch

    cls = getattr(transformers, cls_name)
    text = model.config.get_text_config().to_dict()
    skip = {"model_type", "architectures", "transformers_version", "auto_map"}
    config = cls.config_class(**{**{k: v for k, v in text.items() if k not in skip}, **overrides})
    config.tie_word_embeddings = tied
    with torch.device("meta"):
        lm = cls(config)
    expected = set(lm.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise MmstarError(f"{vlm}: its language model does not fit {cls_name} (missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]}); this family cannot be extracted as a plain causal LM")
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
    facts, attr, cls_name = _plan(transformers, vlm, config)
    model = _load_vlm(transformers, vlm, facts, trust_remote_code, allow_pickle)
    state, tied = _lm_state(vlm, model, attr)
    lm = _build_lm(transformers, vlm, model, cls_name, state, tied, facts.backbone_config if facts else {})
    tok = _tokenizer(transformers, vlm, trust_remote_code)
    family = facts.name if facts else config.model_type
    marker = {"kind": "extracted", "extracted": True, "source": vlm, "family": family,
              "model_type": config.model_type, "backbone_class": cls_name, "language_model_attr": attr,
              "tied_embeddings": tied, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "note": "the LVLM's language model after multimodal training, not the original LLM (not the "
                      "paper's S_t)"}
    # written beside the target and renamed into place: a killed extract leaves no half folder
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        lm.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Extracted(out, vlm, family, cls_name, len(state))

