"""Every tiny VLM family through v, wv and t with `mmstar eval` (CPU, offline).

One parametrized test per family (``mmstar.evaluators.models.tiny.FAMILIES``): the checkpoint is built
from transformers' config classes with the family's real processor class, reloaded through
``from_pretrained``, and checked for what MMStar's three modes depend on:
- image placeholder tokens and pixel values appear only in the v request; wv carries neither;
- the image reaches the model (two images, same text: different next-token logits);
- a batch mixing rows with and without an image answers as the rows do alone;
- t runs the LLM backbone, a standalone ``*ForCausalLM``, on a prompt without image tokens, and
  the backbone is the VLM's own language model (same logits on the wv prompt), cut out by the real
  extractor (``backbone.py``, as ``mmstar backbone extract``) into the class the family facts give;
- batched generation gives the same predictions as batch size 1, in every mode.
"""

from __future__ import annotations

import dataclasses
import json
import time
from importlib.metadata import version

import pytest
from conftest import assert_clean_error, run_cli
from mmstar.app.cli import main
from mmstar.evaluators.models.tiny import FAMILIES, SPECS, build_tiny_pair

from mmstar.loaders import load_benchmark
from mmstar.prompts import PromptConfig, build_messages

LIMIT = 4  # samples per eval run: enough for two batches of 2 and a ragged left-padding mix
MAX_NEW = 4
# the families whose whole test takes more than ~10 s on a 2-core machine (see README)
SLOW: set[str] = set()


def _params():
    params = []
    for family in FAMILIES:
        marks = [pytest.mark.slow] if family in SLOW else []
        if SPECS[family].known_failure:  # strict: a fixed upstream release fails here until it is updated
            marks.append(pytest.mark.xfail(raises=AttributeError, strict=True, reason=SPECS[family].known_failure))
        params.append(pytest.param(family, marks=marks, id=family))
    return params


def _image_token_ids(backend) -> set[int]:
    """The ids that stand for image content, as the model config and the processor name them."""
    found = set()
    for obj in (backend.model.config, backend.processor, backend.tokenizer):
        for attr in ("image_token_id", "image_token_index"):
            value = getattr(obj, attr, None)
            if isinstance(value, int):
                found.add(value)
    return found


def _as_model_dtype(enc, model):
    """Pixel tensors in the model's dtype, as the HF backend passes them (Llama 4's processor gives bf16)."""
    return {k: v.to(model.dtype) if "pixel" in k and v.is_floating_point() else v for k, v in enc.items()}


