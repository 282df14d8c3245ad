"""The shipped demo assets reproduce the demo's figures: MG clearly positive for the clean model with
ML near 0, ML clearly positive for the contaminated one; the clean model reads its options (its S_v
holds when they are rotated), the contaminated one is caught by the probes. A regression in image
handling, prompt building or scoring shows up here as a broken metric. The figures themselves:
scripts/demo_probe_check.py (quoted in the README's demo section).

The demo benchmark gives each sample its own option order, so a model that answered positions would
be at chance; scripts/train_demo_models.py says how the models learnt to read instead."""

import json
import os
import subprocess
import sys

import pytest
from mmstar.data import DEMO_MODELS, DEMO_TEST, DEMO_TRAIN

from mmstar.loaders import load_benchmark

pytestmark = pytest.mark.skipif(not (DEMO_MODELS / "clean" / "model.safetensors").exists(),
                                reason="demo models not built (python scripts/train_demo_models.py)")


def test_demo_benchmark_is_valid_balanced_and_text_blind():
    from mmstar.app.cli import main

    assert main(["data", "validate", str(DEMO_TEST)]) == 0
    test, train = load_benchmark(DEMO_TEST), load_benchmark(DEMO_TRAIN)
    assert len(test) == 360 and len(train) == 2700
    assert {s.l2_category for s in test} == {a for c in __import__("mmstar").taxonomy.CAPABILITIES
                                             for a in c.axis_names}
    # answers balanced per axis (no letter above 50%), no test question text in the train split
    for axis in {s.l2_category for s in test}:
        letters = [s.answer for s in test if s.l2_category == axis]
        assert max(letters.count(x) for x in "ABCD") <= len(letters) // 2
    assert not {s.question for s in test} & {s.question for s in train}
    # option orders vary within every question type: a position names no value
    for axis in {s.l2_category for s in test}:
        orders = {tuple(s.options.values()) for s in test if s.l2_category == axis}
        assert len(orders) >= 6, (axis, len(orders))
    size = sum(p.stat().st_size for p in DEMO_TEST.parent.iterdir())
    assert size < 5_000_000


@pytest.mark.slow  # tens of seconds: the slow tier (make test-all) runs it
def test_mmstar_demo_reproduces_the_figures(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mmstar", "demo", "--out", str(tmp_path), "--no-progress"],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scores = {}
    for name in ("demo-clean", "demo-contaminated"):
        (path,) = list((tmp_path / "runs" / name).glob("*/scores.json"))
        scores[name] = json.loads(path.read_text())
    clean, leak = scores["demo-clean"], scores["demo-contaminated"]
    assert clean["MG"] >= 30 and clean["ML"] <= 5, clean
    assert leak["ML"] >= 20, leak
    assert 15 <= clean["S_t"] <= 35  # the base LLM knows the format, not the answers: chance is 25
    # the probes (all 360 samples): none fires on the clean model, at least two on the contaminated one,
    # each with a Holm-adjusted p below 0.05 against its null (that is what "fires" means)
    assert clean["probes"]["fired"] == [], clean["probes"]
    assert len(leak["probes"]["fired"]) >= 2, leak["probes"]
    # the three trained leaks of scripts/train_demo_leaks.py, each caught by the signal built for its kind
    fired = {}
    for name in ("demo-half-leak", "demo-text-leak", "demo-backbone-leak"):
        (path,) = list((tmp_path / "runs" / name).glob("*/scores.json"))
        fired[name] = json.loads(path.read_text())["probes"]["fired"]
    assert "order" in fired["demo-half-leak"], fired
    assert "recall" in fired["demo-text-leak"], fired
    assert "backbone" in fired["demo-backbone-leak"], fired
    for name in ("demo-half-leak", "demo-text-leak", "demo-backbone-leak"):  # the table shows every p
        assert f"{name}: leakage probes" in proc.stdout, proc.stdout[-2000:]
    assert (tmp_path / "leaderboard.csv").exists() and (tmp_path / "radar.png").read_bytes()[:4] == b"\x89PNG"
    assert "demo-clean" in proc.stdout and "MG" in proc.stdout


@pytest.mark.slow  # 3 x 360 v requests
def test_the_clean_demo_model_reads_its_options(tmp_path):
    """Every cyclic rotation of the options (the answer moved with its text) keeps the clean model's
    S_v within 10 points of the original order: it answers the option, not a position."""
    import mmstar
    from mmstar.probes import rotations
    from mmstar.sample import Benchmark

    bench = load_benchmark(DEMO_TEST)
    bench = Benchmark("mmstar-demo", list(bench), bench.origin)
    run = {"modes": ["v"], "shots": 0, "max_new_tokens": 8, "progress": False, "batch_size": 32}
    clean = str(DEMO_MODELS / "clean")
    original = mmstar.evaluate(clean, data=bench, out=tmp_path, label="r0", **run)["S_v"]
    rotated = [mmstar.evaluate(clean, data=rotations(bench, k), out=tmp_path, label=f"r{k}", **run)["S_v"]
               for k in (1, 2, 3)]
    assert original >= 60, original
    assert abs(original - sum(rotated) / 3) <= 10, (original, rotated)


@pytest.mark.slow  # every stage for a few steps: a minute or two
def test_the_training_script_runs_every_stage(tmp_path):
    """scripts/train_demo_models.py --quick: all four stages run, the models load, the benchmark it writes
    has varied option orders and the training log names every stage with its minutes."""
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "train_demo_models.py")
    proc = subprocess.run([sys.executable, script, "--out", str(tmp_path), "--quick"], capture_output=True,
                          text=True, timeout=1200, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "demo-models" / "training-log.json").read_text())["summary"]
    assert set(summary["minutes"]) == {"fixed", "lookup", "reader", "stop", "leak", "script_total"}
    assert all(isinstance(v, float) for v in summary["minutes"].values()), summary["minutes"]
    for name in ("base", "clean", "contaminated"):
        assert (tmp_path / "demo-models" / name / "model.safetensors").exists()
    test = load_benchmark(str(tmp_path / "demo" / "test.parquet"))
    assert len(test) == 360 and len({tuple(s.options.values()) for s in test}) > 18


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MMSTAR_RETRAIN") != "1",
                    reason="retraining takes about an hour of a 2-core CPU; set MMSTAR_RETRAIN=1 to run it")
def test_retraining_from_the_script_gets_there_too(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "train_demo_models.py")
    proc = subprocess.run([sys.executable, script, "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=3 * 3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "demo-models" / "training-log.json").read_text())["summary"]
    assert summary["clean"]["v"] - summary["clean"]["wv"] >= 30
    assert abs(summary["clean"]["v"] - summary["clean"]["v_rotated_by_1"]) <= 10  # it reads its options
    assert summary["contaminated"]["wv"] - summary["base"]["t"] >= 20
