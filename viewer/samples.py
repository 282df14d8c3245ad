"""Per-sample views over a run's table (``data.run_frame``): hits per mode, the three flags, filters,
the paged list, a two-model diff, and the scores a radar chart draws. Pure pandas."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mmstar import taxonomy
from mmstar.runs import MODES

from .data import ViewData
from .probes import EVIDENCE_COLUMN, FLAG_COLUMNS, evidence_column

# the sample browser's filter on the probes' evidence: samples a probe that fires flagged where it fired
EVIDENCE_FILTER = "probe evidence"

FLAGS = {
    "leaked": "right without the image (wv), its LLM wrong (t)",
    "needs image": "right only with the image (v right; wv and t wrong)",
    "image hurt": "right without the image (wv), wrong with it (v)",
}
_MARKS = {True: "right", False: "wrong"}


def hits(frame: pd.DataFrame, matcher: str) -> pd.DataFrame:
    """hit per mode under ``matcher`` (nullable booleans: NA where the mode has no prediction)."""
    out = pd.DataFrame(index=frame.index)
    for m in MODES:
        col = frame[f"{m}_{matcher}"].astype("boolean")
        out[m] = col.where(frame[f"{m}_pred"].notna(), pd.NA)
    return out


def flags(frame: pd.DataFrame, matcher: str) -> pd.DataFrame:
    """The three per-sample flags of FLAGS (False where a mode needed for the flag is missing)."""
    h = hits(frame, matcher)
    v, wv, t = (h[m].fillna(False).astype(bool) for m in MODES)
    has = {m: h[m].notna() for m in MODES}
    return pd.DataFrame({
        "leaked": wv & ~t & has["wv"] & has["t"],
        "needs image": v & ~wv & ~t & has["wv"],
        "image hurt": wv & ~v & has["v"],
    }, index=frame.index)


@dataclass
class SampleFilter:
    categories: Sequence[str] = ()
    axes: Sequence[str] = ()
    flag: str | None = None  # a key of FLAGS
    sources: Sequence[str] = ()
    unparsed: bool = False  # only samples the robust extractor left unparsed in some mode
    search: str = ""  # case-insensitive, in the question, options and predictions


def filter_samples(frame: pd.DataFrame, matcher: str, f: SampleFilter) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    if f.categories:
        keep &= frame["category"].isin(list(f.categories))
    if f.axes:
        keep &= frame["l2_category"].isin(list(f.axes))
    if f.sources:
        keep &= frame["source"].isin(list(f.sources))
    if f.flag:
        if f.flag == EVIDENCE_FILTER:  # flagged by a probe that fires, where it fired
            keep &= frame[EVIDENCE_COLUMN] != ""
        elif f.flag in FLAG_COLUMNS:  # a leakage probe's flag: only samples the probe ran on and flagged
            keep &= frame[f.flag].fillna(False).astype(bool)
        elif f.flag in FLAGS:
            keep &= flags(frame, matcher)[f.flag]
        else:
            raise ValueError(f"unknown flag {f.flag!r}; choose from "
                             f"{', '.join([*FLAGS, *FLAG_COLUMNS, EVIDENCE_FILTER])}")
    if f.unparsed:
        keep &= frame[[f"{m}_unparsed" for m in MODES]].eq(True).any(axis=1)
    if f.search.strip():
        needle = f.search.strip().lower()
        text = frame["question"] + "\n" + frame["options"]
        for m in MODES:
            text = text + "\n" + frame[f"{m}_pred"].fillna("")
        keep &= text.str.lower().str.contains(needle, regex=False)
    return frame[keep]


def sample_list(frame: pd.DataFrame, matcher: str) -> pd.DataFrame:
    """The paged list's columns: what a reader scans to pick a sample (all plain text)."""
    h = hits(frame, matcher)
    fl = flags(frame, matcher)
    out = pd.DataFrame({"index": frame["index"], "category": frame["category"], "axis": frame["l2_category"],
                        "question": frame["question"].str.slice(0, 120), "answer": frame["answer"]})
    for m in MODES:
        out[m] = h[m].map(_MARKS).fillna("-")
    ran = probes_ran(frame)
    if ran:
        fl = pd.concat([fl, frame[ran].fillna(False).astype(bool)], axis=1)
    names = [*FLAGS, *ran]
    out["flags"] = fl.apply(lambda r: ", ".join(k for k in names if r[k]), axis=1) if len(fl) else ""
    if ran:  # what points at leakage: ML (the leaked flag) and each probe that fires and flagged the sample
        out["evidence"] = evidence_column(frame, fl["leaked"])
    return out


