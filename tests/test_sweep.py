"""Sweeps: models x benchmarks into one run directory each; a failing model is reported and the
rest go on; SIGKILL mid-sweep and a re-run resumes every pair without losing or duplicating a line;
the Table-4 layout is printed and OUT/leaderboard.csv written. Bad sweep input: one line."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mmstar.evaluators.run.sweep import load_sweep_config, split_list, sweep_from_flags

FAMILIES3 = ("llava", "gemma3", "idefics3")
LIMIT = 6


@pytest.fixture(scope="module")
def two_benchmarks(tmp_path_factory) -> list[Path]:
    """Two small MMStar-schema benchmarks (18 samples each, different seeds)."""
    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    root = tmp_path_factory.mktemp("benches")
    paths = [root / "bench-a.parquet", root / "bench-b.parquet"]
    for seed, path in enumerate(paths, start=1):
        write_benchmark(generate(per_axis=1, seed=seed, split="test"), path)
    return paths


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip().endswith("}")]


def _snapshot(runs: Path) -> dict[tuple[str, str, str], dict]:
    """(run dir, mode, index) -> prediction line, for every complete line under ``runs``."""
    out = {}
    for f in runs.glob("*/*/*.jsonl"):
        for rec in _lines(f):
            out[(str(f.parent), f.stem, str(rec["index"]))] = rec
    return out


def _sweep_cmd(config: Path) -> list[str]:
    return [sys.executable, "-m", "mmstar", "eval", "--config", str(config)]


@pytest.mark.slow  # three tiny families x two benchmarks, twice, on 2 shared cores: ~2-4 min
def test_sweep_survives_sigkill_resumes_every_pair_and_reports_a_failing_model(tiny_pairs, two_benchmarks,
                                                                               tmp_path):
    runs = tmp_path / "runs"
    broken = tmp_path / "broken-vlm"
    broken.mkdir()  # a folder that is no model: its load fails, the sweep goes on
    models = [{"model": str(tiny_pairs[f].vlm), "backbone": str(tiny_pairs[f].backbone)} for f in FAMILIES3]
    models.insert(1, {"model": str(broken), "backbone": str(tiny_pairs["llava"].backbone)})
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps({"models": models, "data": [str(p) for p in two_benchmarks], "out": str(runs),
                                  "options": {"limit": LIMIT, "batch_size": 2, "no_progress": True}}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

    # first run: SIGKILL once the third model (the second that works) has written predictions
    proc = subprocess.Popen(_sweep_cmd(config), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    victim = runs / tiny_pairs["gemma3"].vlm.name
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None and not any(_lines(f) for f in victim.glob("*/*.jsonl")):
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    before = _snapshot(runs)
    assert before, "nothing was written before the kill"
    assert not (runs / "leaderboard.csv").exists()

    # re-run: every pair resumes; the broken model fails again and is reported; exit status 1
    done = subprocess.run(_sweep_cmd(config), env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 1, done.stderr[-2000:]
    after = _snapshot(runs)
    for key, rec in before.items():  # nothing finished before the kill is lost or rewritten
        assert after[key] == rec
    for fam in FAMILIES3:
        for bench in ("bench-a", "bench-b"):
            run_dir = runs / tiny_pairs[fam].vlm.name / bench
            for mode in ("v", "wv", "t"):
                recs = _lines(run_dir / f"{mode}.jsonl")
                indices = [r["index"] for r in recs]
                assert len(indices) == LIMIT == len(set(indices)), (run_dir, mode, indices)
            assert json.loads((run_dir / "scores.json").read_text())["S_t"] is not None
    out = done.stdout
    assert "model" in out and "benchmark" in out and "MG" in out and "average" in out  # the Table-4 layout
    assert f"FAILED {broken.name}" in out and "1 model(s) failed" in out and "skipped after the failure" in out
    rows = list(csv.DictReader((runs / "leaderboard.csv").open()))
    pairs = {(r["model"], r["benchmark"]) for r in rows}
    for fam in FAMILIES3:
        name = tiny_pairs[fam].vlm.name
        assert {(name, "bench-a"), (name, "bench-b"), (name, "average")} <= pairs
    assert not any(r["model"] == broken.name for r in rows)


def _one_line_error(capsys, *argv: str) -> str:
    from mmstar.app.cli import main

    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_bad_sweep_input_is_one_line_before_anything_runs(tmp_path, capsys, demo_parquet):
    pytest.importorskip("yaml")  # comes with the hf extra (transformers, datasets)
    out = tmp_path / "runs"
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [llava]\ndata: [x]\noptions: {batch_sise: 4}\n")
    line = _one_line_error(capsys, "eval", "--config", str(bad))
    assert str(bad) in line and "batch_sise" in line
    bad.write_text("models: []\ndata: [x]\n")
    assert "'models' must be a non-empty list" in _one_line_error(capsys, "eval", "--config", str(bad))
    bad.write_text("models: [llava\n")
    assert "invalid YAML" in _one_line_error(capsys, "eval", "--config", str(bad))
    # an unknown alias anywhere in the list stops the sweep before any model loads
    line = _one_line_error(capsys, "eval", "--model", "llava,qwen2.5-vl-8b", "--data", str(demo_parquet),
                           "--out", str(out))
    assert "did you mean" in line and "qwen2.5-vl-" in line
    line = _one_line_error(capsys, "eval", "--model", "llava,gemma3-4b", "--backbone", "a,b,c", "--data",
                           str(demo_parquet), "--out", str(out))
    assert "3 backbones for 2 models" in line
    assert not out.exists()


def test_sweep_specs_from_flags_and_files(tmp_path):
    pytest.importorskip("yaml")
    spec = sweep_from_flags("a,b", "x", "p,q")
    assert [(m.name, m.backbone) for m in spec.models] == [("a", "x"), ("b", "x")] and spec.data == ("p", "q")
    comma_dir = tmp_path / "my,model"
    comma_dir.mkdir()
    assert split_list(str(comma_dir)) == [str(comma_dir)]  # an existing path is never split
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text("models:\n  - llava\n  - {model: ./v, backbone: ./l}\ndata: mmstar\nout: o\n"
                         "options: {modes: [v, wv], batch-size: 4}\n")
    spec = load_sweep_config(yaml_file)
    assert [(m.name, m.backbone) for m in spec.models] == [("llava", None), ("./v", "./l")]
    assert spec.data == ("mmstar",) and spec.out == "o"
    assert dict(spec.options) == {"modes": ["v", "wv"], "batch_size": 4}


def test_each_model_loads_once_per_kind_across_benchmarks(tiny_pairs, two_benchmarks, tmp_path):
    from mmstar.app.publishing import report
    from mmstar.evaluators.backends.registry import factory
    from mmstar.evaluators.models.registry import resolve_model
    from mmstar.evaluators.run.runner import EvalConfig
    from mmstar.evaluators.run.sweep import run_sweep

    from mmstar.loaders import load_benchmark

    loads: list[tuple[str, str]] = []
    closes: list[str] = []
    real = factory("hf", None, {"device": "cpu"})

    def counting(model_id: str, kind: str):
        backend = real(model_id, kind)
        loads.append((model_id, kind))
        inner_close = backend.close
        backend.close = lambda: (closes.append(kind), inner_close())[1]
        return backend

    pair = tiny_pairs["idefics3"]
    entries = [resolve_model(str(pair.vlm), str(pair.backbone))]
    benches = [load_benchmark(str(p)) for p in two_benchmarks]
    results = run_sweep(entries, benches, tmp_path, lambda e: EvalConfig(
        model=e.lvlm, backbone=e.backbone, limit=2, batch_size=2, progress=False), lambda e: counting, echo=print)
    assert [r.error for r in results] == [None, None]
    assert loads == [(str(pair.vlm), "vlm"), (str(pair.backbone), "llm")]  # once each, not per benchmark
    assert closes == ["vlm", "llm"]  # each released before the next loads
    for r in results:
        scores = json.loads((r.run_dir / "scores.json").read_text())
        assert all(scores[m] is not None for m in ("S_v", "S_wv", "S_t"))
    assert report(results, tmp_path, echo=lambda _: None) == 0
    assert (tmp_path / "leaderboard.csv").exists()
