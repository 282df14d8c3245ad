"""``mmstar demo`` runs the leakage probes on the demo models, prints the probe table and puts it in
the report (issue 21.4). The demo models are retrained from time to time: these tests check the
structure (which probes ran where, on how many samples, what is printed and written), never a figure."""

import os
import re
import subprocess
import sys

import pytest
from mmstar.app.demo import DEMO_PROBES, PROBE_LIMIT, demo_benchmark, demo_models, probe_demo
from mmstar.data import DEMO_MODELS

from mmstar.probes import probe_table
from mmstar.runs import open_run

pytestmark = pytest.mark.skipif(not (DEMO_MODELS / "clean" / "model.safetensors").exists(),
                                reason="demo models not built (python scripts/train_demo_models.py)")

WHERE = {"order": {"v", "wv", "t"}, "slots": {"wv", "t"}, "swap": {"v"}, "recall": {"wv", "t"}}


def _check_block(block, n):
    assert block["version"] == "mmstar-probes-v2" and block["seed"] == 0
    assert {p: set(block[p]) for p in DEMO_PROBES} == WHERE and set(block["backbone"]) == {"t"}
    assert {fig["n"] for fig in block["order"].values()} == {n} and block["swap"]["v"]["n"] == n
    signals = [*DEMO_PROBES, "backbone"]
    for probe, per_mode in ((p, block[p]) for p in signals):
        for fig in per_mode.values():  # every verdict: its p, Holm's p, its null, fires on the adjusted p
            assert isinstance(fig["fires"], bool) and isinstance(fig["null"], str), probe
            assert 0 <= fig["p"] <= fig["p_adjusted"] <= 1 and fig["fires"] == (fig["p_adjusted"] < 0.05), probe
    assert block["fired"] == [p for p in signals if any(f["fires"] for f in block[p].values())]


@pytest.mark.slow  # loads the demo models twice: over a minute on a busy 2-core machine
def test_probe_demo_runs_every_probe_where_it_belongs(tmp_path):
    """One demo model, the first 12 samples: the modes run, then the probes on the same samples."""
    bench = demo_benchmark(tmp_path)
    label, vlm, backbone = demo_models(tmp_path)[0]
    block = probe_demo(label, vlm, backbone, bench, tmp_path, quiet=True, limit=12)
    _check_block(block, 12)
    run = open_run(tmp_path / "runs" / label / "mmstar-demo")
    asked = {k: len({r.index for r in v}) for k, v in run.probe_records.items()}
    assert set(asked) == {f"{p}-{m}" for p, modes in WHERE.items() for m in modes}
    assert asked["order-v"] == asked["order-wv"] == asked["order-t"] == asked["swap-v"] == 12
    assert asked["recall-wv"] == asked["recall-t"] == 12
    # slots hides only wrong options worth remembering (two words or more): some samples have none
    assert 0 < asked["slots-wv"] == asked["slots-t"] <= 12
    assert run.scores["probes"] == block  # what scores.json holds
    table = probe_table(block)
    assert table.count(" order ") == 3 and table.count(" slots ") == 2 and table.count(" swap ") == 1
    assert table.count(" recall ") == 2 and table.count("\n  backbone ") == 1
    assert table.count(" adj ") == 9  # every verdict's p and Holm's p
    # a second call resumes: nothing left to ask, the same block
    assert probe_demo(label, vlm, backbone, bench, tmp_path, quiet=True, limit=12) == block


@pytest.mark.slow  # the whole demo: minutes
def test_mmstar_demo_prints_the_probe_table_and_reports_it(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mmstar", "demo", "--out", str(tmp_path), "--no-progress"],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    n = min(PROBE_LIMIT, 360)
    assert f"leakage probes (order, slots, swap, recall) on the first {n} of 360 samples:" in out
    for label in ("demo-clean", "demo-contaminated"):
        assert f"{label}: leakage probes (mmstar-probes-v2, seed 0)" in out
        _check_block(open_run(tmp_path / "runs" / label / "mmstar-demo").scores["probes"], n)
    assert re.search(r"probes took \d+\.\d s", out)
    report = (tmp_path / "report.html").read_text()
    assert "<h2>Leakage evidence</h2>" in report
    for label in ("demo-clean", "demo-contaminated"):  # 24 figures, 9 of them verdicts with p and Holm's p
        assert len(re.findall(rf'data-run="{label} / mmstar-demo" data-probe="\w+" data-mode="\w+" data-fig=',
                              report)) == 24
        assert len(re.findall(rf'data-run="{label} / mmstar-demo" [^>]* data-p="p_adjusted">\d', report)) == 9
