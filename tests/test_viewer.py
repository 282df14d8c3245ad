"""``mmstar view`` / ``mmstar report``: the data layer against the leaderboard and scores.json, flags,
filters, problems found on the way, images, the HTML report, the CLI, and the Streamlit app through
AppTest. Run directories are written in the runner's format and scored by the real ``write_scores``;
peer logs go through the real ``mmstar import``."""

import base64
import html
import json
import re

import pandas as pd
import pytest
from conftest import assert_clean_error, make_samples, run_cli
from mmstar.app.cli import main
from mmstar.metrics.leaderboard import build_rows
from mmstar.viewer import data, samples
from mmstar.viewer.images import Images
from mmstar.viewer.samples import FLAGS, SampleFilter

from mmstar.runs import open_run, write_manifest, write_scores
from mmstar.sample import Benchmark
from mmstar.scoring import score_records
from mmstar.writers import write_benchmark

SCRIPT_Q = "<script>window.pwned=1</script><b>bold</b> What colour is it?"
IMG_PRED = 'A <img src=x onerror="window.pwned=2">'
N = 12
# per index i % 4 for model "alpha": (v, wv, t) hits -> leaked, needs image, image hurt, all wrong
ALPHA = {0: (True, True, False), 1: (True, False, False), 2: (False, True, True), 3: (False, False, False)}
EXPECTED_FLAGS = {"leaked": [0, 4, 8], "needs image": [1, 5, 9], "image hurt": [2, 6, 10]}


def _wrong(answer: str) -> str:
    return "B" if answer != "B" else "C"


def write_runs(root, n: int = N, html_question: bool = True, images: bool = True):
    """Two models on one MMStar-taxonomy benchmark (a parquet with images, named in the manifests),
    every mode written and scored; alpha follows ALPHA, beta is right with the image only."""
    items = make_samples(n, images=images)
    if html_question:
        first = items[0]
        body = ", ".join(f"{k}: {v}" for k, v in first.options.items())
        items[0] = first.with_(question=f"{SCRIPT_Q}\nOptions: {body}")
    bench_path = write_benchmark(Benchmark("mini", items), root / "mini.parquet")
    dirs = {}
    for model in ("alpha", "beta"):
        run_dir = root / "runs" / model / "mini"
        run_dir.mkdir(parents=True)
        for m, mode in enumerate(("v", "wv", "t")):
            lines = []
            for s in items:
                hit = ALPHA[s.index % 4][m] if model == "alpha" else mode == "v"
                pred = s.answer if hit else _wrong(s.answer)
                if model == "alpha" and mode in ("v", "wv") and s.index == 0:
                    pred = IMG_PRED  # starts with "A", the answer: a hit
                if model == "alpha" and mode == "t" and s.index == 3:
                    pred = "I cannot tell without the picture."
                lines.append({"index": s.index, "mode": mode, "prediction": pred, "answer": s.answer,
                              "category": s.category, "l2_category": s.l2_category, "source": s.source,
                              "question": s.question, "options": s.options, "error": None})
            (run_dir / f"{mode}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        write_manifest(run_dir, {"model_label": model, "benchmark": "mini", "prompt": "official", "shots": 0,
                                 "dataset": str(bench_path), "n_samples": n})
        write_scores(run_dir)
        dirs[model] = run_dir
    return dirs


@pytest.fixture
def runs(tmp_path):
    return write_runs(tmp_path)


# ------------------------------------------------------------------ data layer


def test_rows_match_the_leaderboard_and_scores_json(runs):
    view = data.load([runs["alpha"].parent.parent])
    assert view.problems == [] and [vr.key for vr in view.runs] == ["alpha / mini", "beta / mini"]
    for matcher in ("official", "robust"):
        ref = build_rows([open_run(d) for d in runs.values()], matcher)
        mine = view.leaderboard(matcher)
        assert [{k: r[k] for k in ref[0]} for r in mine] == ref
    scores = json.loads((runs["alpha"] / "scores.json").read_text())
    row = view.leaderboard("official")[0]
    for key in ("S_v", "S_wv", "S_t", "MG", "ML"):
        assert row[key] == round(scores[key], 2)
    assert view.summary("alpha / mini", "v", "official")["categories"] == scores["v"]["categories"]
    assert view.matchers == ("official", "robust")  # no judge fields in these records


