"""The leakage probes where users look (issue 21.2): the leaked-sample list's probe flags and
``evidence``, and in ``mmstar view`` the probe table and the probe flags and filters of the sample
browser (Streamlit AppTest).

The run is written as the runner writes one: v/wv/t lines, and each probe's lines made by the
runner's own ``probe_record`` from the core's work items (``mmstar.probes.probe_items``) with scripted
replies; ``write_scores`` then scores it all, probes block included. Per index i of 12 samples:
v always right; wv right on even i; t right on i % 4 == 0 (so ML's evidence, wv right and t wrong, on
2, 6, 10). order: in wv the original letter in every rotation (a memorised letter: right in the
original order, wrong once the options move, on the even i, whose answers stand at A, B and C: the
letter-adjusted test fires in wv); in v and t the original letter on i % 3 == 0 and the moved answer
otherwise (flags 0, 3, 6, 9 in v and 0 in t, all answered A in the original order: a preference for
A explains them, order does not fire there). slots: the hidden text written out on all but 4 in wv
(fires: 11 masks wv reproduced and t did not, one the other way) and on 4 in t (does not fire).
swap: the v answer again whatever the image, but on 11 (fires: S_swap far above the chance of
its letters, the backbone near its own); its evidence flag is "right with another image, the backbone
wrong" (all but 0, 4, 8, where t is right, and 11). backbone: t is right only where wv is (no fire)."""

import csv
import json

import pandas as pd
import pytest
from conftest import make_samples
from mmstar.evaluators.backends.base import Response
from mmstar.evaluators.run.probes import probe_record
from mmstar.metrics.leakage import LEAK_COLUMNS, write_leakage_csv
from mmstar.viewer import data, samples
from mmstar.viewer.probes import FLAG_COLUMNS, TABLE_COLUMNS, probe_rows
from mmstar.viewer.samples import SampleFilter

from mmstar.probes import probe_file, probe_items
from mmstar.records import append_records
from mmstar.runs import open_run, write_manifest, write_scores
from mmstar.sample import Benchmark
from mmstar.writers import write_benchmark

N = 12
REPRODUCES_WV, REPRODUCES_T = [i for i in range(12) if i != 4], [4]
# the per-sample flags, set in any mode
FOLLOWS = [0, 2, 3, 4, 6, 8, 9, 10]  # wv: the even i; v: i % 3 == 0; t: 0
REPRODUCES = list(range(12))
DROPS = [0, 2, 3, 4, 6, 8, 9, 10]  # wv: the even i; v: the A samples 0, 3, 6, 9
RIGHT_ANY_IMAGE = [1, 2, 3, 5, 6, 7, 9, 10]
SAME_ANSWER = list(range(N - 1))
# the leaked list (wv right: even i) and what points at leakage on each: ML, and the signals that fire
# and flagged the sample where they fired (order in wv, slots in wv, swap); 4's t reproduction is no
# evidence (slots does not fire in t), nor are v's flags on 3 and 9, nor swap on 0, 4, 8 (the backbone
# answers them too)
EVIDENCE = {0: "order+slots", 2: "ML+order+slots+swap", 4: "order", 6: "ML+order+slots+swap", 8: "order+slots",
            10: "ML+order+slots+swap"}


def _wrong(answer: str) -> str:
    return "B" if answer != "B" else "C"


def _plain(i: int, answer: str, mode: str) -> str:
    right = {"v": True, "wv": i % 2 == 0, "t": i % 4 == 0}[mode]
    return answer if right else _wrong(answer)


def _probe_reply(item, original) -> str:
    i = item.sample.index
    if item.probe == "order":
        return original[i].answer if item.mode == "wv" or i % 3 == 0 else item.sample.answer
    if item.probe == "slots":
        reproduces = REPRODUCES_WV if item.mode == "wv" else REPRODUCES_T
        return item.fields["target"] if i in reproduces else "I do not know."
    return original[i].answer if i != 11 else _wrong(original[i].answer)  # swap: the v answer, but on 11


SCRIPT = "<script>window.pwned=1</script><b>bold</b>"


