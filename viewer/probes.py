"""The leakage probes in the viewer and the report (pure pandas): one table row per probe figure of
a run's ``probes`` block (``mmstar.probes.probe_block``, as ``scores.json`` holds it), and the
per-sample probe flags (``mmstar.probes.sample_flags``) as columns of a run's sample table.

The table names each figure with its 95% interval, the samples the probe flagged, and whether the
probe fires (its evidence of leakage has an interval clear of zero; the rules are the core's).
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
    "recalls answer text": ("recalls_answer_text", "recall probe: the right text ranked first, options hidden"),
}
# (probe, the block's figure key, its label, the block's count of flagged samples or None)
FIGURES = (
    ("order", "circular", "CircularEval accuracy", None),
    ("order", "sensitivity", "order sensitivity (original - rotated)", "follows_position"),
    ("slots", "rate", "masked text reproduced", "reproduced"),
    ("swap", "S_swap", "S_swap (another sample's image)", None),
    ("swap", "excess", "S_swap over chance", "same_answer"),
    ("swap", "image_dependence", "image dependence (S_v - S_swap)", None),
    ("recall", "rate", "right text first without options", "recalled"),
    ("recall", "donor_rate", "right text first after another stem", None),
    ("recall", "with_options", "accuracy with options shown", None),
)
TABLE_COLUMNS = ["run", "probe", "mode", "n", "figure", "value", "low", "high", "flagged", "fires"]


def probe_rows(key: str, block: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One row per figure of each probe and mode in ``block`` (TABLE_COLUMNS); [] without probes.
    ``flagged`` is on the row of the figure the flag belongs to; ``fires`` on every row of a mode."""
    rows: list[dict[str, Any]] = []
    for probe, fig_key, label, flag_key in FIGURES:
        for mode, fig in ((block or {}).get(probe) or {}).items():
            if fig_key not in fig:
                continue
            rows.append({"run": key, "probe": probe, "mode": mode, "n": fig.get("n"), "figure": label,
                         "value": fig.get(fig_key), "low": fig.get(f"{fig_key}_low"),
                         "high": fig.get(f"{fig_key}_high"), "flagged": fig.get(flag_key) if flag_key else None,
                         "fires": bool(fig.get("fires"))})
    order = {p: i for i, p in enumerate(("order", "slots", "swap", "recall"))}
    rows.sort(key=lambda r: (order[r["probe"]], ("v", "wv", "t").index(r["mode"])))  # stable within a mode
    return rows


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
