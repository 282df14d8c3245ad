"""The vLLM backend on CPU, in the separate environment named by MMSTAR_VLLM_PYTHON (built by
scripts/vllm_cpu_tier.sh), compared with the HF backend on the same checkpoints: the text-only path
(mode t and the curation filter) on the demo base LLM, and the image path (v, wv, t) on a tiny
Idefics3, the one tiny family whose vLLM model code imports without torchvision (head size 32, which
vLLM's CPU attention supports)."""

import json
import os
import subprocess

import pytest
from mmstar.data import DEMO_MODELS, DEMO_TEST

VLLM_PYTHON = os.environ.get("MMSTAR_VLLM_PYTHON")
pytestmark = pytest.mark.skipif(not VLLM_PYTHON, reason="set MMSTAR_VLLM_PYTHON (scripts/vllm_cpu_tier.sh)")


def _records(folder, mode="t"):
    (path,) = list(folder.glob(f"**/{mode}.jsonl"))
    return {r["index"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_vllm_matches_hf_on_mode_t_and_the_filter(tmp_path):
    from mmstar.app.cli import main

    base = str(DEMO_MODELS / "base")
    common = ["--model", base, "--backbone", base, "--modes", "t", "--shots", "0", "--data", str(DEMO_TEST),
              "--limit", "90", "--no-progress", "--max-new-tokens", "8"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    proc = subprocess.run([VLLM_PYTHON, "-m", "mmstar", "eval", "--backend", "vllm", *common, "--batch-size", "90",
                           "--out", str(tmp_path / "vllm")], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert main(["eval", *common, "--batch-size", "16", "--out", str(tmp_path / "hf")]) == 0
    v, h = _records(tmp_path / "vllm"), _records(tmp_path / "hf")
    assert v.keys() == h.keys() and len(v) == 90
    assert all(v[i]["prediction"] == h[i]["prediction"] for i in v)
    assert all(v[i]["prompt_tokens"] == h[i]["prompt_tokens"] for i in v)
    filt = subprocess.run([VLLM_PYTHON, "-m", "mmstar", "curate", "filter", str(DEMO_TEST), "--llm", base,
                           "--backend", "vllm", "--shots", "0", "--max-new-tokens", "4", "--batch-size", "360",
                           "--no-progress", "--out", str(tmp_path / "filter")], capture_output=True, text=True,
                          env=env, timeout=900)
    assert filt.returncode == 0, filt.stderr[-3000:]
    assert (tmp_path / "filter" / "hits.parquet").exists()
    # the 2-shot context overflows this tiny model's 512-token window: each request fails alone, in `error`
    long = subprocess.run([VLLM_PYTHON, "-m", "mmstar", "eval", "--backend", "vllm", *common[:6], "--shots", "2",
                           "--data", str(DEMO_TEST), "--limit", "4", "--no-progress", "--out", str(tmp_path / "long")],
                          capture_output=True, text=True, env=env, timeout=900)
    assert long.returncode == 0, long.stderr[-3000:]
    assert all("exceeds the model's context of 512" in r["error"] for r in _records(tmp_path / "long").values())


def test_vllm_image_path_matches_hf_on_tiny_idefics3(tmp_path, demo_parquet):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}

    def run(*args):
        proc = subprocess.run([VLLM_PYTHON, "-m", "mmstar", *args], capture_output=True, text=True, env=env,
                              timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]

    # built and run by the vLLM environment's own transformers: HF and vLLM then share one image processor
    run("tiny-models", str(tmp_path / "models"), "--family", "idefics3")
    vlm, lm = tmp_path / "models" / "tiny-idefics3", tmp_path / "models" / "tiny-idefics3-backbone"
    common = ["--model", str(vlm), "--backbone", str(lm), "--data", str(demo_parquet), "--no-progress",
              "--max-new-tokens", "6", "--batch-size", "36"]
    run("eval", *common, "--out", str(tmp_path / "hf"))
    run("eval", "--backend", "vllm", *common, "--out", str(tmp_path / "vllm"))
    runs = {name: {m: _records(tmp_path / name, m) for m in ("v", "wv", "t")} for name in ("hf", "vllm")}
    for mode in ("v", "wv", "t"):
        hf, vl = runs["hf"][mode], runs["vllm"][mode]
        assert hf.keys() == vl.keys() and len(hf) == 36
        assert all(r["error"] is None for r in vl.values())
        for key in ("prediction", "prompt_tokens", "completion_tokens"):
            assert [vl[i][key] for i in hf] == [hf[i][key] for i in hf], (mode, key)
    v, wv = runs["vllm"]["v"], runs["vllm"]["wv"]
    # the image reached the model: 7 more prompt tokens (4 image tokens + markers) and other answers
    assert all(v[i]["prompt_tokens"] == wv[i]["prompt_tokens"] + 7 for i in v)
    assert sum(v[i]["prediction"] != wv[i]["prediction"] for i in v) >= 5