def test_flags_filters_search_paging_and_diff(runs):
    view = data.load([runs["alpha"], runs["beta"]])
    frame = view.run("alpha / mini").frame
    fl = samples.flags(frame, "robust")
    for flag, indices in EXPECTED_FLAGS.items():
        assert frame["index"][fl[flag]].tolist() == indices
    f = samples.filter_samples
    assert f(frame, "robust", SampleFilter(flag="leaked", categories=["coarse perception"]))["index"].tolist() == [0]
    assert f(frame, "robust", SampleFilter(unparsed=True))["index"].tolist() == [3]
    assert f(frame, "robust", SampleFilter(search="ONERROR"))["index"].tolist() == [0]  # in a prediction
    assert f(frame, "robust", SampleFilter(search="shape 7"))["index"].tolist() == [7]
    axis = frame["l2_category"][5]
    assert set(f(frame, "robust", SampleFilter(axes=[axis]))["l2_category"]) == {axis}
    assert len(f(frame, "robust", SampleFilter(sources=["nowhere"]))) == 0
    with pytest.raises(ValueError, match="unknown flag"):
        f(frame, "robust", SampleFilter(flag="bogus"))
    assert samples.page(frame, 2, 5)["index"].tolist() == [5, 6, 7, 8, 9]
    assert samples.page(frame, 99, 5)["index"].tolist() == [10, 11]  # clamped to the last page
    listed = samples.sample_list(frame, "robust")
    assert listed["flags"][0] == "leaked" and listed["t"][3] == "wrong"
    counts, table = samples.diff(frame, view.run("beta / mini").frame, "robust", "v")
    # alpha is right in v on i % 4 in (0, 1), beta on all
    assert counts == {"common samples": N, "both right": 6, "only A right": 0, "only B right": 6, "both wrong": 0}
    assert table["index"].tolist() == [2, 3, 6, 7, 10, 11] and set(table["B"]) == {"right"}


