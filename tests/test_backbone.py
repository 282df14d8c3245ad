"""`mmstar backbone extract`: an LVLM's language model as a standalone causal LM, proven on tiny
checkpoints of real families (logits equal the LVLM's text-only logits), run through `mmstar eval`
mode t and labelled "extracted" in the manifest and leaderboard; one-line errors. The tiny pairs'
own backbones are cut out by the same extractor (in memory): extracting the saved tiny VLM gives them."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import run_cli

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    torch.set_num_threads(1)
    return tmp_path_factory.mktemp("tiny-extract")


def _pair(family: str, root):
    from mmstar.evaluators.models.tiny import build_tiny_pair

    if not (root / f"tiny-{family}").exists():
        build_tiny_pair(family, root)
    return root / f"tiny-{family}"


def _text_logits_equal(vlm_dir, lm_dir) -> None:
    from mmstar.evaluators.models.families import facts_for_model_type

    # the family's own class: Phi-4-multimodal is a causal LM, not an image-text-to-text class
    facts = facts_for_model_type(transformers.AutoConfig.from_pretrained(vlm_dir).model_type)
    vlm = getattr(transformers, facts.model_class).from_pretrained(vlm_dir).eval()
    lm = transformers.AutoModelForCausalLM.from_pretrained(lm_dir).eval()
    tok = transformers.AutoTokenizer.from_pretrained(lm_dir)
    ids = tok(["Question: What colour is the shape? Options: A: red, B: green"], return_tensors="pt").input_ids
    with torch.inference_mode():
        a, b = vlm(input_ids=ids).logits, lm(input_ids=ids).logits
    assert a.shape == b.shape
    # the same tensors in the same order give equal logits (bit-equal in most families; PaliGemma's
    # path rounds differently, ~1e-7)
    assert torch.allclose(a, b, rtol=0, atol=1e-5), (a - b).abs().max()


# qwen2-vl / qwen2.5-vl: M-RoPE text model saved as a plain Qwen2; qwen3-vl: interleaved M-RoPE saved
# as Qwen3; glm4v: glm4v_text saved as Glm4; idefics3: the LM lives at model.text_model; aya-vision /
# cohere2-vision: Cohere2 with the head scaling the VLM does not apply; paligemma: Gemma2 text;
# qwen3-vl-moe: Qwen3MoE with norm_topk_prob; glm4v-moe: Glm4Moe; qwen3.5 / minicpm-*: Qwen3.5 hybrid
# attention; lfm2-vl: LFM2 convolutions; gemma4: per-layer inputs. The facts' adaptations: mllama
# (cross-attention layers and 8 embedding rows dropped), molmo2 (128 image-token rows dropped),
# phi4-multimodal (image/audio embedders left behind). Families the tiny builders do not (yet) have
# are skipped. llama4 builds but cannot run in transformers 5.24 (see its facts), so it is not here.
EXTRACTABLE = ["qwen2-vl", "qwen2.5-vl", "qwen3-vl", "idefics3", "gemma3", "internvl", "llava-onevision", "llava-next",
               "glm4v", "mistral3", "aya-vision", "paligemma", "ovis2", "deepseek-vl", "idefics2", "smolvlm",
               "minicpm-v4.6", "minicpm-v4.7", "minicpm-ocr", "gemma4", "qwen3-vl-moe", "glm4v-moe", "lfm2-vl",
               "cohere2-vision", "qwen3.5", "mllama", "molmo2", "phi4-multimodal"]


@pytest.mark.parametrize("family", EXTRACTABLE)
def test_extract_gives_a_causal_lm_with_the_vlms_text_logits(family, tiny_root, tmp_path):
    from mmstar.evaluators.models.backbone import MARKER, extract_backbone
    from mmstar.evaluators.models.families import FAMILIES as FAMILY_FACTS
    from mmstar.evaluators.models.tiny import FAMILIES as TINY

    if family not in TINY:
        pytest.skip(f"no tiny {family} builder in this checkout")
    vlm_dir = _pair(family, tiny_root)
    res = extract_backbone(str(vlm_dir), tmp_path / "lm")
    files = {p.name for p in res.out.iterdir()}
    assert "model.safetensors" in files and MARKER in files and "config.json" in files
    assert not any(n.endswith(".bin") for n in files)
    marker = json.loads((res.out / MARKER).read_text())
    assert marker["kind"] == "extracted" and marker["source"] == str(vlm_dir)
    assert family in FAMILY_FACTS and marker["family"] == family
    # Llama-3.2-Vision and Phi-4-multimodal froze their LM: the extraction is the original LLM
    frozen = family in ("mllama", "phi4-multimodal")
    assert marker["lm_frozen"] is frozen and ("reproduces the original" in marker["note"]) is frozen
    tok = transformers.AutoTokenizer.from_pretrained(res.out)
    # the LVLM's template travels with the tokenizer, unless the facts say the LM takes none (PaliGemma)
    assert bool(tok.chat_template) is FAMILY_FACTS[family].backbone_chat_template
    _text_logits_equal(vlm_dir, res.out)
    assert not list(tmp_path.glob(".lm.tmp-*"))  # no temp folder left behind
    _same_model(res.out, vlm_dir.parent / f"tiny-{family}-backbone")


def _same_model(a, b) -> None:
    """One extractor: the CLI's extraction of a saved tiny VLM and the tiny pair's backbone (cut out of
    the model in memory) hold the same tensors under the same config."""
    from safetensors.torch import load_file

    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    ca, cb = (json.loads((d / "config.json").read_text()) for d in (a, b))
    assert ca == cb


@pytest.mark.slow  # two `mmstar` processes that load models: ~20 s here
def test_cli_extract_then_eval_t_is_labelled_extracted(tiny_root, tmp_path, demo_parquet):
    vlm_dir = _pair("llava", tiny_root)
    out = tmp_path / "llava-lm"
    proc = run_cli("backbone", "extract", str(vlm_dir), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "LlamaForCausalLM" in proc.stdout
    _text_logits_equal(vlm_dir, out)
    runs = tmp_path / "runs"
    proc = run_cli("eval", "--model", str(vlm_dir), "--backbone", str(out), "--modes", "t", "--data",
                   str(demo_parquet), "--limit", "6", "--out", str(runs), "--no-progress", "--batch-size", "3")
    assert proc.returncode == 0, proc.stderr
    run_dir = next(runs.glob("*/*"))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["backbone_kind"] == "extracted" and manifest["backbone_extracted_from"] == str(vlm_dir)
    lines = [json.loads(x) for x in (run_dir / "t.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in lines) == sorted({r["index"] for r in lines}) and len(lines) == 6
    assert all(r["error"] is None for r in lines)
    csv_path = tmp_path / "lb.csv"
    proc = run_cli("leaderboard", str(run_dir), "--csv", str(csv_path))
    assert proc.returncode == 0, proc.stderr
    assert "extracted backbone" in proc.stdout
    row = next(csv.DictReader(csv_path.open()))
    assert row["S_t_kind"] == "extracted"


def test_leaderboard_labels_an_extracted_s_t(tmp_path):
    from mmstar.metrics.leaderboard import build_rows, format_table

    from mmstar.runs import open_run

    run_dir = tmp_path / "m" / "b"
    run_dir.mkdir(parents=True)
    rec = {"index": 0, "prediction": "A", "answer": "A", "category": "math", "l2_category": "geometry",
           "error": None, "question": "q\nOptions: A: 1, B: 2", "options": {"A": "1", "B": "2"}}
    (run_dir / "t.jsonl").write_text(json.dumps(rec) + "\n")
    (run_dir / "manifest.json").write_text(json.dumps({"model_label": "m", "benchmark": "b",
                                                       "backbone_kind": "extracted"}))
    rows = build_rows([open_run(run_dir)])
    assert rows[0]["S_t_kind"] == "extracted"
    assert "S_t from an extracted backbone" in format_table(rows)
    (run_dir / "manifest.json").write_text(json.dumps({"model_label": "m", "benchmark": "b"}))
    assert build_rows([open_run(run_dir)])[0]["S_t_kind"] is None


def _one_line_error(capsys, *argv: str) -> str:
    from mmstar.app.cli import main

    assert main(list(argv)) == 2
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if not ln.startswith("warning:")]
    assert len(err) == 1, err
    return err[0]


def test_extract_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # a vision-only model: nothing to extract
    vision = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=16,
        patch_size=8))
    vision.save_pretrained(tmp_path / "clip")
    line = _one_line_error(capsys, "backbone", "extract", str(tmp_path / "clip"), "--out", str(tmp_path / "o1"))
    assert "has no language-model part" in line and "clip_vision_model" in line
    # a text-only LLM: nothing to cut out, use it as it is
    llm = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2))
    llm.save_pretrained(tmp_path / "llm")
    line = _one_line_error(capsys, "backbone", "extract", str(tmp_path / "llm"), "--out", str(tmp_path / "o2"))
    assert "already a text-only causal LM" in line
    # offline and not a folder
    line = _one_line_error(capsys, "backbone", "extract", "no-such-org/no-such-vlm", "--out", str(tmp_path / "o3"))
    assert "no-such-org/no-such-vlm" in line and "not a local folder" in line
    # a non-empty --out is not overwritten silently
    (tmp_path / "o4").mkdir()
    (tmp_path / "o4" / "keep.txt").write_text("x")
    line = _one_line_error(capsys, "backbone", "extract", str(tmp_path / "llm"), "--out", str(tmp_path / "o4"))
    assert "not empty" in line and (tmp_path / "o4" / "keep.txt").exists()


def _tiny_mllama_config():
    return transformers.MllamaConfig(
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                       "num_global_layers": 1, "attention_heads": 2, "image_size": 16, "patch_size": 8,
                       "vision_output_dim": 32, "intermediate_layers_indices": [0]},
        text_config={"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "num_key_value_heads": 2, "cross_attention_layers": [1]})


def test_extract_refuses_a_family_the_facts_mark_unextractable(tmp_path, capsys, monkeypatch):
    """A family whose facts name no standalone class is refused from the config alone, in one line."""
    import dataclasses

    from mmstar.evaluators.models import backbone
    from mmstar.evaluators.models.families import FAMILIES as FAMILY_FACTS

    unextractable = dataclasses.replace(FAMILY_FACTS["mllama"], backbone_class=None,
                                        notes="no plain causal LM inside. More words")
    monkeypatch.setattr(backbone, "facts_for_model_type", lambda model_type: unextractable)
    _tiny_mllama_config().save_pretrained(tmp_path / "mllama")
    line = _one_line_error(capsys, "backbone", "extract", str(tmp_path / "mllama"), "--out", str(tmp_path / "o"))
    assert "family mllama has no standalone language model to extract: no plain causal LM inside" in line
    assert not (tmp_path / "o").exists()


def test_extract_refuses_a_text_config_the_adaptation_does_not_fit(tmp_path, capsys):
    """Molmo2 is a Qwen3 only with Qwen3-style qk norm and no norm-after; another text config (an
    OLMo-based Molmo2) is refused by name instead of saved as a Qwen3 that computes something else."""
    config = transformers.Molmo2Config(text_config={"qk_norm_type": "olmo", "norm_after": True})
    config.save_pretrained(tmp_path / "molmo2")
    line = _one_line_error(capsys, "backbone", "extract", str(tmp_path / "molmo2"), "--out", str(tmp_path / "o"))
    assert "family molmo2" in line and "Qwen3ForCausalLM" in line and "'qk_norm_type': 'olmo'" in line
    assert not (tmp_path / "o").exists()
