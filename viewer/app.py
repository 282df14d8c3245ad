"""Streamlit app of ``mmstar view``: leaderboard, radar charts, MG vs ML, sample browser, two-model diff, probes.

Started by ``mmstar view`` (configuration through MMSTAR_VIEW_* environment variables). Every piece
of run data (questions, options, predictions, names, problem lines) is shown with ``st.text``,
``st.code`` or inside ``st.dataframe``: as text, never as HTML or markdown, so a ``<script>`` in a
question stays characters on the screen.
"""

from __future__ import annotations

import json
import os

import pandas as pd
import streamlit as st
from mmstar.viewer import charts
from mmstar.viewer.access import require_token
from mmstar.viewer.data import ViewData, load
from mmstar.viewer.images import Images
from mmstar.viewer.probes import (
    FLAG_COLUMNS,
    TABLE_COLUMNS,
    evidence_column,
    fired_line,
    interval_figure,
    probe_rows,
)
from mmstar.viewer.samples import (
    EVIDENCE_FILTER,
    FLAGS,
    SampleFilter,
    diff,
    filter_samples,
    flags,
    hits,
    page,
    paired,
    probes_ran,
    radar_axes,
    sample_flags_of,
)
from mmstar.viewer.samples import sample_list as list_table

from mmstar import taxonomy
from mmstar.launch import SERVER_MEMO
from mmstar.runs import MODES

PATHS = tuple(json.loads(os.environ.get("MMSTAR_VIEW_PATHS", "[]")))
DATA = os.environ.get("MMSTAR_VIEW_DATA") or None
SEED = int(os.environ.get("MMSTAR_VIEW_SEED", "0") or 0)
PAGE_SIZE = 25
PAGES = ("Leaderboard", "Charts", "Samples", "Diff", "Probes")
MATCHER_HELP = {"official": "the official MMStar matcher (first character of the reply)",
                "robust": "the robust extractor (letter or unparsed, never a guess)",
                "judge": "the robust extractor, with the judge model's letter where it was asked"}


# loaded once per server process, in a memo Streamlit's "clear caches" message cannot empty (any client
# may send it, before the token too): see mmstar.launch.ServerMemo; "Reload runs" clears it
def _view(paths: tuple[str, ...], seed: int) -> ViewData:
    return SERVER_MEMO.get(("view", paths, seed), lambda: load(paths, seed))


def _images(spec: str | None) -> Images:
    return SERVER_MEMO.get(("view-images", spec), lambda: Images(spec))


@st.cache_data(show_spinner=False, max_entries=64)
def _radar_png(paths: tuple[str, ...], keys: tuple[str, ...], level: str, mode: str, matcher: str) -> bytes | None:
    labels, series = radar_axes(_view(paths, SEED), keys, level, mode, matcher)
    if len(labels) < 3:
        return None
    title = f"S_{mode} per {level} ({len(labels)}, {matcher} matcher)"
    return charts.png(charts.radar_figure(labels, series, title))


@st.cache_data(show_spinner=False, max_entries=16)
def _mg_ml_png(paths: tuple[str, ...], keys: tuple[str, ...], matcher: str) -> bytes:
    rows = [r for r in _view(paths, SEED).leaderboard(matcher) if r.get("run") in keys]
    return charts.png(charts.mg_ml_figure(rows))


def _problems(view: ViewData) -> None:
    if not view.problems:
        return
    with st.expander(f"{len(view.problems)} problem(s) found; everything else is shown", expanded=True):
        for line in view.problems:
            st.text(line)


def _fmt_ci(low: float | None, high: float | None) -> str | None:
    return None if low is None or pd.isna(low) else f"[{low:.2f}, {high:.2f}]"