def test_judge_fields_add_a_matcher_when_present(runs, monkeypatch, tmp_path):
    path = runs["alpha"] / "t.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    for rec in lines:  # the judge was asked on the unparsed reply, and read answer B into it
        rec["extract_rule"] = "none" if rec["index"] == 3 else "letter"
        if rec["index"] == 3:
            rec.update(judge="The reply picks B.", judge_choice=rec["answer"])
        if rec["index"] == 1:  # an audit pick: the reply parsed (a wrong letter); the judge disagrees
            rec.update(judge="It says the answer.", judge_choice=rec["answer"], judge_audit=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    view = data.load([runs["alpha"]])
    assert view.matchers == ("official", "robust", "judge")
    t_robust = view.summary("alpha / mini", "t", "robust")
    t_judge = view.summary("alpha / mini", "t", "judge")
    # the judge decides the unparsed reply only: it never overrides the extractor's letter
    assert t_judge["hits"] == t_robust["hits"] + 1 and t_judge["judge_decided"] == 1
    assert t_judge == score_records(open_run(runs["alpha"]).records["t"], "robust_judge")  # the one function
    assert view.run("alpha / mini").frame["t_judge"].tolist()[1] is False
    row = view.leaderboard("judge")[0]
    assert row["S_t"] == round(100 * t_judge["hits"] / N, 2) and row["matcher"] == "judge"
    assert view.run("alpha / mini").frame["t_rule"].tolist()[3] == "none"
    at = _app(monkeypatch, [runs["alpha"]])
    at.sidebar.radio(key="matcher").set_value("judge").run()
    board = at.dataframe[0].value
    assert board["S_t"].tolist() == [row["S_t"]] and board["judged v"].tolist() == [0]
    out = tmp_path / "judge.html"
    assert main(["report", str(runs["alpha"]), "--html", str(out), "--matcher", "judge"]) == 0
    assert f'data-col="S_t">{row["S_t"]:.2f}' in out.read_text()
    assert_clean_error(run_cli("report", str(runs["beta"]), "--html", str(out), "--matcher", "judge"),
                       "matcher 'judge' not available here")


def test_problems_are_one_line_each_and_the_rest_is_shown(tmp_path, runs):
    empty = tmp_path / "empty"
    empty.mkdir()
    # a half-written run: torn last line, no t.jsonl, no scores.json
    half = tmp_path / "half" / "gamma" / "mini"
    half.mkdir(parents=True)
    v_lines = (runs["alpha"] / "v.jsonl").read_text().splitlines()
    (half / "v.jsonl").write_text("\n".join(v_lines[:6]) + "\n" + v_lines[6][:25])
    (half / "wv.jsonl").write_text((runs["alpha"] / "wv.jsonl").read_text())
    write_manifest(half, {"model_label": "gamma", "benchmark": "mini", "n_samples": N})
    # a run of another benchmark with free-form categories, and one with a corrupt line mid-file
    other = tmp_path / "other" / "delta" / "ai2d"
    other.mkdir(parents=True)
    rec = {"prediction": "A", "answer": "A", "category": "food chains", "l2_category": "", "question": "Q?"}
    (other / "v.jsonl").write_text("".join(json.dumps({"index": i, **rec}) + "\n" for i in range(4)))
    broken = tmp_path / "broken" / "eps" / "mini"
    broken.mkdir(parents=True)
    (broken / "v.jsonl").write_text('{"index": 0, "prediction": "A", "answer": "A"}\n{oops\n{"index": 2}\n')
    view = data.load([empty, tmp_path / "missing", half.parent.parent, other, broken, runs["beta"]])
    text = "\n".join(view.problems)
    assert f"{empty}: no runs found" in text and f"{tmp_path / 'missing'}: no such folder" in text
    assert f"{half / 'v.jsonl'}: torn last line ignored" in text
    assert f"{half}: no t.jsonl" in text and f"{half}: incomplete: v 6/{N}" in text
    assert f"{half}: no scores.json" in text
    assert f"{other}: benchmark 'ai2d' is not in the MMStar taxonomy (1 categories of its own)" in text
    assert f"{broken / 'v.jsonl'}, row 2: invalid prediction line" in text
    assert all("\n" not in p for p in view.problems)
    assert [vr.key for vr in view.runs] == ["gamma / mini", "delta / ai2d", "beta / mini"]
    rows = {r["run"]: r for r in view.leaderboard("official")}
    assert rows["gamma / mini"]["S_t"] is None and rows["gamma / mini"]["n"] == 6
    assert rows["delta / ai2d"]["S_v"] == 100.0 and rows["delta / ai2d"]["CP"] is None
    labels, series = samples.radar_axes(view, ["delta / ai2d"], "capability")
    assert labels == ["food chains"] and series == {"delta / ai2d": [100.0]}


def test_imported_peer_logs_load_without_images(tmp_path):
    rows = [{"index": i, "question": f"Which colour {i}?", "A": "red", "B": "green", "C": "blue", "D": "grey",
             "answer": "ABCD"[i % 4], "category": "coarse perception", "l2_category": "image emotion",
             "prediction": "ABCD"[(i * 3) % 4]} for i in range(8)]
    f = tmp_path / "peer_MMStar.tsv"
    pd.DataFrame(rows).to_csv(f, sep="\t", index=False)
    assert main(["import", "vlmevalkit", str(f), "--out", str(tmp_path / "runs")]) == 0
    lmms = tmp_path / "x_samples_mmstar.jsonl"
    lmms.write_text("".join(json.dumps({"doc_id": i, "target": "A", "resps": [["A" if i % 2 else "B"]],
                                        "input": f"Q{i}\nOptions: A: a, B: b, C: c, D: d",
                                        "average": {"question_id": i, "l2_category": "geometry", "score": i % 2}})
                            + "\n" for i in range(4)))
    assert main(["import", "lmms-eval", str(lmms), "--model", "qwen", "--mode", "wv",
                 "--out", str(tmp_path / "runs")]) == 0
    view = data.load([tmp_path / "runs"])
    scores = json.loads((tmp_path / "runs" / "peer" / "MMStar" / "scores.json").read_text())
    rows = {r["run"]: r for r in view.leaderboard("official")}
    assert rows["peer / MMStar"]["S_v"] == round(scores["S_v"], 2) and rows["qwen / mmstar"]["S_wv"] == 50.0
    vr = view.run("peer / MMStar")
    data_, why = Images().image(vr.run.manifest, 0, vr.frame["question"][0])
    assert data_ is None and "no data spec" in why


def test_images_by_index_from_the_manifest_spec_and_why_not(runs, tmp_path):
    view = data.load([runs["alpha"]])
    manifest = view.run("alpha / mini").run.manifest
    frame = view.run("alpha / mini").frame
    images = Images()
    png, why = images.image(manifest, 5, frame["question"][5])
    assert why == "" and png.startswith(b"\x89PNG")
    none, why = images.image(manifest, 5, "another question")
    assert none is None and "another question than the run's" in why
    thumb, _ = images.thumbnail(manifest, 5, frame["question"][5], size=8)
    assert thumb.startswith(b"\xff\xd8")
    gone, why = Images(str(tmp_path / "nope.parquet")).image(manifest, 5)
    assert gone is None and "not readable here" in why


def test_import_of_the_viewer_stays_light(tmp_path):
    import subprocess
    import sys

    code = ("import sys, mmstar.viewer, mmstar.viewer.data, mmstar.viewer.samples, mmstar.viewer.report,"
            " mmstar.viewer.cli;"
            "print(mmstar.viewer.__file__);"
            "print([m for m in ('streamlit', 'matplotlib', 'torch', 'transformers') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    file, heavy = proc.stdout.split("\n")[:2]
    assert file.endswith("viewer/__init__.py") and heavy == "[]"


# ------------------------------------------------------------------ HTML report


def _tags(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every real tag of an HTML document with its attributes (escaped text holds none)."""
    from html.parser import HTMLParser

    found = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, [(a, v or "") for a, v in attrs]))

    Collect().feed(text)
    return found


def test_report_is_self_contained_escaped_and_shows_the_scores(runs, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", str(runs["alpha"].parent.parent), str(tmp_path / "nothing"), "--html", str(out)]) == 0
    text = out.read_text()
    tags = _tags(text)
    assert "script" not in {t for t, _ in tags} and "b" not in {t for t, _ in tags}
    assert not [a for _, attrs in tags for a, _v in attrs if a.startswith("on")]  # no event handler
    links = [v for _, attrs in tags for a, v in attrs if a in ("src", "href", "srcset", "action")]
    assert links and all(v.startswith("data:image/") for v in links)  # nothing fetched from anywhere
    assert html.escape(SCRIPT_Q) in text and html.escape(IMG_PRED) in text
    assert "default-src 'none'" in text and f"{tmp_path / 'nothing'}: no such folder" in text
    for model, run_dir in runs.items():
        scores = json.loads((run_dir / "scores.json").read_text())
        for key in ("S_v", "S_wv", "S_t", "MG", "ML"):
            cell = re.search(rf'data-run="{model} / mini" data-col="{key}">([-\d.]+)', text)
            assert cell and cell.group(1) == f"{scores[key]:.2f}", (model, key)
    # alpha's three leaked samples are listed, each with an inline JPEG thumbnail of its image
    assert "alpha / mini: 3 leaked sample(s)" in text and "beta / mini: 0 leaked sample(s)" in text
    thumbs = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', text)
    assert len(thumbs) == 3 and all(base64.b64decode(t).startswith(b"\xff\xd8") for t in thumbs)
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 3  # MG-ML and two radars


def test_report_and_view_cli_errors_are_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_error(run_cli("report", str(empty), "--html", str(tmp_path / "r.html")), "no runs to report",
                       "no runs found")
    assert not (tmp_path / "r.html").exists()
    assert_clean_error(run_cli("view", str(empty)), "no runs to show", "no runs found")


# ------------------------------------------------------------------ the app (AppTest)

APP = str(__import__("pathlib").Path(data.__file__).with_name("app.py"))


def _app(monkeypatch, paths):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MMSTAR_VIEW_PATHS", json.dumps([str(p) for p in paths]))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def test_app_leaderboard_charts_and_diff(monkeypatch, runs, tmp_path):
    at = _app(monkeypatch, [runs["alpha"].parent.parent, tmp_path / "nothing"])
    assert f"{tmp_path / 'nothing'}: no such folder" in [t.value for t in at.text]
    board = at.dataframe[0].value
    for model, run_dir in runs.items():
        scores = json.loads((run_dir / "scores.json").read_text())
        row = board[board["model"] == model].iloc[0]
        assert [row[k] for k in ("S_v", "S_wv", "S_t", "MG", "ML")] == [
            round(scores[k], 2) for k in ("S_v", "S_wv", "S_t", "MG", "ML")]
    assert board["S_v 95%"].str.match(r"^\[\d+\.\d\d, \d+\.\d\d\]$").all()
    at.sidebar.radio(key="matcher").set_value("robust").run()
    robust = json.loads((runs["alpha"] / "scores.json").read_text())["wv"]["robust_overall"]
    assert at.dataframe[0].value["S_wv"].tolist()[0] == round(robust, 2)
    at.sidebar.radio(key="page").set_value("Charts").run()
    assert not at.exception and len(at.get("image")) == 3
    at.radio(key="charts-mode").set_value("t").run()
    assert not at.exception
    at.sidebar.radio(key="page").set_value("Diff").run()
    assert [m.value for m in at.metric] == ["12", "6", "0", "6", "0"]
    assert at.dataframe[0].value["index"].tolist() == [2, 3, 6, 7, 10, 11]
    # a run appears on disk while the app is open: "Reload runs" reads the folders again
    write_runs(tmp_path / "later")
    at = _app(monkeypatch, [runs["alpha"].parent.parent, tmp_path / "later" / "runs" / "beta"])
    (tmp_path / "later" / "runs" / "beta" / "mini" / "t.jsonl").unlink()
    missing_t = "beta/mini: no t.jsonl (scores of that mode, MG or ML not available)"
    assert not any(t.value.endswith(missing_t) for t in at.text)
    at.sidebar.button(key="reload").click().run()
    assert any(t.value.endswith(missing_t) for t in at.text)


def test_app_sample_browser_flags_filters_and_text_only(monkeypatch, runs):
    at = _app(monkeypatch, [runs["alpha"], runs["beta"]])
    at.sidebar.radio(key="page").set_value("Samples").run()
    texts = [t.value for t in at.text]
    assert any(t.startswith(SCRIPT_Q) for t in texts)  # the question, as text
    assert next(c.value for c in at.code) == IMG_PRED  # the prediction, as text
    assert not [m for m in at.markdown if "<script>" in m.value or "onerror" in m.value]
    assert len(at.get("image")) == 1  # the sample's image, from the manifest's data spec
    at.sidebar.selectbox(key="f-flag").set_value("leaked").run()
    assert at.dataframe[0].value["index"].tolist() == [0, 4, 8]
    assert "3 of 12 samples match; showing 3 on page 1" in " ".join(t.value for t in at.text)
    at.selectbox(key="sample").set_value(4).run()
    assert "flags: leaked" in [t.value for t in at.text]
    at.selectbox(key="model-b").set_value("beta / mini").run()
    texts = [t.value for t in at.text]
    assert "model: beta / mini" in texts and "flags: needs image" in texts
    at.sidebar.selectbox(key="f-flag").set_value("(any)").run()
    at.sidebar.text_input(key="f-search").set_value("cannot tell").run()
    assert at.dataframe[0].value["index"].tolist() == [3]
    at.sidebar.text_input(key="f-search").set_value("").run()
    at.sidebar.checkbox(key="f-unparsed").check().run()
    assert at.dataframe[0].value["index"].tolist() == [3]
    at.sidebar.checkbox(key="f-unparsed").uncheck().run()
    at.sidebar.multiselect(key="f-cap").set_value(["math"]).run()
    assert set(at.dataframe[0].value["category"]) == {"math"}
    assert not at.exception


def test_app_pages_a_long_list_and_says_when_nothing_loads(monkeypatch, tmp_path):
    runs = write_runs(tmp_path, n=60, html_question=False, images=False)
    at = _app(monkeypatch, [runs["alpha"]])
    at.sidebar.radio(key="page").set_value("Samples").run()
    assert len(at.dataframe[0].value) == 25
    at.number_input(key="page-no").set_value(3).run()
    assert at.dataframe[0].value["index"].tolist() == list(range(50, 60))
    assert any(t.value.startswith("image not available: sample") for t in at.text)
    empty = tmp_path / "empty"
    empty.mkdir()
    at = _app(monkeypatch, [empty])
    assert next(t.value for t in at.text) == f"{empty}: no runs found (no <model>/<benchmark>/ folder with " \
                                             "v.jsonl, wv.jsonl or t.jsonl)"
    assert "Nothing to show" in at.info[0].value


def test_flags_are_documented():
    assert set(FLAGS) == set(EXPECTED_FLAGS)
