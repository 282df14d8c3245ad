"""The model registry and family facts against the installed transformers; `mmstar models --check`;
the one-line errors for an unknown alias and a family the installed transformers lacks."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from conftest import assert_clean_error, run_cli
from mmstar.evaluators.models.families import FAMILIES
from mmstar.evaluators.models.registry import REGISTRY, resolve_model

# the transformers-native VLM families the issue names; each must have facts
NATIVE = ("internvl", "qwen2_5_vl", "qwen3_vl", "llava_onevision", "llava_next", "glm4v", "mllama", "mistral3",
          "phi4_multimodal", "molmo2", "ovis2", "aya_vision", "deepseek_vl", "smolvlm", "gemma3", "paligemma",
          "idefics3", "qwen2_vl", "llava",
          # built by the tiny builders (evaluators/tiny/); llama4 builds but does not run in transformers 5.24
          "gemma4", "qwen3_vl_moe", "glm4v_moe", "lfm2_vl", "cohere2_vision", "qwen3_5", "minicpmv4_6", "minicpmv4_7",
          "minicpm_ocr", "llama4")
REQUIRED_ALIASES = (
    "llava-ov-0.5b", "llava-ov-7b", "llava-ov-72b", "qwen2.5-vl-3b", "qwen2.5-vl-7b", "qwen2.5-vl-32b",
    "qwen2.5-vl-72b", *[f"qwen3-vl-{s}{t}" for s in ("2b", "4b", "8b", "32b") for t in ("", "-thinking")],
    "internvl3-8b", "internvl3.5-8b", "gemma3-4b", "gemma3-12b", "gemma3-27b", "llama3.2-vision-11b",
    "llama3.2-vision-90b", "glm4.1v-9b-thinking", "mistral-small-3.1", "phi4-multimodal", "idefics3-8b",
    "smolvlm2-2.2b", "paligemma2-3b",
    # the issue-15 follow-up: released checkpoints of the families added to the facts table
    "qwen3-vl-30b-a3b", "qwen3-vl-30b-a3b-thinking", "glm4.5v", "lfm2-vl-1.6b", "command-a-vision", "gemma4-31b",
    "qwen3.5-0.8b", "minicpm-v4.6",
)


def test_registry_covers_the_issue_and_every_family_has_facts():
    assert len(REGISTRY) >= 25
    assert set(REQUIRED_ALIASES) <= set(REGISTRY)
    for e in REGISTRY.values():
        assert e.family in FAMILIES, e.alias
        assert e.lvlm.count("/") == 1, e.alias
        assert e.backbone is None or e.backbone.count("/") == 1, e.alias
        # a missing backbone must say why and what to do instead
        assert e.backbone or "backbone" in e.notes, e.alias
        for switch in e.thinking.values():
            assert isinstance(switch, dict), e.alias
    covered = {t for f in FAMILIES.values() for t in f.model_types}
    assert set(NATIVE) <= covered


def test_registry_and_families_import_no_heavy_package():
    code = ("import sys, mmstar.evaluators.models.registry, mmstar.evaluators.models.families, "
            "mmstar.evaluators.models.modelcheck; "
            "heavy = [m for m in ('torch', 'transformers', 'vllm', 'streamlit') if m in sys.modules]; "
            "assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_facts_match_the_installed_transformers(name):
    transformers = pytest.importorskip("transformers")
    from transformers.models.auto import image_processing_auto as ia
    from transformers.models.auto import modeling_auto as ma
    from transformers.models.auto import processing_auto as pa
    from transformers.models.auto import video_processing_auto as va

    facts = FAMILIES[name]
    for cls in (facts.model_class, facts.processor_class, facts.backbone_class):
        assert cls is None or hasattr(transformers, cls), cls
    for model_type in facts.model_types:
        auto_model = (ma.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES.get(model_type)
                      or ma.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type))
        assert auto_model == facts.model_class
        assert pa.PROCESSOR_MAPPING_NAMES.get(model_type) == facts.processor_class
        # a video processor, or an image processor without a PIL variant, needs torchvision; a family
        # that borrows another's processor (glm4v_moe -> Glm4vProcessor) has no mapping of its own: then
        # the processor class's parts decide (every video processor needs torchvision)
        image = ia.IMAGE_PROCESSOR_MAPPING_NAMES.get(model_type)
        if image is None and model_type not in va.VIDEO_PROCESSOR_MAPPING_NAMES:
            needs_tv = "video_processor" in getattr(transformers, facts.processor_class).get_attributes()
        else:
            needs_tv = model_type in va.VIDEO_PROCESSOR_MAPPING_NAMES or (
                isinstance(image, dict) and "pil" not in image)
        assert needs_tv == ("torchvision" in facts.needs), model_type


# aya_vision's default vision config has 1152 channels over 14 heads, which does not build;
# its released checkpoints use 16 heads
_CONFIG_FIXES = {"aya_vision": {"vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152,
                                                  "num_attention_heads": 16, "intermediate_size": 4304,
                                                  "image_size": 384, "patch_size": 14}}}


def _meta_instance(facts):
    """The family's model built from its default config on the meta device: no memory, no weights."""
    import torch
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type = facts.model_types[0]
    config = CONFIG_MAPPING[model_type](**_CONFIG_FIXES.get(model_type, {}))
    with torch.device("meta"):
        return getattr(transformers, facts.model_class)(config), config