def _two_word_options(sample, stem=""):
    """Option texts of two words (the slots probe hides only texts worth remembering)."""
    texts = ["red square", "green circle", "blue triangle", "yellow star"][:len(sample.options)]
    options = dict(zip(sample.options, texts))
    body = ", ".join(f"{k}: {v}" for k, v in options.items())
    return sample.with_(options=options, question=f"{stem}What shape is number {sample.index}?\nOptions: {body}")


def write_probe_run(root, model="leaky", probes=True, html=False):
    """The run described above; ``html`` puts SCRIPT into sample 6's question (the slots prompt too)."""
    items = [_two_word_options(s, SCRIPT if html and s.index == 6 else "") for s in make_samples(N)]
    bench = Benchmark("mini", items)
    bench_path = write_benchmark(bench, root / f"{model}-mini.parquet")
    run_dir = root / "runs" / model / "mini"
    run_dir.mkdir(parents=True)
    for mode in ("v", "wv", "t"):
        lines = [{"index": s.index, "mode": mode, "prediction": _plain(s.index, s.answer, mode), "answer": s.answer,
                  "category": s.category, "l2_category": s.l2_category, "source": s.source, "question": s.question,
                  "options": s.options, "error": None} for s in items]
        (run_dir / f"{mode}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    if probes:
        original = {s.index: s for s in items}
        for probe, modes in (("order", ("v", "wv", "t")), ("slots", ("wv", "t")), ("swap", ("v",))):
            for mode in modes:
                work = probe_items(bench, probe, mode, seed=0)
                records = [probe_record(it, Response(text=_probe_reply(it, original))) for it in work]
                append_records(run_dir / f"{probe_file(probe, mode)}.jsonl", records)
    write_manifest(run_dir, {"model_label": model, "benchmark": "mini", "prompt": "official", "shots": 0,
                             "dataset": str(bench_path), "n_samples": N,
                             **({"probes": {"version": "mmstar-probes-v1", "seed": 0}} if probes else {})})
    write_scores(run_dir)
    return run_dir


@pytest.fixture
def probed(tmp_path):
    return write_probe_run(tmp_path)


def _flagged(frame, column):
    return frame["index"][frame[column].fillna(False).astype(bool)].tolist()


def test_the_fixture_is_scored_with_a_probes_block(probed):
    block = json.loads((probed / "scores.json").read_text())["probes"]
    assert set(block["order"]) == {"v", "wv", "t"} and set(block["slots"]) == {"wv", "t"}
    assert set(block["swap"]) == {"v"}
    assert block["slots"]["wv"]["reproduced"] == len(REPRODUCES_WV) and block["slots"]["t"]["reproduced"] == 1
    assert block["swap"]["v"]["same_answer"] == len(SAME_ANSWER)
    assert block["fired"] == ["order", "slots", "swap"]
    fires = {(p, m) for p in ("order", "slots", "swap") for m, fig in block[p].items() if fig["fires"]}
    assert fires == {("order", "wv"), ("slots", "wv"), ("swap", "v")}


def test_leaked_list_gains_the_probe_flags_and_marks_ml_and_probe_evidence(probed, tmp_path):
    plain = write_probe_run(tmp_path / "plain", model="plain", probes=False)
    out = tmp_path / "leaked.csv"
    assert write_leakage_csv([open_run(probed), open_run(plain)], out) == 12
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == LEAK_COLUMNS
    leaky = {int(r["index"]): r for r in rows if r["model"] == "leaky"}
    assert {i: r["evidence"] for i, r in leaky.items()} == EVIDENCE
    assert [i for i, r in leaky.items() if r["follows_position"] == "True"] == [i for i in FOLLOWS if i in EVIDENCE]
    assert [i for i, r in leaky.items() if r["reproduces_masked"] == "True"] == [0, 2, 4, 6, 8, 10]  # 4: in t only
    assert [i for i, r in leaky.items() if r["drops_when_moved"] == "True"] == [i for i in DROPS if i in EVIDENCE]
    assert [i for i, r in leaky.items() if r["right_any_image"] == "True"] == [2, 6, 10]
    assert {r["backbone_knows"] for r in leaky.values()} == {"False"}  # wv right on every listed sample
    assert all(r["same_answer_any_image"] == "True" for r in leaky.values())
    assert {r["backbone_missed"] for i, r in leaky.items() if "ML" in r["evidence"]} == {"True"}
    # no probe ran: the flags are empty (not False), the evidence is ML's alone
    others = [r for r in rows if r["model"] == "plain"]
    flags = {(r["follows_position"], r["reproduces_masked"], r["same_answer_any_image"]) for r in others}
    assert flags == {("", "", "")}
    assert {int(r["index"]): r["evidence"] for r in others} == {0: "", 2: "ML", 4: "", 6: "ML", 8: "", 10: "ML"}


def test_view_data_probe_table_flags_filters_and_evidence(probed, tmp_path):
    plain = write_probe_run(tmp_path / "plain", model="plain", probes=False)
    view = data.load([probed, plain])
    block = view.probes("leaky / mini")
    assert block == json.loads((probed / "scores.json").read_text())["probes"]  # the figures scores.json holds
    assert view.probes("plain / mini") is None
    rows = probe_rows("leaky / mini", block)
    assert [(r["probe"], r["mode"]) for r in rows][:2] == [("order", "v"), ("order", "v")]
    assert {(r["probe"], r["mode"]) for r in rows} == {("order", "v"), ("order", "wv"), ("order", "t"),
                                                       ("slots", "wv"), ("slots", "t"), ("swap", "v"),
                                                       ("backbone", "t")}
    assert len(rows) == 3 * 2 + 2 + 3 + 3 and all(list(r) == TABLE_COLUMNS for r in rows)
    # each verdict's p, Holm's p and null on the row of the figure it tests, and only there
    verdicts = [(r["probe"], r["mode"], r["figure"]) for r in rows if r["p"] is not None]
    assert len(verdicts) == 7 and all(block[p][m]["p"] is not None for p, m, _ in verdicts)
    assert {r["null"] for r in rows if r["p"] is not None} == {"letter_bias", "wv_vs_t", "t_vs_wv", "backbone"}
    sens = next(r for r in rows if r["probe"] == "order" and r["mode"] == "wv" and "sensitivity" in r["figure"])
    fig = block["order"]["wv"]
    assert (sens["value"], sens["low"], sens["high"], sens["fires"], sens["p"], sens["p_adjusted"]) == (
        fig["sensitivity"], fig["sensitivity_low"], fig["sensitivity_high"], fig["fires"], fig["p"], fig["p_adjusted"])
    slots = next(r for r in rows if r["probe"] == "slots" and r["mode"] == "wv")
    assert slots["flagged"] == len(REPRODUCES_WV) and slots["n"] == block["slots"]["wv"]["n"]
    assert probe_rows("plain / mini", None) == []

    frame = view.run("leaky / mini").frame
    assert _flagged(frame, "follows position") == FOLLOWS
    assert _flagged(frame, "reproduces masked") == REPRODUCES
    assert _flagged(frame, "same answer any image") == SAME_ANSWER
    assert _flagged(frame, "drops when moved") == DROPS and _flagged(frame, "right any image") == RIGHT_ANY_IMAGE
    assert _flagged(frame, "backbone knows") == []
    f = samples.filter_samples
    assert f(frame, "official", SampleFilter(flag="reproduces masked"))["index"].tolist() == REPRODUCES
    assert f(frame, "official", SampleFilter(flag="follows position", categories=["coarse perception"])
             )["index"].tolist() == [0, 6]
    evidenced = f(frame, "official", SampleFilter(flag="probe evidence"))["index"].tolist()
    assert evidenced == list(range(N))  # slots (wv) flags all but 4, order (wv) flags 4
    listed = samples.sample_list(frame, "official")
    assert [listed["evidence"][i] for i in (6, 1, 3, 4, 11)] == ["ML+order+slots+swap", "slots+swap", "slots+swap",
                                                                 "order", "slots"]
    # flags, not evidence: 3 drops when moved in v only, where order does not fire
    assert listed["flags"][3] == ("needs image, follows position, reproduces masked, same answer any image, "
                                  "drops when moved, right any image")
    assert listed["flags"][6] == ("leaked, follows position, reproduces masked, same answer any image, "
                                  "drops when moved, right any image")
    # a run without probes: NA flags, no evidence column, the probe filters select nothing
    other = view.run("plain / mini").frame
    assert other["follows position"].isna().all() and samples.probes_ran(other) == []
    assert "evidence" not in samples.sample_list(other, "official")
    assert f(other, "official", SampleFilter(flag="follows position")).empty
    assert f(other, "official", SampleFilter(flag="probe evidence")).empty


def _app(monkeypatch, paths):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    app = str(__import__("pathlib").Path(data.__file__).with_name("app.py"))
    monkeypatch.setenv("MMSTAR_VIEW_PATHS", json.dumps([str(p) for p in paths]))
    at = AppTest.from_file(app, default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def test_app_probe_table_and_the_sample_browser_probe_flags(monkeypatch, probed, tmp_path):
    plain = write_probe_run(tmp_path / "plain", model="plain", probes=False)
    at = _app(monkeypatch, [probed, plain])
    block = json.loads((probed / "scores.json").read_text())["probes"]
    fired = block["fired"]
    board = at.dataframe[0].value.set_index("model")
    assert board.loc["leaky", "probes fired"] == ";".join(fired) and pd.isna(board.loc["plain", "probes fired"])
    assert board.loc["leaky", "format wv"] == 100.0
    at.sidebar.radio(key="page").set_value("Probes").run()
    assert not at.exception, at.exception
    assert f"leaky / mini: {'fires: ' + ', '.join(fired) if fired else 'no probe fires'}" in [t.value for t in at.text]
    table = at.dataframe[0].value
    assert list(table.columns) == ["run", "probe", "mode", "n", "figure", "value", "95%", "flagged", "p",
                                   "p_adjusted", "null", "fires"]
    assert set(table["run"]) == {"leaky / mini"} and len(table) == 14
    assert len(at.get("image")) == 1  # the chart of the verdicts' intervals
    gap = table[(table["probe"] == "backbone") & table["figure"].str.startswith("S_wv - S_t")].iloc[0]
    assert gap["p"] == block["backbone"]["t"]["p"] and gap["null"] == "wv_vs_t" and not gap["fires"]
    circ = table[(table["mode"] == "t") & table["figure"].str.startswith("CircularEval")].iloc[0]
    fig = block["order"]["t"]
    assert circ["value"] == fig["circular"]
    assert circ["95%"] == f"[{fig['circular_low']:.2f}, {fig['circular_high']:.2f}]"
    # the sample browser: the probe flags are filters, and a sample says what points at leakage
    at.sidebar.radio(key="page").set_value("Samples").run()
    assert "follows position" in at.sidebar.selectbox(key="f-flag").options
    at.sidebar.selectbox(key="f-flag").set_value("follows position").run()
    assert at.dataframe[0].value["index"].tolist() == FOLLOWS
    assert "probe evidence" in at.sidebar.selectbox(key="f-flag").options
    at.selectbox(key="sample").set_value(6).run()
    texts = [t.value for t in at.text]
    assert ("flags: leaked, follows position, reproduces masked, same answer any image, drops when moved, "
            "right any image") in texts
    assert any(t.startswith("leakage evidence: ML+order+slots+swap (probes run on this sample: ") for t in texts)
    at.selectbox(key="model-a").set_value("plain / mini").run()
    options = at.sidebar.selectbox(key="f-flag").options
    assert "follows position" not in options and "probe evidence" not in options
    assert not at.exception


def test_app_probes_page_without_probes_says_so(monkeypatch, tmp_path):
    plain = write_probe_run(tmp_path, model="plain", probes=False)
    at = _app(monkeypatch, [plain])
    at.sidebar.radio(key="page").set_value("Probes").run()
    assert "No run here has probe records" in at.info[0].value
    assert pd.isna(data.load([plain]).run("plain / mini").frame[list(FLAG_COLUMNS)]).all(axis=None)
