"""Shared-prefix KV reuse: the same predictions as the plain path, on the trained demo base LLM and
the tiny backbones of four real families, in generation and log-likelihood, batched and batch-1."""

import json
from pathlib import Path

import pytest
from mmstar.evaluators.backends.prefix_cache import attention_window, common_prefix_len

from mmstar.loaders import load_benchmark
from mmstar.prompts import PromptConfig, build_messages

REPO = Path(__file__).resolve().parents[1]
DEMO_BASE = REPO / "data" / "demo-models" / "base"
FAMILIES = ["llava", "qwen2-vl", "gemma3", "idefics3"]


def test_common_prefix_len():
    assert common_prefix_len([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert common_prefix_len([[7, 8], [9]]) == 0
    assert common_prefix_len([[1, 2, 3]]) == 3
    assert common_prefix_len([]) == 0
    assert common_prefix_len([(1, 2, 3, 4), [1, 2, 3, 5], [1, 2, 3, 4, 6]]) == 3  # the candidate is a tuple
    assert common_prefix_len([[5] * 700 + [1], [5] * 700 + [2], [5] * 300]) == 300
    assert common_prefix_len([[5] * 700 + [1], [5] * 699 + [2, 1]]) == 699


def test_attention_window_reads_the_config():
    from transformers import Gemma3TextConfig, LlamaConfig, Qwen2Config

    assert attention_window(LlamaConfig()) is None
    assert attention_window(Qwen2Config(sliding_window=64, use_sliding_window=False)) is None
    assert attention_window(Gemma3TextConfig(sliding_window=64)) == 64


def _requests(bench):
    from mmstar.evaluators.backends.base import Request

    return [Request(build_messages(s, "t", PromptConfig(shots=2)), key=s.index) for s in bench]


def _batched(fn, items, size, *more):
    out = []
    for i in range(0, len(items), size):
        out += fn(items[i:i + size], *(m[i:i + size] for m in more))
    return out


def _compare(path: str, bench, batch_sizes=(8, 1)):
    """Generation and log-likelihood with and without reuse; returns the reuse backend."""
    from mmstar.evaluators.backends.base import GenerationConfig
    from mmstar.evaluators.backends.hf import HFBackend

    gen = GenerationConfig(max_new_tokens=12)
    plain = HFBackend(path, "llm", gen, device="cpu", prefix_cache=False)
    reuse = HFBackend(path, "llm", gen, device="cpu")
    assert plain.prefix is None and reuse.describe()["prefix_cache"] is True
    reqs, letters = _requests(bench), [list(s.options) for s in bench]
    for size in batch_sizes:
        a, b = _batched(plain.generate, reqs, size), _batched(reuse.generate, reqs, size)
        assert [(r.text, r.error, r.prompt_tokens, r.completion_tokens) for r in a] == [
            (r.text, r.error, r.prompt_tokens, r.completion_tokens) for r in b], f"generation, batch {size}"
        la = _batched(plain.rank_letters, reqs, size, letters)
        lb = _batched(reuse.rank_letters, reqs, size, letters)
        assert [r.text for r in la] == [r.text for r in lb], f"log-likelihood, batch {size}"
        assert [r.prompt_tokens for r in la] == [r.prompt_tokens for r in lb]
        for x, y in zip(la, lb):
            assert x.extra["logprobs"] == pytest.approx(y.extra["logprobs"], abs=1e-4)
    return reuse


def test_demo_base_llm_identical_and_prefix_run_once(demo_parquet):
    """The trained demo LLM answers with real letters, so a wrong prefix would change answers."""
    import torch

    torch.set_num_threads(1)
    bench = load_benchmark(demo_parquet)[:10]
    reuse = _compare(str(DEMO_BASE), bench)
    # the 2-shot context is prefilled once for the whole run, batched and batch-1 alike
    assert reuse.prefix.prefills == 1
    assert reuse.prefix.reused_rows >= 4 * len(bench) - 2


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_backbones_identical(family, tiny_pairs, demo_parquet):
    bench = load_benchmark(demo_parquet)[:20]
    reuse = _compare(str(tiny_pairs[family].backbone), bench)
    if family == "gemma3":
        # its sliding window (512 slots) is shorter than these rows: reuse must stand aside
        assert reuse.prefix.window == 512 and reuse.prefix.prefills == 0
    else:
        assert 1 <= reuse.prefix.prefills <= 3 and reuse.prefix.reused_rows > 0


def test_no_shared_prefix_takes_the_plain_path(demo_parquet):
    """0-shot prompts share only the template header: no prefix pass, same answers."""
    from mmstar.evaluators.backends.base import Request
    from mmstar.evaluators.backends.hf import HFBackend

    bench = load_benchmark(demo_parquet)[:8]
    reqs = [Request(build_messages(s, "t", PromptConfig(shots=0))) for s in bench]
    reuse = HFBackend(str(DEMO_BASE), "llm", device="cpu")
    plain = HFBackend(str(DEMO_BASE), "llm", device="cpu", prefix_cache=False)
    assert [r.text for r in reuse.generate(reqs)] == [r.text for r in plain.generate(reqs)]
    assert reuse.prefix.prefills == 0


def test_eval_flag_turns_reuse_off(demo_parquet, tmp_path):
    """--no-prefix-cache gives the same t.jsonl predictions; the manifest records which path ran."""
    from mmstar.app.cli import main

    runs = {}
    for name, extra in (("on", []), ("off", ["--no-prefix-cache"])):
        out = tmp_path / name
        assert main(["eval", "--model", str(DEMO_BASE), "--backbone", str(DEMO_BASE), "--data", str(demo_parquet),
                     "--modes", "t", "--out", str(out), "--no-progress", "--batch-size", "8",
                     "--max-new-tokens", "8", *extra]) == 0
        (manifest,) = out.glob("*/*/manifest.json")
        meta = json.loads(manifest.read_text())
        assert meta["backends"]["llm"]["prefix_cache"] is (name == "on")
        runs[name] = {r["index"]: r["prediction"] for r in map(json.loads, (manifest.parent / "t.jsonl").open())}
    assert runs["on"] == runs["off"] and len(runs["on"]) == 36


def test_curation_filter_same_with_and_without_reuse(demo_parquet, tmp_path):
    """The filter's log-likelihood inspector: identical choices and kept set either way."""
    from mmstar.app.cli import main

    choices = {}
    for name, extra in (("on", []), ("off", ["--no-prefix-cache"])):
        out = tmp_path / name
        assert main(["curate", "filter", str(demo_parquet), "--llm", str(DEMO_BASE), "--shots", "2", "--out", str(out),
                     "--scoring", "loglik", "--batch-size", "8", "--max-hits", "0", "--no-progress", *extra]) == 0
        (preds,) = out.glob("runs/*/pool/t.jsonl")
        choices[name] = {r["index"]: r["choice"] for r in map(json.loads, preds.open())}
        assert (out / "kept.parquet").exists()
    assert choices["on"] == choices["off"] and len(choices["on"]) == 36


def test_a_model_that_wants_its_own_cache_takes_the_plain_path(demo_parquet):
    """generate() refuses a caller's cache when the generation config names a cache implementation."""
    from mmstar.evaluators.backends.hf import HFBackend

    bench = load_benchmark(demo_parquet)[:4]
    reqs = _requests(bench)
    plain = HFBackend(str(DEMO_BASE), "llm", device="cpu", prefix_cache=False)
    reuse = HFBackend(str(DEMO_BASE), "llm", device="cpu")
    for backend in (plain, reuse):
        backend.model.generation_config.cache_implementation = "static"
    assert [r.text for r in reuse.generate(reqs)] == [r.text for r in plain.generate(reqs)]
    assert reuse.prefix.prefills == 0 and all(r.error is None for r in reuse.generate(reqs))


def _every_family():
    from mmstar.evaluators.models.tiny import FAMILIES as ALL
    from mmstar.evaluators.models.tiny import SPECS

    return [f for f in ALL if not SPECS[f].known_failure]


@pytest.mark.slow
@pytest.mark.parametrize("family", _every_family())
def test_every_tiny_family_backbone_identical_with_reuse(family, demo_parquet, tmp_path):
    """Every family's standalone backbone (mode t): reuse on equals reuse off, generation and
    log-likelihood; families whose cache cannot be copied per row (linear attention, convolution
    state) or whose window is too short must stand aside rather than fail."""
    import torch
    from mmstar.evaluators.models.tiny import build_tiny_pair

    torch.set_num_threads(1)
    pair = build_tiny_pair(family, tmp_path)
    reuse = _compare(str(pair.backbone), load_benchmark(demo_parquet)[:8], batch_sizes=(4, 1))
    assert reuse.prefix.prefills <= 3
