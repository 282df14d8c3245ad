"""Precision is part of a run's identity: recorded concretely, refused when a resume would mix it,
shown on the leaderboard; a missing CUDA device is one clear line."""

import csv
import json

import pytest
from conftest import REPO, assert_clean_error, run_cli
from mmstar.app.cli import main


def _eval(pair, data, out, *extra):
    return main(["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", str(data),
                 "--out", str(out), "--no-progress", "--max-new-tokens", "4", "--modes", "wv", "--limit", "4",
                 "--device", "cpu", *extra])


def _manifest(out):
    (path,) = out.glob("*/*/manifest.json")
    return path, json.loads(path.read_text())


def test_auto_is_recorded_as_the_concrete_dtype_and_resumes_as_it(tiny_pairs, demo_parquet, tmp_path):
    pair = tiny_pairs["llava"]
    assert _eval(pair, demo_parquet, tmp_path, "--dtype", "auto") == 0
    assert _manifest(tmp_path)[1]["dtype"] == "float32"  # auto on CPU
    # the same precision named explicitly is the same run: it resumes, and finishes the rest
    assert _eval(pair, demo_parquet, tmp_path, "--dtype", "float32", "--limit", "6") == 0
    (run_dir,) = [p.parent for p in tmp_path.glob("*/*/manifest.json")]
    assert len((run_dir / "wv.jsonl").read_text().splitlines()) == 6


def test_resume_refuses_to_mix_bf16_into_an_fp32_run(tiny_pairs, demo_parquet, tmp_path, capsys):
    pair = tiny_pairs["llava"]
    assert _eval(pair, demo_parquet, tmp_path, "--dtype", "float32") == 0
    capsys.readouterr()
    assert _eval(pair, demo_parquet, tmp_path, "--dtype", "bfloat16") != 0
    assert "dtype: 'float32' -> 'bfloat16'" in capsys.readouterr().err
    (run_dir,) = [p.parent for p in tmp_path.glob("*/*/manifest.json")]
    assert len((run_dir / "wv.jsonl").read_text().splitlines()) == 4  # nothing was mixed in


def test_a_run_from_before_dtype_was_recorded_keeps_its_backends_precision(tiny_pairs, demo_parquet, tmp_path,
                                                                           capsys):
    pair = tiny_pairs["llava"]
    assert _eval(pair, demo_parquet, tmp_path, "--dtype", "float32") == 0
    path, manifest = _manifest(tmp_path)
    del manifest["dtype"]  # the manifest layout of earlier versions
    path.write_text(json.dumps(manifest))
    capsys.readouterr()
    assert _eval(pair, demo_parquet, tmp_path, "--dtype", "bfloat16") != 0
    assert "dtype: 'float32' -> 'bfloat16'" in capsys.readouterr().err
    assert _eval(pair, demo_parquet, tmp_path, "--dtype", "float32") == 0
    assert _manifest(tmp_path)[1]["dtype"] == "float32"


def test_leaderboard_shows_dtype(tiny_pairs, demo_parquet, tmp_path):
    pair = tiny_pairs["llava"]
    assert _eval(pair, demo_parquet, tmp_path / "a", "--dtype", "bfloat16") == 0
    path, _ = _manifest(tmp_path / "a")
    assert main(["leaderboard", str(path.parent), "--csv", str(tmp_path / "lb.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "lb.csv").open()))
    assert rows[0]["dtype"] == "bfloat16"


@pytest.mark.parametrize("command", [
    ["demo", "--device", "cuda", "--no-progress"],
    ["eval", "--model", "BASE", "--backbone", "BASE", "--data", "DATA", "--device", "cuda:0"],
])
def test_device_cuda_without_cuda_is_one_line(command, demo_parquet, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    base = str(REPO / "data" / "demo-models" / "base")
    args = [{"DATA": str(demo_parquet), "BASE": base}.get(a, a) for a in command]
    proc = run_cli(*args, "--out", str(tmp_path / "out"), timeout=120)
    assert_clean_error(proc, "--device cuda", "no CUDA device")
    assert not (tmp_path / "out" / "runs").exists()


def test_unknown_dtype_is_one_line(demo_parquet, tmp_path):
    proc = run_cli("demo", "--dtype", "float8", "--out", str(tmp_path), timeout=120)
    assert_clean_error(proc, "--dtype", "float8")