def _eval(pair, data, out, batch_size: int):
    code = main(["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", str(data),
                 "--out", str(out), "--no-progress", "--max-new-tokens", str(MAX_NEW), "--limit", str(LIMIT),
                 "--batch-size", str(batch_size)])
    assert code == 0
    (run_dir,) = [p.parent for p in out.glob("*/*/manifest.json")]
    return run_dir


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def _check_requests(pair, samples) -> None:
    import torch
    from mmstar.evaluators.backends.base import GenerationConfig, Request
    from mmstar.evaluators.backends.hf import HFBackend
    from mmstar.evaluators.models.backbone import backbone_class_for
    from mmstar.evaluators.models.families import facts_for_model_type

    vlm = HFBackend(str(pair.vlm), "vlm", GenerationConfig(max_new_tokens=MAX_NEW), device="cpu")
    image_ids = _image_token_ids(vlm)
    assert image_ids, "no image token id found on the config or processor"
    cfg = PromptConfig()
    v = vlm._encode([vlm._materialise(build_messages(samples[0], "v", cfg))])
    wv = vlm._encode([vlm._materialise(build_messages(samples[0], "wv", cfg))])
    assert any("pixel" in k for k in v), list(v)
    assert image_ids & set(v["input_ids"][0].tolist())
    assert not any("pixel" in k for k in wv), list(wv)
    assert not image_ids & set(wv["input_ids"][0].tolist())
    # the image reaches the model: same text, another image -> other next-token logits
    other = dataclasses.replace(samples[0], image=samples[1].image)
    v2 = vlm._encode([vlm._materialise(build_messages(other, "v", cfg))])
    with torch.inference_mode():
        a, b = (vlm.model(**_as_model_dtype(enc, vlm.model)).logits[0, -1] for enc in (v, v2))
    assert not torch.allclose(a, b), "the image does not change the logits"

    # a batch mixing image and no-image rows (a server's batch can) answers as separate batches
    mixed = [Request(messages=build_messages(samples[0], "v", cfg)),
             Request(messages=build_messages(samples[1], "wv", cfg))]
    together = vlm.generate(mixed)
    assert [r.error for r in together] == [None, None]
    assert [r.text for r in together] == [vlm.generate([r])[0].text for r in mixed]

    llm = HFBackend(str(pair.backbone), "llm", device="cpu")
    facts = facts_for_model_type(vlm.model.config.model_type)
    assert facts is not None and facts.name == pair.family
    assert type(llm.model).__name__ == backbone_class_for(vlm.model.config, facts), type(llm.model).__name__
    assert not hasattr(llm.model.config, "vision_config")
    t = llm._encode([build_messages(samples[0], "t", PromptConfig(shots=2))])
    assert not any("pixel" in k for k in t)
    assert not image_ids & set(t["input_ids"][0].tolist())
    text = llm.tokenizer.decode(t["input_ids"][0])
    assert "You are a helpful assistant" in text and "oepn the door" in text  # the 2-shot context
    assert "Question: " + samples[0].question in text
    # the backbone is the VLM's own language model: on the wv prompt both give the same logits
    with torch.inference_mode():
        ids = wv["input_ids"]
        # causal attention on both sides (PaliGemma's prompt is a bidirectional prefix in the VLM)
        vlm_logits = vlm.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, -1]
        lm_logits = llm.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, -1]
    torch.testing.assert_close(lm_logits, vlm_logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", _params())
def test_family_runs_v_wv_t_and_batching_is_invisible(family, demo_parquet, tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    for module in SPECS[family].needs:
        pytest.importorskip(module, reason=f"the {family} processor needs {module}")
    start = time.perf_counter()
    pair = build_tiny_pair(family, tmp_path / "models")
    samples = list(load_benchmark(demo_parquet))[:2]
    _check_requests(pair, samples)

    batched = _eval(pair, demo_parquet, tmp_path / "b2", 2)
    single = _eval(pair, demo_parquet, tmp_path / "b1", 1)
    for mode in ("v", "wv", "t"):
        a, b = _lines(batched / f"{mode}.jsonl"), _lines(single / f"{mode}.jsonl")
        assert sorted(r["index"] for r in a) == sorted(r["index"] for r in b) and len(a) == LIMIT
        assert all(r["error"] is None for r in a + b), [r["error"] for r in a + b]
        by_index = {r["index"]: r["prediction"] for r in b}
        assert all(r["prediction"] == by_index[r["index"]] for r in a), mode
    manifest = json.loads((batched / "manifest.json").read_text())
    assert manifest["backends"]["llm"]["model"] == str(pair.backbone)
    assert manifest["backends"]["vlm"]["model"] == str(pair.vlm)
    scores = json.loads((batched / "scores.json").read_text())
    assert all(scores[k] is not None for k in ("S_v", "S_wv", "S_t", "MG", "ML"))
    print(f"\n{family}: {time.perf_counter() - start:.1f} s")


def test_tiny_specs_take_their_family_facts_from_families_py():
    """The builders hold tokenizer conventions and sizes; classes, needs and known failures are the facts'."""
    from mmstar.evaluators.models.families import FAMILIES as FACTS

    assert set(SPECS) <= set(FACTS)
    for name, spec in SPECS.items():
        assert spec.facts is FACTS[name] and spec.needs == FACTS[name].needs
        assert spec.known_failure == FACTS[name].failure_now(version("transformers"))


def test_version_gated_facts_follow_the_installed_transformers():
    """A fault fixed upstream, or a head scaling a release starts to apply, is a fact with a version:
    llama4 ran into an AttributeError before 5.25; Aya Vision's head applies logit_scale from 5.25."""
    from mmstar.evaluators.models.families import FAMILIES as FACTS

    llama4, aya, cohere = FACTS["llama4"], FACTS["aya-vision"], FACTS["cohere2-vision"]
    assert llama4.failure_now("5.24.0") == llama4.known_failure != ""
    assert llama4.failure_now("5.25.0") == "" and llama4.failure_now("6.0") == ""
    assert aya.backbone_overrides("5.24.3") == {"logit_scale": 1.0}
    assert aya.backbone_overrides("5.25.0") == {}
    assert cohere.backbone_overrides("5.25.0") == {"logit_scale": 1.0}  # its 5.25 head still does not scale


def test_tiny_models_command_builds_a_comma_list_of_families(tmp_path, capsys):
    pytest.importorskip("torch")
    assert main(["tiny-models", str(tmp_path), "--family", "qwen2.5-vl,mllama", "--family", "deepseek-vl"]) == 0
    for family, model_type in (("qwen2.5-vl", "qwen2_5_vl"), ("mllama", "mllama"), ("deepseek-vl", "deepseek_vl")):
        config = json.loads((tmp_path / f"tiny-{family}" / "config.json").read_text())
        assert config["model_type"] == model_type
        backbone = json.loads((tmp_path / f"tiny-{family}-backbone" / "config.json").read_text())
        assert backbone["architectures"][0].endswith("ForCausalLM") and "vision_config" not in backbone
    assert "mllama: LVLM" in capsys.readouterr().out


def test_tiny_models_command_names_an_unknown_family(tmp_path):
    proc = run_cli("tiny-models", str(tmp_path), "--family", "no-such-vlm")
    assert_clean_error(proc, "no-such-vlm", "llava")


def test_paligemma_without_a_chat_template_refuses_wv_in_one_line(demo_parquet, tmp_path, capsys):
    """PaliGemma's processor refuses text-only input; wv is rendered by the checkpoint's chat template
    and tokenised alone. A checkpoint without a template gets one line saying what to do instead."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    pair = build_tiny_pair("paligemma", tmp_path / "models")
    for name in ("chat_template.jinja", "chat_template.json"):
        (pair.vlm / name).unlink(missing_ok=True)
    for name in ("processor_config.json", "tokenizer_config.json"):
        path = pair.vlm / name
        if path.exists():
            config = json.loads(path.read_text())
            config.pop("chat_template", None)
            path.write_text(json.dumps(config))
    capsys.readouterr()  # the build's progress bars
    code = main(["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", str(demo_parquet),
                 "--out", str(tmp_path / "runs"), "--no-progress", "--modes", "wv", "--limit", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1, err
    assert "paligemma" in err[0] and "chat template" in err[0] and "--modes v,t" in err[0]


def test_paligemma_wv_is_the_v_prompt_without_its_image_tokens(demo_parquet, tmp_path, monkeypatch):
    """The tokenizer-only text path frames the prompt exactly as the processor does with an image
    (<bos> text "\\n"), all of it the bidirectional prefix; a family marked text_only="none" refuses."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from mmstar.evaluators.backends import hf
    from mmstar.evaluators.models.families import FAMILIES as FACTS

    pair = build_tiny_pair("paligemma", tmp_path / "models")
    sample = load_benchmark(demo_parquet)[0]
    vlm = hf.HFBackend(str(pair.vlm), "vlm", device="cpu")
    v, wv = (vlm._encode([vlm._materialise(build_messages(sample, mode, PromptConfig()))]) for mode in ("v", "wv"))
    image_id = vlm.model.config.image_token_id
    assert [t for t in v["input_ids"][0].tolist() if t != image_id] == wv["input_ids"][0].tolist()
    assert wv["token_type_ids"].sum() == 0 and v["token_type_ids"].sum() == 0

    monkeypatch.setattr(hf, "facts_for_model_type",
                        lambda model_type: dataclasses.replace(FACTS["paligemma"], text_only="none"))
    refusing = hf.HFBackend(str(pair.vlm), "vlm", device="cpu")
    with pytest.raises(hf.MmstarError, match="paligemma processor takes no text-only input"):
        refusing._encode([build_messages(sample, "wv", PromptConfig())])