def leaderboard_frame(rows: list[dict], with_judge: bool) -> pd.DataFrame:
    codes = [c for c in taxonomy.CODES if any(r.get(c) is not None for r in rows)]
    df = pd.DataFrame(rows)
    out = pd.DataFrame({"model": df["model"], "benchmark": df["benchmark"], "S_v": df["S_v"],
                        "S_v 95%": [_fmt_ci(a, b) for a, b in zip(df["S_v_low"], df["S_v_high"])],
                        "S_wv": df["S_wv"], "S_t": df["S_t"], "MG": df["MG"],
                        "MG 95%": [_fmt_ci(a, b) for a, b in zip(df["MG_low"], df["MG_high"])], "ML": df["ML"],
                        "S_wv - S_t 95%": [_fmt_ci(a, b) for a, b in zip(df["wv_minus_t_low"], df["wv_minus_t_high"])]})
    for c in codes:
        out[c] = df[c]
    out["macro"], out["n"], out["unparsed v"] = df["macro"], df["n"], df["unparsed_v"]
    if with_judge:
        out["judged v"] = df["judged_v"]
    for m in MODES:  # format compliance: % of replies the official matcher can read
        out[f"format {m}"] = df.get(f"format_{m}")
    if "probes_fired" in df:  # some run ran the leakage probes (their figures: the Probes page)
        out["probes fired"] = df["probes_fired"]
    return out


def page_leaderboard(view: ViewData, matcher: str) -> None:
    st.header("Leaderboard")
    rows = view.leaderboard(matcher)
    st.caption("Click a column header to sort. Scores are recomputed from the prediction files; 95% seeded "
               "bootstrap intervals (paired for MG and S_wv - S_t; ML = max(0, S_wv - S_t)). format v / wv / t: "
               "the share of replies the official matcher can read (a letter where it looks).")
    st.dataframe(leaderboard_frame(rows, matcher == "judge"), hide_index=True, key="board",
                 column_config={c: st.column_config.NumberColumn(format="%.2f") for c in
                                ("S_v", "S_wv", "S_t", "MG", "ML", "macro", *taxonomy.CODES,
                                 *(f"format {m}" for m in MODES))})
    for r in rows:
        if r.get("MG_spans_zero"):
            st.text(f"{r['model']} / {r['benchmark']}: MG interval {_fmt_ci(r['MG_low'], r['MG_high'])} spans 0")
        if r.get("ML_spans_zero"):
            st.text(f"{r['model']} / {r['benchmark']}: S_wv - S_t interval "
                    f"{_fmt_ci(r['wv_minus_t_low'], r['wv_minus_t_high'])} spans 0 (ML not distinguishable from 0)")


def _bench_runs(view: ViewData, key: str) -> list[str]:
    benches = view.benchmarks()
    bench = st.selectbox("Benchmark", benches, key=f"{key}-bench") if len(benches) > 1 else benches[0]
    return [vr.key for vr in view.runs if vr.benchmark == bench]


def page_charts(view: ViewData, matcher: str) -> None:
    st.header("Charts")
    keys = _bench_runs(view, "charts")
    chosen = st.multiselect("Runs overlaid", keys, default=keys, key="charts-runs")
    mode = st.radio("Mode", MODES, horizontal=True, key="charts-mode",
                    format_func=lambda m: {"v": "v (with image)", "wv": "wv (image removed)", "t": "t (LLM)"}[m])
    chosen = [k for k in chosen if mode in view.run(k).modes]
    if not chosen:
        st.info("No chosen run has predictions in this mode.")
    else:
        left, right = st.columns(2)
        for col, level in ((left, "capability"), (right, "axis")):
            data = _radar_png(PATHS, tuple(chosen), level, mode, matcher)
            if data is None:
                col.info(f"Fewer than 3 {level} labels in these runs: no radar chart.")
            else:
                col.image(data, caption=f"per {level}", width="stretch")
    st.subheader("Multi-modal gain vs. leakage")
    all_keys = tuple(vr.key for vr in view.runs)
    st.image(_mg_ml_png(PATHS, all_keys, matcher), caption="every run with v, wv and t; bars: 95% intervals")


