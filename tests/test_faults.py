"""Fault injection on real runs: SIGKILL at random moments (and torn lines), a full disk, and the
review store under concurrent load. A handful of trials here; ``-m slow`` runs 50 kill trials."""

import errno
import random

import pytest
from mmstar.app.cli import main
from reliability import kill_resume_trial, lines_by_index, mmstar_cmd, review_load, timed_run


@pytest.fixture(scope="module")
def eval_case(tiny_pairs, demo_parquet, tmp_path_factory):
    pair = tiny_pairs["llava"]
    args = ["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", str(demo_parquet),
            "--batch-size", "2", "--max-new-tokens", "16", "--no-progress", "--limit", "24"]
    ref_out = tmp_path_factory.mktemp("ref")
    full_time = timed_run(mmstar_cmd(*args, "--out", str(ref_out)))
    (run,) = [p.parent for p in ref_out.glob("*/*/manifest.json")]
    reference = {f"{m}.jsonl": lines_by_index(run / f"{m}.jsonl") for m in ("v", "wv", "t")}
    return args, reference, full_time


def _trials(eval_case, tmp_path, n, seed):
    args, reference, full_time = eval_case
    rng = random.Random(seed)
    totals = {"kills": 0, "torn": 0}
    for k in range(n):
        out = tmp_path / f"trial{k}"
        res = kill_resume_trial(mmstar_cmd(*args, "--out", str(out)), "*/*/*.jsonl", out, reference, rng, full_time)
        totals["kills"] += res["kills"]
        totals["torn"] += res["torn"]
    return totals


@pytest.mark.slow  # tens of seconds: the slow tier (make test-all) runs it
def test_sigkill_eval_a_few_times(eval_case, tmp_path):
    totals = _trials(eval_case, tmp_path, 2, seed=1)
    assert totals["kills"] >= 1


@pytest.mark.slow
def test_sigkill_eval_fifty_trials(eval_case, tmp_path):
    totals = _trials(eval_case, tmp_path, 50, seed=2)
    assert totals["kills"] >= 40 and totals["torn"] >= 10


@pytest.mark.slow  # tens of seconds: the slow tier (make test-all) runs it
def test_sigkill_curation_filter(tiny_pairs, demo_parquet, tmp_path):
    args = ["curate", "filter", str(demo_parquet), "--llm", str(tiny_pairs["gemma3"].backbone), "--shots", "0",
            "--batch-size", "2", "--max-new-tokens", "16", "--no-progress", "--max-hits", "1"]
    full_time = timed_run(mmstar_cmd(*args, "--out", str(tmp_path / "ref")))
    reference = {}
    for path in (tmp_path / "ref").glob("runs/*/pool/t.jsonl"):
        reference[f"{path.parent.parent.name}/pool/t.jsonl"] = lines_by_index(path)
    rng = random.Random(3)
    for k in range(1):
        out = tmp_path / f"k{k}"
        res = kill_resume_trial(mmstar_cmd(*args, "--out", str(out)), "runs/*/pool/*.jsonl", out, reference, rng,
                                full_time)
        assert res["ok"]
        assert (out / "hits.parquet").read_bytes() == (tmp_path / "ref" / "hits.parquet").read_bytes()


def test_full_disk_gives_one_clear_error_and_a_resumable_run(eval_case, tmp_path, monkeypatch, capsys):
    args, reference, _ = eval_case
    import mmstar.evaluators.run.runner as runner

    real = runner.append_predictions
    calls = {"n": 0}

    def full_disk(path, records):
        calls["n"] += 1
        if calls["n"] == 4:  # half a batch reaches the disk, then the disk is full
            payload = "".join(r.to_json() + "\n" for r in records)  # the lines as append_predictions writes them
            with open(path, "a") as fh:
                fh.write(payload[: len(payload) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, records)

    monkeypatch.setattr(runner, "append_predictions", full_disk)
    assert main([*args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0]
    monkeypatch.setattr(runner, "append_predictions", real)
    assert main([*args, "--out", str(tmp_path)]) == 0
    (run,) = [p.parent for p in tmp_path.glob("*/*/manifest.json")]
    for name, ref in reference.items():
        assert lines_by_index(run / name) == ref


def test_review_store_under_concurrent_load(tmp_path):
    res = review_load(str(tmp_path / "load.db"), writers=3, seconds=4)
    assert res["lost"] == 0 and res["duplicates"] == 0 and res["stored"] == res["written"] > 0
