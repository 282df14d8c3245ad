"""Leaderboard rows from run directories, the CSV, the official submission xlsx files, and the
console table. One row per (model, benchmark); a model evaluated on several benchmarks also gets
an ``average`` row (MG and ML by the paper's Table 4 rule)."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmstar import taxonomy
from mmstar.atomic import atomic_write_text
from mmstar.errors import MmstarError
from mmstar.runs import Run, find_run_dirs, open_run, slugify
from mmstar.scoring import MATCHERS
from mmstar.writers import write_xlsx_table

from .leakage import BenchScores, average_gain_leakage
from .uncertainty import bootstrap_paired_difference, bootstrap_score

if TYPE_CHECKING:
    import pandas as pd

BASE_COLUMNS = ["model", "benchmark", "S_v", "S_wv", "S_t", "MG", "ML", *taxonomy.CODES, "macro", "n", "matcher",
                "prompt", "shots", "dtype", "unparsed_v", "protocol"]
# S_v under the other scorings, beside the official figures (robust+judge only once a judge has run)
SCORING_COLUMNS = ["S_v_official", "S_v_robust", "S_v_robust_judge", "judge_decided_v"]
CI_COLUMNS = ["S_v_low", "S_v_high", "MG_low", "MG_high", "MG_spans_zero", "wv_minus_t", "wv_minus_t_low",
              "wv_minus_t_high", "ML_spans_zero"]
# "extracted": S_t ran the LVLM's own LM cut out by `mmstar backbone extract`, not the original LLM
# format compliance per mode: % of replies the official matcher can read (a letter where it looks)
FORMAT_COLUMNS = ["format_v", "format_wv", "format_t"]
COLUMNS = BASE_COLUMNS + CI_COLUMNS + ["S_t_kind"] + SCORING_COLUMNS + FORMAT_COLUMNS


def _with_ci(*names: str) -> list[str]:
    return [c for n in names for c in (n, f"{n}_low", f"{n}_high")]


# the leakage probes (scores.json's "probes" block): written only when some run of the table ran a
# probe, so the columns of a table without probes stay as 0.1.0 wrote them
# each verdict (probe, mode) gives its p against its null and Holm's adjusted p over the run
VERDICTS = [("order", "v"), ("order", "wv"), ("order", "t"), ("slots", "wv"), ("slots", "t"), ("swap", "v"),
            ("recall", "wv"), ("recall", "t"), ("backbone", "t")]
P_COLUMNS = [f"{probe}_{mode}_{key}" for probe, mode in VERDICTS for key in ("p", "p_adjusted")]
PROBE_COLUMNS = [*_with_ci(*(f"order_circular_{m}" for m in ("v", "wv", "t")),
                           *(f"order_sensitivity_{m}" for m in ("v", "wv", "t")), "slot_rate_wv", "slot_rate_t",
                           "swap_S", "image_dependence", "swap_excess"), "probes_fired",
                 *_with_ci("backbone_gap"), *P_COLUMNS, *_with_ci("recall_wv", "recall_t")]
# (column, probe, mode, key in the probe's figures)
_PROBE_SOURCES = [
    *((f"order_{fig}_{m}", "order", m, fig) for fig in ("circular", "sensitivity") for m in ("v", "wv", "t")),
    *((f"slot_rate_{m}", "slots", m, "rate") for m in ("wv", "t")),
    ("swap_S", "swap", "v", "S_swap"), ("image_dependence", "swap", "v", "image_dependence"),
    ("swap_excess", "swap", "v", "excess"), ("backbone_gap", "backbone", "t", "gap"),
    *((f"recall_{m}", "recall", m, "rate") for m in ("wv", "t"))]


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def run_row(run: Run, matcher: str = "official", seed: int = 0) -> dict[str, Any]:
    summaries = {m: run.summary(m, matcher) for m in ("v", "wv", "t")}
    s = {m: (summaries[m] or {}).get("overall") for m in summaries}
    bench = BenchScores(s["v"], s["wv"], s["t"])
    v = summaries["v"] or {}
    cats = v.get("categories", {})
    row: dict[str, Any] = {
        "model": run.model, "benchmark": run.benchmark, "S_v": _r(s["v"]), "S_wv": _r(s["wv"]), "S_t": _r(s["t"]),
        "MG": _r(bench.mg), "ML": _r(bench.ml), "macro": _r(v.get("macro")), "n": v.get("n"), "matcher": matcher,
        "prompt": run.prompt, "shots": run.shots, "unparsed_v": v.get("unparsed"),
    }
    row.update(run_labels(run, has_t=s["t"] is not None))
    for cap in taxonomy.CAPABILITIES:
        row[cap.code] = _r(cats.get(cap.name))
    row.update(_intervals(run, matcher, seed))
    row.update(scoring_columns(v, *(run.summary("v", m) if v else None for m in MATCHERS)))
    row.update({f"format_{m}": _r((summaries[m] or {}).get("format_compliance")) for m in summaries})
    if run.probe_records:
        row.update(probe_columns(run.scores_for(matcher).get("probes") or {}))
    return row


def probe_columns(block: dict[str, Any]) -> dict[str, Any]:
    """The probe columns of one run from its ``probes`` block (None where a probe or mode did not run)."""
    out: dict[str, Any] = dict.fromkeys(PROBE_COLUMNS)
    for column, probe, mode, key in _PROBE_SOURCES:
        fig = (block.get(probe) or {}).get(mode)
        if fig:
            out.update({column: _r(fig.get(key)), f"{column}_low": _r(fig.get(f"{key}_low")),
                        f"{column}_high": _r(fig.get(f"{key}_high"))})
    for probe, mode in VERDICTS:
        fig = (block.get(probe) or {}).get(mode) or {}
        for key in ("p", "p_adjusted"):  # 3 significant digits: a p is read on a log scale
            out[f"{probe}_{mode}_{key}"] = None if fig.get(key) is None else float(f"{fig[key]:.3g}")
    out["probes_fired"] = ";".join(block.get("fired") or [])
    return out


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The table's columns: the probe columns only when some row has them."""
    return COLUMNS + PROBE_COLUMNS if any("probes_fired" in r for r in rows) else COLUMNS