def _filters(frame: pd.DataFrame) -> SampleFilter:
    """Filters live in the sidebar so the main area keeps the list and the sample side by side."""
    bar = st.sidebar
    bar.header("Filters")
    categories = bar.multiselect("Capability", sorted(set(frame["category"]) - {""}), key="f-cap")
    axes_in = frame if not categories else frame[frame["category"].isin(categories)]
    axes = bar.multiselect("Axis", sorted(set(axes_in["l2_category"]) - {""}), key="f-axis")
    ran = probes_ran(frame)  # a leakage probe's flag is offered where the probe ran
    helps = {**FLAGS, **{c: FLAG_COLUMNS[c][1] for c in ran}}
    if ran:
        helps[EVIDENCE_FILTER] = "flagged by a probe that fires for this run, in a mode where it fired"
    flag = bar.selectbox("Flag (model A)", ["(any)", *helps], key="f-flag",
                         help="; ".join(f"{k}: {v}" for k, v in helps.items()))
    sources = bar.multiselect("Source", sorted(set(frame["source"]) - {""}), key="f-source")
    search = bar.text_input("Search question, options, predictions", key="f-search")
    unparsed = bar.checkbox("Only samples unparsed in some mode", key="f-unparsed")
    return SampleFilter(categories, axes, None if flag == "(any)" else flag, sources, unparsed, search)


def _show_run(box, view: ViewData, key: str, index: int, matcher: str) -> None:
    """One run's v / wv / t replies to one sample, each with its verdict, in container ``box``."""
    vr = view.run(key)
    rows = vr.frame[vr.frame["index"] == index]
    box.text(f"model: {key}")
    if rows.empty:
        box.text("(no prediction for this sample)")
        return
    row = rows.iloc[0]
    hit = hits(rows, matcher).iloc[0]
    fl = sample_flags_of(rows, matcher)[0]
    box.text(f"flags: {', '.join(fl) or 'none'}")
    ran = probes_ran(rows)
    if ran:
        leaked = flags(rows, matcher)["leaked"]
        box.text(f"leakage evidence: {evidence_column(rows, leaked).iloc[0] or 'none'} "
                 f"(probes run on this sample: {', '.join(ran)})")
    for mode in MODES:
        if pd.isna(row[f"{mode}_pred"]):
            box.text(f"{mode}: not run")
            continue
        verdict = "right" if hit[mode] else "wrong"
        box.text(f"{mode}: {verdict} (extracted: {row[f'{mode}_choice'] or 'unparsed'})")
        box.code(row[f"{mode}_pred"] or "(empty reply)", language=None, wrap_lines=True)
        for field, label in (("error", "error"), ("rule", "extract rule"), ("judge_reply", "judge")):
            value = row[f"{mode}_{field}"]
            if value is not None and not pd.isna(value):
                box.text(f"{label}: {value}")


