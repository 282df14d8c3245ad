"""Two models on the same samples (issue 21.3): ``mmstar leaderboard A B --compare`` and the viewer's
Diff page give the paired difference with its interval and McNemar's exact p, checked against the
exact binomial computed by hand on the discordant pairs. Also the per-mode format compliance."""

import csv
import json
import math

import pytest
from conftest import assert_clean_error, make_samples, run_cli
from mmstar.app.cli import main
from mmstar.metrics.compare import COMPARE_COLUMNS, compare_runs
from mmstar.metrics.probes import compare, mcnemar_exact

from mmstar.runs import open_run, write_manifest, write_scores

N = 20


def _wrong(answer: str) -> str:
    return "B" if answer != "B" else "C"


def write_run(root, model, hits, bench="mini", fingerprint=None, replies=None):
    """A run whose mode m is right exactly on the indices where ``hits[m][i]`` is true; ``replies``
    (mode -> index -> text) overrides the reply text."""
    items = make_samples(N, images=False)
    run_dir = root / model / bench
    run_dir.mkdir(parents=True)
    for mode, row in hits.items():
        lines = []
        for s, hit in zip(items, row):
            pred = (replies or {}).get(mode, {}).get(s.index) or (s.answer if hit else _wrong(s.answer))
            lines.append({"index": s.index, "mode": mode, "prediction": pred, "answer": s.answer,
                          "category": s.category, "l2_category": s.l2_category, "source": s.source,
                          "question": s.question, "options": s.options, "error": None})
        (run_dir / f"{mode}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    write_manifest(run_dir, {"model_label": model, "benchmark": bench, "prompt": "official", "shots": 0,
                             "n_samples": N, "dataset_fingerprint": fingerprint})
    write_scores(run_dir)
    return run_dir


# v: 8 both right, 7 only A, 1 only B, 4 both wrong; wv: 3 only A, 3 only B; t only in A
V_A = [True] * 8 + [True] * 7 + [False] * 1 + [False] * 4
V_B = [True] * 8 + [False] * 7 + [True] * 1 + [False] * 4
WV_A = [True] * 3 + [False] * 3 + [True] * 5 + [False] * 9
WV_B = [False] * 3 + [True] * 3 + [True] * 5 + [False] * 9


@pytest.fixture
def pair(tmp_path):
    a = write_run(tmp_path, "ckpt-a", {"v": V_A, "wv": WV_A, "t": [False] * N})
    b = write_run(tmp_path, "ckpt-b", {"v": V_B, "wv": WV_B})
    return a, b


def test_mcnemar_exact_equals_the_binomial_computed_by_hand():
    # 7 against 1 discordant: two-sided exact p = 2 * (C(8,0) + C(8,1)) / 2^8 = 18/256
    a = dict(enumerate(V_A))
    b = dict(enumerate(V_B))
    got = mcnemar_exact(a, b)
    assert got == {"n": N, "only_a": 7, "only_b": 1, "p": 18 / 256}
    assert mcnemar_exact(b, a)["p"] == 18 / 256  # symmetric
    # 5 against 0: 2 / 2^5; 3 against 3: the whole distribution, capped at 1
    assert mcnemar_exact({i: True for i in range(5)}, {i: False for i in range(5)})["p"] == 2 / 32
    assert mcnemar_exact(dict(enumerate(WV_A)), dict(enumerate(WV_B)))["p"] == 1.0
    # 10 against 2: 2 * (1 + 12 + 66) / 4096
    a = {i: i < 10 for i in range(12)}
    b = {i: i >= 10 for i in range(12)}
    assert math.isclose(mcnemar_exact(a, b)["p"], 2 * 79 / 4096)
    assert mcnemar_exact({0: True}, {0: True}) == {"n": 1, "only_a": 0, "only_b": 0, "p": 1.0}


def test_compare_runs_per_mode_in_both(pair):
    rows = compare_runs(open_run(pair[0]), open_run(pair[1]))
    assert [r["mode"] for r in rows] == ["v", "wv"]  # t is only in A
    v, wv = rows
    assert set(v) == set(COMPARE_COLUMNS)
    assert (v["n"], v["S_a"], v["S_b"], v["only_a"], v["only_b"]) == (N, 75.0, 45.0, 7, 1)
    assert v["difference"] == pytest.approx(30.0) and v["mcnemar_p"] == 18 / 256
    assert v["difference_low"] <= 30.0 <= v["difference_high"] and not v["spans_zero"]
    assert wv["difference"] == 0.0 and wv["spans_zero"] and wv["mcnemar_p"] == 1.0
    # seeded: the same interval twice, the interval of the paired difference on the same samples
    again = compare_runs(open_run(pair[0]), open_run(pair[1]))
    assert again == rows
    assert v["difference_low"] == compare(dict(enumerate(V_A)), dict(enumerate(V_B)))["difference_low"]


