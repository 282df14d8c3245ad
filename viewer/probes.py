"""The leakage probes in the viewer and the report (pure pandas): one table row per probe figure of
a run's ``probes`` block (``mmstar.probes.probe_block``, as ``scores.json`` holds it), and the
per-sample probe flags (``mmstar.probes.sample_flags``) as columns of a run's sample table.

The table names each figure with its 95% interval, the samples the probe flagged, the verdict's p
against its null, Holm's adjusted p over the run and whether it fires (``p_adjusted < 0.05``; the
rules are the core's, ``mmstar.probe_nulls``); ``interval_figure`` draws the intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from mmstar.metrics.leakage import evidence, firing_flags, probe_sample_flags

from mmstar.runs import Run

# the sample table's probe flag columns: the viewer's name -> (sample_flags key, what it means)
FLAG_COLUMNS = {
    "follows position": ("follows_position",
                         "order probe: the same letter in every option order (answers a position, not an option)"),
    "reproduces masked": ("reproduces_masked",
                          "slots probe: wrote out a hidden option's text (or question word) it was never shown"),
    "same answer any image": ("same_answer_any_image", "swap probe: the same answer with another sample's image"),
    "drops when moved": ("drops_when_moved", "order probe: right in the original order, wrong in most rotations "
                                             "(what a memorised letter does once the options move)"),
    "right any image": ("right_any_image", "swap probe: right with another sample's image while the LLM backbone "
                                           "was wrong text-only"),
    "backbone knows": ("backbone_knows", "backbone signal: the LLM backbone right text-only, the LVLM wrong "
                                         "without the image"),
    "recalls answer text": ("recalls_answer_text", "recall probe: the right text ranked first, options hidden"),
}
# (probe, the block's figure key, its label, the block's count of flagged samples or None); the
# verdict's p sits on the row of the figure its test is about (VERDICT_FIGURE)
FIGURES = (
    ("order", "circular", "CircularEval accuracy", None),
    ("order", "sensitivity", "order sensitivity (original - rotated)", "drops_when_moved"),
    ("slots", "rate", "masked text reproduced", "reproduced"),
    ("swap", "S_swap", "S_swap (another sample's image)", None),
    ("swap", "excess", "S_swap over chance", "right_any_image"),
    ("swap", "image_dependence", "image dependence (S_v - S_swap)", None),
    ("backbone", "S_t", "S_t (the LLM backbone, text only)", None),
    ("backbone", "excess", "S_t over chance", None),
    ("backbone", "gap", "S_wv - S_t (below 0: the backbone knows more)", "backbone_knows"),
    ("recall", "rate", "right text first without options", "recalled"),
    ("recall", "donor_rate", "right text first after another stem", None),
    ("recall", "with_options", "accuracy with options shown", None),
    ("recall", "over_donor", "right text first, over another stem (paired)", None),
    ("recall", "over_options", "right text first, over the options shown (paired)", None),
)
VERDICT_FIGURE = {"order": "sensitivity", "slots": "rate", "swap": "excess", "recall": "over_donor", "backbone": "gap"}
SIGNAL_ORDER = ("order", "slots", "swap", "recall", "backbone")
TABLE_COLUMNS = ["run", "probe", "mode", "n", "figure", "value", "low", "high", "flagged", "p", "p_adjusted", "null",
                 "fires"]


def probe_rows(key: str, block: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One row per figure of each probe and mode in ``block`` (TABLE_COLUMNS); [] without probes.
    ``flagged``, ``p``, ``p_adjusted`` and ``null`` are on the row of the figure the verdict is
    about; ``fires`` on every row of a mode. A probe this table has no figures for (a newer one) gets
    one row with its verdict."""
    rows: list[dict[str, Any]] = []
    known = {p for p, *_ in FIGURES}
    figures = [*FIGURES, *((p, None, "verdict", None) for p in (block or {}) if p not in known
                           and isinstance((block or {})[p], Mapping))]
    for probe, fig_key, label, flag_key in figures:
        for mode, fig in ((block or {}).get(probe) or {}).items():
            if not isinstance(fig, Mapping) or (fig_key is not None and fig_key not in fig):
                continue
            verdict = fig_key == VERDICT_FIGURE.get(probe)
            rows.append({"run": key, "probe": probe, "mode": mode, "n": fig.get("n"), "figure": label,
                         "value": fig.get(fig_key) if fig_key else None,
                         "low": fig.get(f"{fig_key}_low") if fig_key else None,
                         "high": fig.get(f"{fig_key}_high") if fig_key else None,
                         "flagged": fig.get(flag_key) if flag_key else None,
                         "p": fig.get("p") if verdict or fig_key is None else None,
                         "p_adjusted": fig.get("p_adjusted") if verdict or fig_key is None else None,
                         "null": fig.get("null") if verdict or fig_key is None else None,
                         "fires": bool(fig.get("fires"))})
    order = {p: i for i, p in enumerate(SIGNAL_ORDER)}
    modes = ("v", "wv", "t")
    rows.sort(key=lambda r: (order.get(r["probe"], len(order)), modes.index(r["mode"]) if r["mode"] in modes else 3))
    return rows