def probes_ran(frame: pd.DataFrame) -> list[str]:
    """The probe flag columns (FLAG_COLUMNS) with a value on some sample: the probes that ran."""
    return [c for c in FLAG_COLUMNS if c in frame and frame[c].notna().any()]


def sample_flags_of(frame: pd.DataFrame, matcher: str) -> list[list[str]]:
    """The flags set on each row's sample, FLAGS then the probes' (one string list per row)."""
    fl = flags(frame, matcher)
    ran = probes_ran(frame)
    probe = frame[ran].fillna(False).astype(bool)
    return [[k for k in FLAGS if fl[k].iloc[i]] + [c for c in ran if probe[c].iloc[i]] for i in range(len(frame))]


def page(frame: pd.DataFrame, number: int, size: int) -> pd.DataFrame:
    """Rows of 1-based page ``number`` (clamped to the last page)."""
    pages = max(1, -(-len(frame) // size))
    number = min(max(1, number), pages)
    return frame.iloc[(number - 1) * size: number * size]


def diff(a: pd.DataFrame, b: pd.DataFrame, matcher: str, mode: str = "v") -> tuple[dict[str, int], pd.DataFrame]:
    """Two runs of one benchmark on their common samples: counts of both right / only A / only B /
    both wrong in ``mode``, and the samples where they disagree."""
    cols = ["index", "category", "question", "answer", f"{mode}_pred", f"{mode}_{matcher}"]
    ha, hb = a[a[f"{mode}_pred"].notna()][cols], b[b[f"{mode}_pred"].notna()][["index", f"{mode}_pred",
                                                                                  f"{mode}_{matcher}"]]
    both = ha.merge(hb, on="index", suffixes=("_a", "_b"))
    ra, rb = both[f"{mode}_{matcher}_a"].astype(bool), both[f"{mode}_{matcher}_b"].astype(bool)
    counts = {"common samples": len(both), "both right": int((ra & rb).sum()), "only A right": int((ra & ~rb).sum()),
              "only B right": int((~ra & rb).sum()), "both wrong": int((~ra & ~rb).sum())}
    differ = both[ra != rb]
    table = pd.DataFrame({"index": differ["index"], "category": differ["category"],
                          "question": differ["question"].str.slice(0, 120), "answer": differ["answer"],
                          "A prediction": differ[f"{mode}_pred_a"], "A": ra[ra != rb].map(_MARKS),
                          "B prediction": differ[f"{mode}_pred_b"], "B": rb[ra != rb].map(_MARKS)})
    return counts, table


def paired(a: pd.DataFrame, b: pd.DataFrame, matcher: str, mode: str = "v", seed: int = 0) -> dict[str, Any]:
    """A minus B on their common samples in ``mode``: the paired difference with its bootstrap interval
    and McNemar's exact p (``mmstar.metrics.probes.compare``, as ``mmstar leaderboard --compare``)."""
    from mmstar.metrics.probes import compare

    def table(frame: pd.DataFrame) -> dict[int, bool]:
        done = frame[frame[f"{mode}_pred"].notna()]
        return dict(zip(done["index"].astype(int), done[f"{mode}_{matcher}"].astype(bool)))

    return compare(table(a), table(b), seed)


# ---------------------------------------------------------------- chart data


def radar_axes(view: ViewData, keys: Sequence[str], level: str, mode: str = "v",
               matcher: str = "official") -> tuple[list[str], dict[str, list[float | None]]]:
    """(axis labels, run key -> score per label) for a radar chart of ``level`` "capability" or
    "axis". MMStar runs use the paper's 6 / 18 in order with display names; other benchmarks their
    own categories (sorted)."""
    runs = [view.run(k) for k in keys]
    key_name = "categories" if level == "capability" else "l2_categories"
    if runs and all(vr.mmstar_taxonomy for vr in runs):
        names = list(taxonomy.CATEGORY_NAMES if level == "capability" else taxonomy.AXIS_NAMES)
        labels = [taxonomy.display_name(n) for n in names]
    else:
        names = sorted({n for vr in runs for n in ((view.summary(vr.key, mode, matcher) or {}).get(key_name) or {})})
        labels = names
    series = {}
    for vr in runs:
        scores = (view.summary(vr.key, mode, matcher) or {}).get(key_name) or {}
        series[vr.key] = [scores.get(n) for n in names]
    return labels, series
