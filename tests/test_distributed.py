"""Data parallelism: torchrun with 2 CPU processes (gloo); merged output equals a single process."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _torchrun(*args, cwd):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this python")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(torchrun), "--nproc-per-node", "2", "-m", "mmstar", "eval", *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.mark.slow  # tens of seconds: the slow tier (make test-all) runs it
def test_two_ranks_merge_to_the_single_process_result_and_resume(tiny_pairs, demo_parquet, tmp_path):
    from mmstar.app.cli import main

    pair = tiny_pairs["llava"]
    common = ["--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", str(demo_parquet),
              "--batch-size", "4", "--no-progress", "--max-new-tokens", "6"]
    # a partial distributed run (first 10 samples), then the full one resumes it
    first = _torchrun(*common, "--out", str(tmp_path / "dp"), "--limit", "10", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (run_dir,) = [p.parent for p in (tmp_path / "dp").glob("*/*/manifest.json")]
    assert len((run_dir / "v.jsonl").read_text().splitlines()) == 10
    second = _torchrun(*common, "--out", str(tmp_path / "dp"), cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert not list(run_dir.glob("*.rank*-of-*.jsonl"))  # shards were merged away
    assert main(["eval", *common, "--out", str(tmp_path / "single")]) == 0
    (single,) = [p.parent for p in (tmp_path / "single").glob("*/*/manifest.json")]
    def by_index(path):  # a single process writes in its (length-sorted) batch order; the merge in data order
        return {r["index"]: r for r in map(json.loads, path.read_text().splitlines())}

    for mode in ("v", "wv", "t"):
        assert by_index(run_dir / f"{mode}.jsonl") == by_index(single / f"{mode}.jsonl"), mode
    assert (run_dir / "scores.json").read_text() == (single / "scores.json").read_text()
    shutil.rmtree(tmp_path / "single")
