"""The OpenAI-compatible backend against a real local HTTP server serving tiny HF checkpoints."""

import json

import pytest
from mmstar.app.cli import main
from mmstar.evaluators.backends.base import GenerationConfig
from mmstar.evaluators.backends.hf import HFBackend
from mmstar.evaluators.backends.registry import factory
from mmstar.evaluators.backends.serve import make_server, serve_in_thread
from mmstar.evaluators.run.runner import EvalConfig, run_eval

from mmstar.loaders import load_benchmark

pytest.importorskip("httpx")


@pytest.fixture
def server(tiny_pairs):
    def start(fail_first=()):
        pair = tiny_pairs["llava"]
        gen = GenerationConfig(max_new_tokens=6)
        models = {"tiny-llava": HFBackend(str(pair.vlm), "vlm", gen, device="cpu"),
                  "tiny-llava-backbone": HFBackend(str(pair.backbone), "llm", gen, device="cpu")}
        srv = make_server(models, fail_first=fail_first)
        stops.append(serve_in_thread(srv))
        return srv, f"http://127.0.0.1:{srv.server_address[1]}/v1"

    stops = []
    yield start
    for stop in stops:
        stop()


def _api(url: str, retries: int):
    """The openai backend from the registry, retrying fast (a test server answers at once)."""
    return factory("openai", None, {"base_url": url, "max_retries": retries, "backoff": 0.01})


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_openai_backend_matches_hf_through_429_and_500(server, tiny_pairs, demo_parquet, tmp_path, monkeypatch):
    srv, url = server(fail_first=(429, 500, 503, 429))
    monkeypatch.setenv("MY_KEY", "sk-test-secret-123")
    common = ["--data", str(demo_parquet), "--no-progress", "--max-new-tokens", "6", "--limit", "12"]
    assert main(["eval", "--model", "tiny-llava", "--backbone", "tiny-llava-backbone", "--backend", "openai",
                 "--base-url", url, "--api-key-env", "MY_KEY", "--concurrency", "4", "--out", str(tmp_path / "api"),
                 *common]) == 0
    pair = tiny_pairs["llava"]
    assert main(["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--out", str(tmp_path / "hf"),
                 *common]) == 0
    assert srv.counters["failed_on_purpose"] == 4
    (api_dir,) = [p.parent for p in (tmp_path / "api").glob("*/*/manifest.json")]
    (hf_dir,) = [p.parent for p in (tmp_path / "hf").glob("*/*/manifest.json")]
    for mode in ("v", "wv", "t"):
        api, hf = _lines(api_dir / f"{mode}.jsonl"), _lines(hf_dir / f"{mode}.jsonl")
        assert all(r["error"] is None for r in api)
        assert {r["index"]: r["prediction"] for r in api} == {r["index"]: r["prediction"] for r in hf}, mode
        assert all(r["prompt_tokens"] > 0 for r in api)
    for path in api_dir.iterdir():
        assert "sk-test-secret-123" not in path.read_text()
    assert json.loads((api_dir / "manifest.json").read_text())["backends"]["vlm"]["api_key_env"] == "MY_KEY"


def test_failures_go_to_error_and_are_retried_on_resume(server, demo_parquet, tmp_path):
    bench = load_benchmark(demo_parquet).limit(5)
    config = EvalConfig(model="tiny-llava", backbone=None, modes=("wv",), backend="openai", progress=False,
                        gen=GenerationConfig(max_new_tokens=6))
    _srv, bad_url = server(fail_first=(500,) * 100)
    run_dir, scores = run_eval(bench, config, tmp_path, _api(bad_url, 1))
    lines = _lines(run_dir / "wv.jsonl")
    assert len(lines) == 5 and all(r["prediction"] == "" and "HTTP 500" in r["error"] for r in lines)
    assert scores["wv"]["errors"] == 5 and scores["wv"]["unparsed"] == 0
    # a 404 (unknown model) is not retried
    _srv2, good_url = server()
    run_dir, _ = run_eval(bench, config, tmp_path, _api(good_url, 1))
    lines = _lines(run_dir / "wv.jsonl")
    assert sorted(r["index"] for r in lines) == [0, 1, 2, 3, 4] and all(r["error"] is None for r in lines)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["modes"]["wv"]["retried_errors"] == 5


def test_unknown_model_is_not_retried(server, demo_parquet, tmp_path):
    srv, url = server()
    bench = load_benchmark(demo_parquet).limit(2)
    config = EvalConfig(model="no-such-model", backbone=None, modes=("wv",), backend="openai", progress=False)
    run_dir, _ = run_eval(bench, config, tmp_path, _api(url, 3))
    lines = _lines(run_dir / "wv.jsonl")
    assert all("HTTP 404" in r["error"] and "after 1 attempt" in r["error"] for r in lines)
    assert srv.counters["requests"] == 2