def test_leaderboard_compare_cli_prints_and_writes_csv_and_json(pair, tmp_path, capsys):
    out_csv, out_json = tmp_path / "cmp.csv", tmp_path / "cmp.json"
    assert main(["leaderboard", str(pair[0]), str(pair[1]), "--compare", "--csv", str(out_csv),
                 "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "A = ckpt-a   B = ckpt-b   on mini (official matcher)" in printed
    assert "v: A scores higher (interval clear of 0); McNemar exact p = 0.07031 on 8 discordant sample(s)" in printed
    assert "wv: interval spans 0: no difference shown; McNemar exact p = 1 on 6 discordant sample(s)" in printed
    rows = list(csv.DictReader(out_csv.open()))
    assert list(rows[0]) == COMPARE_COLUMNS and [r["mode"] for r in rows] == ["v", "wv"]
    assert float(rows[0]["mcnemar_p"]) == 18 / 256
    assert [r["mcnemar_p"] for r in json.loads(out_json.read_text())] == [18 / 256, 1.0]


def test_compare_bad_input_is_one_line(pair, tmp_path):
    other = write_run(tmp_path, "ckpt-c", {"v": V_A}, bench="other")
    assert_clean_error(run_cli("leaderboard", str(pair[0]), "--compare"), "--compare takes two run directories")
    assert_clean_error(run_cli("leaderboard", str(pair[0]), str(other), "--compare"), "different benchmarks")
    assert_clean_error(run_cli("leaderboard", str(pair[0]), str(pair[1]), "--compare", "--radar", "x.png"),
                       "drop --radar")
    assert_clean_error(run_cli("leaderboard", str(pair[0])), "--csv FILE is required")
    fa = write_run(tmp_path / "f", "x", {"v": V_A}, fingerprint="aaa")
    fb = write_run(tmp_path / "f", "y", {"v": V_B}, fingerprint="bbb")
    assert_clean_error(run_cli("leaderboard", str(fa), str(fb), "--compare"), "the benchmark data differ")
    only_t = write_run(tmp_path / "g", "z", {"t": V_B})
    assert_clean_error(run_cli("leaderboard", str(pair[1]), str(only_t), "--compare"), "no mode (v, wv, t) in common")


def test_the_viewer_diff_page_shows_the_same_paired_figures(pair, monkeypatch):
    pytest.importorskip("streamlit")
    from mmstar.viewer import data
    from streamlit.testing.v1 import AppTest

    app = str(__import__("pathlib").Path(data.__file__).with_name("app.py"))
    monkeypatch.setenv("MMSTAR_VIEW_PATHS", json.dumps([str(pair[0]), str(pair[1])]))
    at = AppTest.from_file(app, default_timeout=60).run()
    at.sidebar.radio(key="page").set_value("Diff").run()
    assert not at.exception, at.exception
    v = compare_runs(open_run(pair[0]), open_run(pair[1]))[0]
    want = (f"A - B = 30.00 points, 95% paired bootstrap interval [{v['difference_low']:.2f}, "
            f"{v['difference_high']:.2f}]; McNemar exact p = 0.07031 (7 only A right, 1 only B right)")
    assert want in [t.value for t in at.text]
    at.radio(key="diff-mode").set_value("wv").run()
    assert any(t.value.startswith("A - B = 0.00 points") and "(spans 0)" in t.value and "p = 1 " in t.value
               for t in at.text)


# ------------------------------------------------------------------ format compliance

ABCD = "ABCD"


@pytest.mark.parametrize("reply, readable", [
    ("B", True), (" c.\n", True), ("(D) green", True), ("Option A", True), ("The answer is C.", True),
    ("a cat", True),  # the official rule's known fault: any reply starting with "a" reads as A
    ("E", False),  # not one of the options
    ("I think it is B", False), ("**B**", False), ("", False), ("(", False), ("the answer is ", False),
    ("Answer: B", True),  # read, as A: readable is not right
    ("The correct option is B", False),
])
def test_official_readable(reply, readable):
    from mmstar.matching import official_readable

    assert official_readable(reply, ABCD) is readable


def test_what_the_official_matcher_counts_as_a_hit_is_always_readable():
    from pathlib import Path

    from mmstar.matching import official_match, official_readable

    cases = json.loads((Path(__file__).parent / "data" / "extraction_cases.json").read_text())
    checked = 0
    for case in cases:
        letters = case["options"] or ABCD
        for letter in letters:
            if official_match(case["response"], letter):
                assert official_readable(case["response"], letters), case
                checked += 1
    assert checked > 50


def test_format_compliance_per_mode_in_scores_json_the_leaderboard_and_the_viewer(tmp_path):
    from mmstar.metrics.leaderboard import FORMAT_COLUMNS, build_rows, write_csv
    from mmstar.viewer import data

    # v: every reply a letter; wv: 5 of 20 in prose (wrong and unreadable); t: 10 of 20 in prose
    prose = "I would need to see the picture."
    run_dir = write_run(tmp_path, "m", {"v": V_A, "wv": WV_A, "t": V_B},
                        replies={"wv": dict.fromkeys(range(15, 20), prose), "t": dict.fromkeys(range(10), prose)})
    scores = json.loads((run_dir / "scores.json").read_text())
    assert [scores[m]["format_compliance"] for m in ("v", "wv", "t")] == [100.0, 75.0, 50.0]
    rows = build_rows([open_run(run_dir)])
    assert [rows[0][c] for c in FORMAT_COLUMNS] == [100.0, 75.0, 50.0]
    write_csv(rows, tmp_path / "lb.csv")
    got = next(csv.DictReader((tmp_path / "lb.csv").open()))
    assert [got[c] for c in ("format_v", "format_wv", "format_t")] == ["100.0", "75.0", "50.0"]
    row = data.load([run_dir]).leaderboard("official")[0]
    assert [row[c] for c in FORMAT_COLUMNS] == [100.0, 75.0, 50.0]
    # a failed request is no reply: left out of the share, not counted as unreadable
    lines = (run_dir / "t.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first.update(prediction="", error="timeout")
    (run_dir / "t.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    assert open_run(run_dir).summary("t")["format_compliance"] == pytest.approx(100 * 10 / 19)