def run_labels(run: Run, has_t: bool) -> dict[str, Any]:
    """The columns that say how a run was made (the same under every matcher); the viewer uses them too."""
    return {"protocol": run.protocol, "dtype": _dtype(run),
            "S_t_kind": "extracted" if has_t and run.manifest.backbone_kind == "extracted" else None}


def scoring_columns(v: dict[str, Any] | None, official: dict[str, Any] | None,
                    robust: dict[str, Any] | None) -> dict[str, Any]:
    """S_v under the official and robust matchers and robust+judge: mode v's summary under the row's
    matcher (``v``, whose judge figures count: robust+judge once judged, or when the row is scored
    by it) and under each matcher."""
    if not v:
        return dict.fromkeys(SCORING_COLUMNS)
    return {"S_v_official": _r((official or {}).get("overall")), "S_v_robust": _r((robust or {}).get("overall")),
            "S_v_robust_judge": _r(v.get("robust_judge_overall")), "judge_decided_v": v.get("judge_decided")}


def _dtype(run: Run) -> str | None:
    """The run's precision: its identity's dtype, else (runs from before it was part of the identity)
    what its backends recorded; "mixed" when those disagree, None when nothing says."""
    if run.manifest.dtype:
        return str(run.manifest.dtype)
    seen = {b.get("dtype") for b in (run.manifest.backends or {}).values() if isinstance(b, dict)} - {None}
    return None if not seen else seen.pop() if len(seen) == 1 else "mixed"