@pytest.mark.parametrize("name", [n for n in sorted(FAMILIES) if FAMILIES[n].backbone_class])
def test_facts_carve_a_standalone_lm_from_a_full_size_instance(name):
    """`mmstar backbone extract`'s plan on the family's default (full-size) config, on the meta device:
    the LM at ``language_model_attr``, adapted as the facts say (layers dropped, embedding rows cut,
    modules left behind), fits the standalone class name for name and shape for shape. Covers the
    families whose tiny checkpoints cannot run (llama4) and the real layer layouts (Mllama's 8
    cross-attention layers of 40 -> a 32-layer Llama)."""
    pytest.importorskip("torch")
    import transformers
    from mmstar.evaluators.models import backbone

    facts = FAMILIES[name]
    model, config = _meta_instance(facts)
    _, attr, cls = backbone._plan(transformers, name, config)
    assert attr == facts.language_model_attr and cls == backbone.backbone_class_for(config, facts)
    lm = model.get_submodule(attr)
    assert hasattr(lm, "embed_tokens") and hasattr(lm, "layers"), type(lm).__name__
    state, tied = backbone._lm_state(name, model, attr)
    state, text = backbone.adapt_lm(state, config.get_text_config().to_dict(), facts)
    standalone = backbone._build_lm(transformers, name, model, cls, state, tied, text)  # raises on any misfit
    assert type(standalone).__name__ == cls
    dropped = len(getattr(config.get_text_config(), facts.backbone_drop_layers)) if facts.backbone_drop_layers else 0
    assert standalone.config.num_hidden_layers == config.get_text_config().num_hidden_layers - dropped
    if name == "mllama":  # Llama-3.2-11B-Vision's layout: 40 text layers, 8 of them cross-attention
        assert standalone.config.num_hidden_layers == 32


def test_unknown_alias_suggests_the_closest(demo_parquet):
    with pytest.raises(Exception, match="did you mean 'qwen3-vl-8b'"):
        resolve_model("qwen3-vl-8")
    proc = run_cli("eval", "--model", "internvl3.5-8", "--data", str(demo_parquet))
    assert_clean_error(proc, "unknown model 'internvl3.5-8'", "did you mean 'internvl3.5-8b'")


def test_models_lists_every_alias_with_its_family_and_backbone():
    proc = run_cli("models")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for e in REGISTRY.values():
        row = next(ln for ln in lines if ln.split()[:1] == [e.alias])
        assert e.family in row and e.lvlm in row and (e.backbone or "-") in row


def _break_family(monkeypatch, family: str) -> None:
    """Stand-in for an older transformers and a processor package that is not installed."""
    broken = dataclasses.replace(FAMILIES[family], model_class="NoSuchVLForConditionalGeneration",
                                 needs=("mmstar_no_such_package",))
    monkeypatch.setitem(FAMILIES, family, broken)


def test_models_check_names_what_is_missing_and_what_to_install(monkeypatch, capsys):
    pytest.importorskip("transformers")
    from mmstar.app.cli import main

    assert main(["models", "--check"]) == 0
    out = capsys.readouterr().out
    assert next(ln for ln in out.splitlines() if ln.startswith("llava ")).endswith("  ok")
    _break_family(monkeypatch, "llava")
    assert main(["models", "--check"]) == 0
    out = capsys.readouterr().out
    row = next(ln for ln in out.splitlines() if ln.startswith("llava "))
    assert "MISSING" in row and "NoSuchVLForConditionalGeneration" in row
    assert "pip install -U transformers" in row and "pip install mmstar_no_such_package" in row
    assert next(ln for ln in out.splitlines() if ln.startswith("gemma3-4b ")).endswith("  ok")
    assert "aliases can run with the installed packages" in out


def test_eval_on_a_family_the_installed_transformers_lacks_is_one_line(monkeypatch, capsys, demo_parquet):
    pytest.importorskip("transformers")
    from mmstar.app.cli import main

    _break_family(monkeypatch, "qwen3-vl")
    code = main(["eval", "--model", "qwen3-vl-8b", "--data", str(demo_parquet), "--out", "/nonexistent"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "qwen3-vl-8b (family qwen3-vl)" in err[0] and "NoSuchVLForConditionalGeneration" in err[0]
    assert "pip install -U transformers" in err[0]