def page_samples(view: ViewData, matcher: str) -> None:
    st.header("Samples")
    keys = _bench_runs(view, "samples")
    c1, c2 = st.columns(2)
    a = c1.selectbox("Model A", keys, key="model-a")
    b = c2.selectbox("Model B (side by side)", ["(none)", *[k for k in keys if k != a]], key="model-b")
    frame = view.run(a).frame
    chosen = filter_samples(frame, matcher, _filters(frame))
    pages = max(1, -(-len(chosen) // PAGE_SIZE))
    c1, c2, c3 = st.columns([1, 1, 2])
    number = int(c1.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, key="page-no"))
    shown = page(chosen, number, PAGE_SIZE)
    c3.text(f"\n{len(chosen)} of {len(frame)} samples match; showing {len(shown)} on page {min(number, pages)}")
    if shown.empty:
        return
    index = c2.selectbox("Sample (index)", shown["index"].tolist(), key="sample")
    widths = {"index": "small", "answer": "small", "v": "small", "wv": "small", "t": "small", "question": "large"}
    st.dataframe(list_table(shown, matcher), hide_index=True, key="sample-list", height=250,
                 column_config={k: st.column_config.Column(width=w) for k, w in widths.items()})
    row = shown[shown["index"] == index].iloc[0]
    left, right = st.columns([1, 2])
    with st.spinner("Loading the image (the benchmark is read once, on the first image) ..."):
        data, why = _images(DATA).image(view.run(a).run.manifest, int(index), row["question"])
    if data is not None:
        left.image(data, caption=f"index {index}", width="stretch")
    else:
        left.text(f"image not available: {why}")
    right.text(f"index {index}  |  {row['category']}  |  {row['l2_category']}  |  source {row['source']}")
    right.text(row["question"])
    right.text(row["options"])
    right.text(f"answer: {row['answer']}")
    boxes = st.columns(2) if b != "(none)" else [st.container()]
    for box, key in zip(boxes, (a, b)):
        _show_run(box, view, key, int(index), matcher)


def page_diff(view: ViewData, matcher: str) -> None:
    st.header("Two-model diff")
    keys = _bench_runs(view, "diff")
    if len(keys) < 2:
        st.info("A diff needs two runs of the same benchmark.")
        return
    c1, c2 = st.columns(2)
    a = c1.selectbox("Model A", keys, key="diff-a")
    b = c2.selectbox("Model B", [k for k in keys if k != a], key="diff-b")
    mode = st.radio("Mode", MODES, horizontal=True, key="diff-mode")
    if mode not in view.run(a).modes or mode not in view.run(b).modes:
        st.info(f"Both runs need {mode} predictions.")
        return
    counts, table = diff(view.run(a).frame, view.run(b).frame, matcher, mode)
    for col, (name, n) in zip(st.columns(len(counts)), counts.items()):
        col.metric(name, n)
    if counts["common samples"]:
        p = paired(view.run(a).frame, view.run(b).frame, matcher, mode, view.seed)
        st.text(f"A - B = {p['difference']:.2f} points, 95% paired bootstrap interval "
                f"[{p['difference_low']:.2f}, {p['difference_high']:.2f}]"
                f"{' (spans 0)' if p['spans_zero'] else ''}; McNemar exact p = {p['mcnemar_p']:.4g} "
                f"({p['mcnemar_only_a']} only A right, {p['mcnemar_only_b']} only B right)")
    st.dataframe(table, hide_index=True, key="diff-table")


def page_probes(view: ViewData, matcher: str) -> None:
    st.header("Leakage probes")
    st.caption("Evidence beyond ML. order: every rotation of the options, the answer moved with its option "
               "(CircularEval counts a sample only when every rotation is right; sensitivity = accuracy on the "
               "original order minus the rotated mean). slots: a wrong option's text masked, the model asked to "
               "write it out without the image (wv) and as the LLM (t). swap: each sample asked with another "
               "sample's image of the same capability. backbone: S_wv - S_t on the same samples. Each verdict "
               "has a p against a stated null (order: the model's own letter preferences; slots: wv against t "
               "on the same masks; swap: the backbone's excess over its own letter chance; backbone: S_wv "
               "against S_t), Holm-adjusted over the run; it fires when p_adjusted < 0.05.")
    keys = [vr.key for vr in view.runs if vr.run.probe_records]
    if not keys:
        st.info("No run here has probe records (run with --probes order,slots,swap).")
        return
    rows = [r for k in keys for r in probe_rows(k, view.probes(k, matcher))]
    for k in keys:
        st.text(fired_line(k, view.probes(k, matcher)))
    st.image(charts.png(interval_figure(rows)), caption="each verdict's figure with its 95% interval and "
             "Holm-adjusted p (red: fires)")
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table.insert(7, "95%", [_fmt_ci(lo, hi) for lo, hi in zip(table["low"], table["high"])])
    st.dataframe(table.drop(columns=["low", "high"]), hide_index=True, key="probe-table",
                 column_config={"value": st.column_config.NumberColumn(format="%.2f")})


def main() -> None:
    st.set_page_config(page_title="mmstar view", layout="wide")
    require_token()  # before any run is read: a stranger's session gets the token form and nothing else
    with st.spinner("Reading run directories ..."):
        view = _view(PATHS, SEED)
    st.sidebar.title("mmstar view")
    where = st.sidebar.radio("Page", PAGES, key="page")
    matcher = st.sidebar.radio("Matcher", view.matchers, key="matcher", help="; ".join(
        f"{k}: {MATCHER_HELP[k]}" for k in view.matchers))
    st.sidebar.text(f"{len(view.runs)} run(s)")
    if st.sidebar.button("Reload runs", key="reload", help="read the run directories again (a run still going)"):
        SERVER_MEMO.clear()
        for cached in (_radar_png, _mg_ml_png):
            cached.clear()
        st.rerun()
    _problems(view)
    if not view.runs:
        st.info("Nothing to show: no readable run was found (see the problems above).")
        return
    pages = {"Leaderboard": page_leaderboard, "Charts": page_charts, "Samples": page_samples, "Diff": page_diff,
             "Probes": page_probes}
    pages[where](view, matcher)


main()