def _intervals(run: Run, matcher: str, seed: int) -> dict[str, Any]:
    return intervals(*(run.hits(m, matcher) if m in run.records else None for m in ("v", "wv", "t")), seed=seed)


def intervals(hv: dict[Any, bool] | None, hwv: dict[Any, bool] | None, ht: dict[Any, bool] | None,
              seed: int = 0) -> dict[str, Any]:
    """The CI columns from per-sample hits (index -> hit) of modes v, wv and t; the viewer uses it too."""
    out: dict[str, Any] = dict.fromkeys(CI_COLUMNS)
    if hv:
        ci = bootstrap_score(hv, seed)
        out.update(S_v_low=_r(ci.low), S_v_high=_r(ci.high))
    if hv and hwv:
        ci = bootstrap_paired_difference(hv, hwv, seed)
        out.update(MG_low=_r(ci.low), MG_high=_r(ci.high), MG_spans_zero=ci.spans_zero)
    if hwv and ht:
        ci = bootstrap_paired_difference(hwv, ht, seed)
        out.update(wv_minus_t=_r(ci.estimate), wv_minus_t_low=_r(ci.low), wv_minus_t_high=_r(ci.high),
                   ML_spans_zero=ci.spans_zero)
    return out


def average_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    # official and reasoning runs of one model are averaged apart, never together
    by_model: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_model[(row["model"], row["protocol"])].append(row)
    out = []
    for (model, protocol), group in by_model.items():
        if len({r["benchmark"] for r in group}) < 2:
            continue
        # the per-benchmark values are recomputed from unrounded S_* via BenchScores
        benches = [BenchScores(r["S_v"], r["S_wv"], r["S_t"]) for r in group]
        mg, ml = average_gain_leakage(benches)

        def mean(key: str, group: list[dict[str, Any]] = group) -> float | None:
            vals = [r[key] for r in group if r[key] is not None]
            return _r(sum(vals) / len(vals)) if vals else None

        avg = dict.fromkeys(COLUMNS)
        avg.update(model=model, benchmark="average", S_v=mean("S_v"), S_wv=mean("S_wv"), S_t=mean("S_t"),
                   MG=_r(mg), ML=_r(ml), macro=mean("macro"), n=sum(r["n"] or 0 for r in group),
                   matcher=group[0]["matcher"], prompt=group[0]["prompt"], shots=group[0]["shots"], protocol=protocol,
                   S_t_kind="extracted" if any(r.get("S_t_kind") for r in group) else None,
                   dtype=group[0]["dtype"] if len({r["dtype"] for r in group}) == 1 else "mixed",
                   **{c: mean(c) for c in FORMAT_COLUMNS})
        out.append(avg)
    return out


def build_rows(runs: Sequence[Run], matcher: str = "official", seed: int = 0) -> list[dict[str, Any]]:
    rows = [run_row(r, matcher, seed) for r in runs]
    return rows + average_rows(rows)


