"""The run-directory layout has one owner, ``mmstar/runs.py``: one folder rule for a run (the ``org__name``
slug ``mmstar eval`` writes), one discovery of runs, the shard files. ``mmstar eval`` and ``mmstar import``
put a model id with a slash in the same folder (eval through the openai backend against the stand-in
server on loopback, import of the real official submission xlsx), so the model is one leaderboard row;
a folder ``mmstar import`` wrote before (``org-name``) still loads and a mode imported later joins it."""

import shutil

import pytest
from conftest import REPO
from test_metrics import _hits, make_run

import mmstar
from mmstar.runs import existing_run_dir, find_run_dirs, model_slug, run_dir, shard_path, shard_paths

FAST = ("--fast-ms-low", "2", "--fast-ms-high", "6", "--slow-share", "0")
MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
BENCH = "llava_next_yi_34b_MMStar"  # the name the reference file's stem gives it


def test_the_folder_rule(tmp_path):
    assert model_slug(MODEL) == "Qwen__Qwen2.5-VL-7B-Instruct"
    assert model_slug("org/a-b") != model_slug("org-a/b")  # a dash for the slash would merge these two
    assert model_slug("llava-1.5-7b") == "llava-1.5-7b"  # an alias is its own folder
    local = tmp_path / "checkpoints" / "my-vlm"
    local.mkdir(parents=True)
    assert model_slug(str(local)) == "my-vlm"  # a local folder: its own name, not its path
    assert run_dir(tmp_path, MODEL, "MMStar val") == tmp_path / "Qwen__Qwen2.5-VL-7B-Instruct" / "MMStar-val"
    assert run_dir(tmp_path, MODEL, "pool", model_folder="lvlm:x__y") == tmp_path / "lvlm-x__y" / "pool"
    assert existing_run_dir(tmp_path, MODEL, "MMStar") == run_dir(tmp_path, MODEL, "MMStar")  # nothing yet


def test_eval_and_import_put_a_model_id_with_a_slash_in_one_folder(standin, reference_xlsx, tmp_path, capsys):
    pytest.importorskip("httpx")
    from mmstar.app.cli import main

    url = standin(*FAST)
    result = mmstar.evaluate(MODEL, data=str(reference_xlsx), modes=["wv"], limit=30, backend="openai",
                             base_url=url, out=tmp_path, progress=False)
    folder = tmp_path / "Qwen__Qwen2.5-VL-7B-Instruct" / BENCH
    assert result.run_dir == folder
    assert main(["import", "vlmevalkit", str(reference_xlsx), "--model", MODEL, "--benchmark", BENCH,
                 "--mode", "v", "--out", str(tmp_path)]) == 0
    assert f"-> {folder}:" in capsys.readouterr().out
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == [folder.parent]  # no second folder
    run = mmstar.open_run(folder)
    assert len(run.records["v"]) == 1500 and len(run.records["wv"]) == 30
    board = mmstar.leaderboard([tmp_path])
    assert len(board) == 1 and board.loc[0, "model"] == MODEL  # one model, one row
    assert board.loc[0, "S_v"] is not None and board.loc[0, "S_wv"] is not None


def test_a_folder_an_older_import_wrote_still_loads_and_is_joined(reference_xlsx, tmp_path, capsys):
    from mmstar.app.cli import main

    def imported(mode):
        assert main(["import", "vlmevalkit", str(reference_xlsx), "--model", "org/old-model", "--benchmark",
                     "MMStar", "--mode", mode, "--out", str(tmp_path)]) == 0
        return capsys.readouterr().out

    imported("v")
    legacy = tmp_path / "org-old-model" / "MMStar"  # where 0.2's import put it: the slash made a dash
    shutil.move(tmp_path / "org__old-model", tmp_path / "org-old-model")
    assert f"-> {legacy}:" in imported("t")  # the mode imported now joins the old folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["org-old-model"]
    run = mmstar.open_run(legacy)
    assert set(run.records) == {"v", "t"} and run.model == "org/old-model"
    board = mmstar.leaderboard([tmp_path])
    assert len(board) == 1 and board.loc[0, "S_v"] is not None and board.loc[0, "S_t"] is not None
    assert find_run_dirs([tmp_path]) == ([legacy], [])


def test_one_discovery_for_the_leaderboard_and_the_viewer(tmp_path):
    from mmstar.viewer import data

    runs = [make_run(tmp_path, "a", "b1", {"v": _hits(12, 8, 0)}),
            make_run(tmp_path / "runs", "org__m", "b2", {"v": _hits(12, 6, 1), "wv": _hits(12, 3, 2)})]
    make_run(tmp_path / "_models", "x", "y", {"v": _hits(12, 1, 3)})  # the demo's checkpoints: skipped
    make_run(tmp_path / ".cache", "x", "y", {"v": _hits(12, 1, 3)})  # hidden: skipped
    make_run(tmp_path / "1" / "2", "deep", "run", {"v": _hits(12, 1, 3)})  # deeper than 3 levels: not searched
    found, problems = find_run_dirs([tmp_path])
    assert sorted(found) == sorted(runs) and problems == []
    assert find_run_dirs([runs[0]]) == ([runs[0]], [])  # a run directory names itself
    assert find_run_dirs([tmp_path / "none"])[1] == [f"{tmp_path / 'none'}: no such folder"]
    board = mmstar.leaderboard([tmp_path])
    view = data.load([tmp_path])
    assert sorted(board["model"]) == sorted(vr.run.model for vr in view.runs) == ["a", "org__m"]
    assert data.find_run_dirs is find_run_dirs  # the viewer has no discovery of its own


def test_shard_paths(tmp_path):
    assert shard_path(tmp_path, "wv", 1, 4) == tmp_path / "wv.rank1-of-4.jsonl"
    for rank in (2, 0, 1):
        shard_path(tmp_path, "v", rank, 3).write_text("")
    shard_path(tmp_path, "wv", 0, 3).write_text("")
    assert shard_paths(tmp_path, "v") == [tmp_path / f"v.rank{r}-of-3.jsonl" for r in range(3)]


def test_no_folder_is_built_by_hand_outside_runs():
    """The folder rule's pieces (the slash written as ``__``, ``<out>/<model>/<benchmark>`` joined from
    slugs, the shard pattern) appear only in mmstar/runs.py."""
    patterns = ('replace("/", "__")', 'replace(":", "-")', "rank*-of-", ".rank{rank}-of-", "/ slugify(")
    offenders = []
    for folder in ("mmstar", "app", "evaluators", "metrics", "curation", "viewer", "review_app"):
        for path in (REPO / folder).rglob("*.py"):
            if path == REPO / "mmstar" / "runs.py":
                continue
            text = path.read_text(encoding="utf-8")
            offenders += [f"{path.relative_to(REPO)}: {p}" for p in patterns if p in text]
    assert not offenders, "\n".join(offenders)
