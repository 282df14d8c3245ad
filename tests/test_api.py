"""The Python API: ``mmstar.evaluate``, ``mmstar.open_run`` and ``mmstar.leaderboard``.

The README's "Python API" block is executed as written (a notebook user copies it), and the API's
run is the CLI's run: the same predictions, the same scores, the same folder layout."""

import json
import re
import subprocess
import sys

import pytest
from conftest import REPO, assert_clean_error, run_cli

import mmstar
from mmstar.errors import MmstarError


def _readme_block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """The README block, run in a fresh folder; its namespace afterwards."""
    pytest.importorskip("torch")
    from mmstar.data import DEMO_MODELS

    if not (DEMO_MODELS / "clean").exists():
        pytest.skip("the bundled demo models are not built")
    cwd = tmp_path_factory.mktemp("notebook")
    code = _readme_block()
    namespace: dict = {}
    import os

    old = os.getcwd()
    os.chdir(cwd)
    try:
        exec(compile(code, "README.md (Python API)", "exec"), namespace)  # noqa: S102  the README's own code
    finally:
        os.chdir(old)
    return cwd, namespace


def test_readme_python_api_block_runs_and_its_figures_agree(readme_run):
    cwd, ns = readme_run
    result, board = ns["result"], ns["board"]
    run_dir = cwd / result.run_dir
    assert run_dir.is_dir() and {p.name for p in run_dir.glob("*.jsonl")} == {"v.jsonl", "wv.jsonl", "t.jsonl"}
    on_disk = json.loads((run_dir / "scores.json").read_text())
    for key in ("S_v", "S_wv", "S_t", "MG", "ML"):
        assert result.scores[key] == on_disk[key] and result[key] == on_disk[key]
    assert result.scores["MG"] == pytest.approx(result.scores["S_v"] - result.scores["S_wv"])
    assert result.scores["ML"] == max(0.0, result.scores["S_wv"] - result.scores["S_t"])
    frame = result.records
    assert len(frame) == 3 * 36 and set(frame["mode"]) == {"v", "wv", "t"}
    for mode, hits in frame.groupby("mode")["hit_official"].mean().items():
        assert 100 * hits == pytest.approx(result.scores[mode]["overall"])
    row = board[board["benchmark"] != "average"].iloc[0]
    assert row["model"] == "demo-clean"
    for key in ("S_v", "S_wv", "S_t"):
        assert row[key] == pytest.approx(result.scores[key], abs=0.005)  # the CSV rounds to 2 places


def test_the_api_run_is_the_cli_run(readme_run, tmp_path):
    """`mmstar eval` with the README's options writes the same predictions and scores."""
    from mmstar.data import DEMO_MODELS, DEMO_TEST

    cwd, ns = readme_run
    proc = run_cli("eval", "--model", str(DEMO_MODELS / "clean"), "--backbone", str(DEMO_MODELS / "base"),
                   "--data", str(DEMO_TEST), "--limit", "36", "--out", str(tmp_path), "--shots", "0",
                   "--max-new-tokens", "8", "--device", "cpu", "--dtype", "float32", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    (cli_dir,) = [p.parent for p in tmp_path.glob("*/*/manifest.json")]
    api_dir = cwd / ns["result"].run_dir
    def preds(d, mode):
        return {r["index"]: r["prediction"] for r in map(json.loads, (d / f"{mode}.jsonl").read_text().splitlines())}

    for mode in ("v", "wv", "t"):
        assert preds(cli_dir, mode) == preds(api_dir, mode)
    api_scores, cli_scores = (json.loads((d / "scores.json").read_text()) for d in (api_dir, cli_dir))
    assert api_scores == cli_scores
    api_manifest, cli_manifest = (json.loads((d / "manifest.json").read_text()) for d in (api_dir, cli_dir))
    for key in ("model", "backbone", "backend", "prompt", "shots", "decoding", "dtype", "dataset_fingerprint"):
        assert api_manifest[key] == cli_manifest[key], key


def test_evaluate_refuses_an_unknown_option_naming_the_allowed_ones():
    with pytest.raises(MmstarError) as err:
        mmstar.evaluate("llava", batch_sise=4)
    assert "batch_sise" in str(err.value) and "batch_size" in str(err.value) and "\n" not in str(err.value)


def test_evaluate_refuses_an_option_of_another_backend():
    with pytest.raises(MmstarError) as err:
        mmstar.evaluate("some-served-model", backend="openai", base_url="http://127.0.0.1:9/v1", device="cpu")
    message = str(err.value)
    assert "--device" in message and "hf" in message and "--base-url" in message


def test_evaluate_checks_values_before_anything_loads():
    for bad, fragment in (({"prompt": "chatty"}, "prompt"), ({"shots": 5}, "shots"), ({"modes": "v,x"}, "mode"),
                          ({"limit": 0}, "limit"), ({"batch_size": "many"}, "batch-size")):
        with pytest.raises(MmstarError, match=fragment):
            mmstar.evaluate("llava", **bad)


def test_the_api_names_resolve_without_heavy_imports(tmp_path):
    code = ("import sys, mmstar; fns = (mmstar.evaluate, mmstar.open_run, mmstar.leaderboard);"
            "print([m for m in ('torch', 'transformers', 'pandas', 'vllm', 'streamlit') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_leaderboard_of_a_folder_without_runs_is_one_clear_error(tmp_path):
    with pytest.raises(MmstarError, match="no run directory"):
        mmstar.leaderboard([tmp_path])


def test_sweep_file_with_an_unknown_option_is_one_line(tmp_path):
    bad = tmp_path / "sweep.json"
    bad.write_text(json.dumps({"models": ["llava"], "data": ["mmstar"], "options": {"devise": "cpu"}}))
    proc = run_cli("eval", "--config", str(bad))
    assert_clean_error(proc, str(bad), "devise", "allowed", "device", "batch_size")
    typed = tmp_path / "typed.json"
    typed.write_text(json.dumps({"models": ["llava"], "data": ["mmstar"], "options": {"shots": 3}}))
    assert_clean_error(run_cli("eval", "--config", str(typed)), str(typed), "shots")
