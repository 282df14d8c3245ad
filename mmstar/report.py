"""Plain-text tables for the console (score summaries, data info)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import taxonomy


def judge_line(summary: Mapping[str, Any]) -> str:
    """Official, robust and robust+judge side by side, and what the judge did."""
    agreement = summary.get("judge_agreement")
    agree = f", agreed with the extractor on {agreement['agree']}/{agreement['n']}" if agreement else ""
    return (f"official {_fmt(summary.get('official_overall'))}  robust {_fmt(summary.get('robust_overall'))}  "
            f"robust+judge {_fmt(summary.get('robust_judge_overall'))}   judge saw {summary.get('judge_seen', 0)}, "
            f"decided {summary.get('judge_decided', 0)}, named no option {summary.get('judge_no_option', 0)}{agree}")


def _fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:5.2f}"


def score_table(summary: Mapping[str, Any], title: str = "", rules: bool = False) -> str:
    """The console summary; ``rules`` adds how many replies each extraction rule decided. Once a
    judge has looked at the records, a line puts official, robust and robust+judge side by side."""
    lines = [title] if title else []
    lines.append(
        f"overall {_fmt(summary['overall'])}  ({summary['hits']}/{summary['n']}, matcher {summary['matcher']})"
        f"   macro (axis mean) {_fmt(summary['macro'])}   unparsed {summary['unparsed']}"
        + (f"   errors {summary['errors']}" if summary.get("errors") else "")
    )
    if rules and summary.get("rules"):
        lines.append("extraction rules: " + ", ".join(f"{k} {v}" for k, v in summary["rules"].items()))
    if "judge_seen" in summary:
        lines.append(judge_line(summary))
    cats, axes = summary["categories"], summary["l2_categories"]
    counts = summary.get("l2_category_counts", {})
    known = [c for c in taxonomy.CAPABILITIES if c.name in cats]
    for cap in known:
        lines.append(f"  {cap.code} {cap.name:<40} {_fmt(cats[cap.name])}  (n={summary['category_counts'][cap.name]})")
        for axis in cap.axes:
            if axis.name in axes:
                lines.append(f"      {axis.name:<44} {_fmt(axes[axis.name])}  (n={counts[axis.name]})")
    others = [c for c in cats if taxonomy.code_of(c) is None]
    for name in others:
        lines.append(f"  {name:<43} {_fmt(cats[name])}  (n={summary['category_counts'][name]})")
    mmstar_axes = set(taxonomy.AXIS_NAMES)
    if others:
        for name in (a for a in axes if a not in mmstar_axes):
            lines.append(f"      {name:<44} {_fmt(axes[name])}  (n={counts[name]})")
    return "\n".join(lines)