def interval_figure(rows: Sequence[Mapping[str, Any]]):
    """The verdict figures of ``probe_rows`` (one per run, probe and mode) as a forest plot: each
    value with its 95% interval, the dashed line at 0, red where the verdict fires, and the
    Holm-adjusted p beside each. A matplotlib figure (``viewer.charts.png`` renders it)."""
    from .charts import _pyplot

    plt = _pyplot()
    picked = [r for r in rows if r.get("p") is not None and r.get("value") is not None]
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(picked), 2) + 1.2))
    for y, r in enumerate(reversed(picked)):
        colour = "#c0392b" if r["fires"] else "#34495e"
        low, high = r.get("low"), r.get("high")
        if low is not None and high is not None:
            ax.plot([low, high], [y, y], color=colour, linewidth=2)
        ax.plot([r["value"]], [y], "o", color=colour)
        ax.annotate(f"p_adj {r['p_adjusted']:.2g}" + (" fires" if r["fires"] else ""), (1.01, y),
                    xycoords=("axes fraction", "data"), va="center", fontsize=8, color=colour)
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(picked)))
    ax.set_yticklabels([f"{r['run']}: {r['probe']} {r['mode']} ({r['figure']})" for r in reversed(picked)],
                       fontsize=8)
    ax.set_xlabel("points (95% bootstrap interval)")
    ax.set_title("Leakage probes: the figure each verdict tests", fontsize=10)
    fig.tight_layout()
    return fig


def fired_line(key: str, block: Mapping[str, Any] | None) -> str:
    fired = list((block or {}).get("fired") or [])
    return f"{key}: {'fires: ' + ', '.join(fired) if fired else 'no probe fires'}"


EVIDENCE_COLUMN = "probe evidence"  # the probes that fire and flagged the sample ("order+swap"), "" if none


def flag_frame(run: Run, indices: Sequence[int]) -> pd.DataFrame:
    """A column per FLAG_COLUMNS entry, one row per index: True / False where the probe ran on the
    sample (its flag in any mode), NA where it did not; and EVIDENCE_COLUMN: the probes that count
    as evidence on the sample (``metrics.leakage.firing_flags``: they fire, and flagged it where they
    fired). Computed under the official matcher, as scores.json's probes block."""
    flags: dict[int, dict[str, bool]] = {}
    firing: dict[int, list[str]] = {}
    if run.probe_records:
        flags, firing = probe_sample_flags(run), firing_flags(run)
    out: dict[str, Any] = {}
    for name, (flag, _help) in FLAG_COLUMNS.items():
        out[name] = pd.array([flags.get(int(i), {}).get(flag, pd.NA) for i in indices], dtype="boolean")
    out[EVIDENCE_COLUMN] = ["+".join(firing.get(int(i), [])) for i in indices]
    return pd.DataFrame(out)


def evidence_column(frame: pd.DataFrame, ml: pd.Series) -> pd.Series:
    """``metrics.leakage.evidence`` per row: "ML" where ``ml`` (the leaked flag), then the probes of
    EVIDENCE_COLUMN."""
    return pd.Series([evidence(bool(m), [p for p in probes.split("+") if p])
                      for m, probes in zip(ml, frame[EVIDENCE_COLUMN])], index=frame.index, dtype=object)