def write_csv(rows: Sequence[dict[str, Any]], path: Path, fields: Sequence[str] | None = None) -> None:
    """The rows in the table's ``columns`` (``fields``: these columns instead; a subset writes an older layout)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(rows) if fields is None else list(fields), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


SUBMISSION_COLUMNS = ["index", "question", "answer", "category", "l2_category", "bench", "prediction"]
SUBMISSION_FILES = {"v": "{model}_{bench}.xlsx", "wv": "{model}_{bench}_wo_image.xlsx",
                    "t": "{model}_{bench}_llm_base.xlsx"}


def write_submission(run: Run, out_dir: Path) -> list[Path]:
    """The official leaderboard files, one per mode present: every data column but ``image``,
    plus ``prediction`` (the raw model text, as the official evaluator expects). Text cells stay text: a
    prediction that starts with ``=`` is a string cell, never a live formula (``write_xlsx_table``)."""
    written = []
    for mode, pattern in SUBMISSION_FILES.items():
        records = run.records.get(mode)
        if records is None:
            continue
        rows = [{"index": r.index, "question": r.question, "answer": r.answer, "category": r.category,
                 "l2_category": r.l2_category, "bench": r.source, "prediction": r.prediction}
                for r in sorted(records, key=lambda r: r.index)]
        name = pattern.format(model=slugify(run.model), bench=slugify(run.benchmark))
        path = out_dir / name
        write_xlsx_table(path, SUBMISSION_COLUMNS, rows)
        written.append(path)
    return written


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    cols = ["model", "benchmark", "S_v", "S_wv", "S_t", "MG", "ML", *taxonomy.CODES, "macro", "n"]
    if any(r.get("protocol", "official") != "official" for r in rows):
        cols.append("protocol")
    if any(r.get("S_v_robust_judge") is not None for r in rows):  # a judge ran: the three figures side by side
        cols += ["S_v_official", "S_v_robust", "S_v_robust_judge", "judge_decided_v"]
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    for r in rows:
        lines.append("  ".join(_cell(r.get(c)).ljust(widths[c]) for c in cols))
    flags = [f"{r['model']}/{r['benchmark']}: MG interval [{r['MG_low']}, {r['MG_high']}] spans 0"
             for r in rows if r.get("MG_spans_zero")]
    flags += [f"{r['model']}/{r['benchmark']}: S_wv - S_t interval [{r['wv_minus_t_low']}, {r['wv_minus_t_high']}] "
              "spans 0 (ML not distinguishable from 0)" for r in rows if r.get("ML_spans_zero")]
    flags += [f"{r['model']}/{r['benchmark']}: S_t from an extracted backbone (the LVLM's own LM after multimodal "
              "training), not the paper's S_t" for r in rows if r.get("S_t_kind") == "extracted"]
    return "\n".join(lines + (["", *flags] if flags else []))


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def publish(run_dirs: Sequence[Path], csv: Path | None = None, radar: Path | None = None,
            submission: Path | None = None, leakage: Path | None = None, mg_ml: Path | None = None,
            json_out: Path | None = None, matcher: str = "official", seed: int = 0,
            echo: bool = False) -> list[dict[str, Any]]:
    if not run_dirs:
        raise MmstarError("no run directories given")
    runs = [open_run(p) for p in run_dirs]
    rows = build_rows(runs, matcher, seed)
    if csv is not None:
        write_csv(rows, csv)
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(rows, indent=2) + "\n")
    if leakage is not None:
        from .leakage import write_leakage_csv

        write_leakage_csv(runs, leakage, matcher)
    if submission is not None:
        for run in runs:
            write_submission(run, submission)
    if radar is not None or mg_ml is not None:
        from .plots import mg_ml_chart, radar_chart

        per_bench = [r for r in rows if r["benchmark"] != "average"]
        if radar is not None:
            radar_chart(per_bench, radar)
        if mg_ml is not None:
            mg_ml_chart(per_bench, mg_ml)
    if echo:
        print(format_table(rows))
    return rows


def leaderboard_frame(run_dirs: Iterable[str | Path], matcher: str = "official", seed: int = 0) -> pd.DataFrame:
    """``mmstar.leaderboard``: the CSV's rows (``average`` rows included) as a DataFrame, its columns in
    the CSV's order; a folder holding several runs (``runs/``) stands for all of them."""
    import pandas as pd

    paths = [Path(p) for p in run_dirs]
    chosen, _problems = find_run_dirs(paths)  # the viewer's discovery: the same runs in both
    if not chosen:
        raise MmstarError(f"no run directory under {', '.join(map(str, paths)) or '(nothing given)'}")
    rows = build_rows([open_run(p) for p in chosen], matcher, seed)
    frame = pd.DataFrame(rows)
    order = columns(rows)
    return frame[[c for c in order if c in frame.columns] + [c for c in frame.columns if c not in order]]
