"""Plots people would rather look at than read: a radar chart of the 6 capabilities with several
models overlaid, and an MG-vs-ML chart across models. PNG via matplotlib's Agg backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmstar import taxonomy
from mmstar.atomic import atomic_path
from mmstar.errors import require


def _pyplot():
    matplotlib = require("matplotlib", "plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(row: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    several = len({r["benchmark"] for r in rows}) > 1
    return f"{row['model']} ({row['benchmark']})" if several else str(row["model"])


def radar_chart(rows: Sequence[dict[str, Any]], path: Path, title: str = "Accuracy with image (S_v) per capability"
                ) -> None:
    import numpy as np

    plt = _pyplot()
    caps = taxonomy.CAPABILITIES
    angles = np.linspace(0, 2 * np.pi, len(caps), endpoint=False).tolist()
    fig, ax = plt.subplots(figsize=(7.5, 7.5), subplot_kw={"polar": True})
    plotted = 0
    for row in rows:
        values = [row.get(c.code) for c in caps]
        if all(v is None for v in values):
            continue
        vals = [v if v is not None else 0.0 for v in values]
        ax.plot(angles + angles[:1], vals + vals[:1], linewidth=2, marker="o", label=_label(row, rows))
        ax.fill(angles + angles[:1], vals + vals[:1], alpha=0.12)
        plotted += 1
    ax.set_xticks(angles)
    ax.set_xticklabels([])
    for angle, cap in zip(angles, caps):  # labels placed outside the 100 ring, aligned away from it
        cos = np.cos(angle)
        ha = "left" if cos > 0.1 else "right" if cos < -0.1 else "center"
        ax.text(angle, 116, f"{cap.display}\n({cap.code})", ha=ha, va="center", fontsize=10)
    ax.set_ylim(0, 100)
    ax.set_yticks([20, 40, 60, 80, 100])
    ax.set_yticklabels(["20", "40", "60", "80", "100"], fontsize=8, color="grey")
    ax.set_rlabel_position(90)
    ax.set_title(title, pad=28, fontsize=13)
    if plotted:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(3, plotted), frameon=False)
    fig.tight_layout()
    _save(fig, path, plt)


def mg_ml_chart(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Each (model, benchmark) as a point: multi-modal gain (x) against leakage (y), with the
    bootstrap interval of MG as a horizontal bar where known."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    draw_mg_ml(ax, rows, lambda row: _label(row, rows))
    fig.tight_layout()
    _save(fig, path, plt)


def draw_mg_ml(ax: Any, rows: Sequence[Mapping[str, Any]], label: Callable[[Mapping[str, Any]], str], *,
               markersize: int = 8, fontsize: int = 9, xlabel: str = "multi-modal gain MG = S_v - S_wv (points)"
               ) -> int:
    """MG (x) against ML (y) on ``ax``, with the bootstrap interval of MG and that of S_wv - S_t
    (clipped at 0, like ML) as error bars; the leaderboard's chart and the viewer's both draw it.
    Returns how many rows had all three modes and were drawn."""
    plotted = 0
    for row in rows:
        if row.get("MG") is None or row.get("ML") is None:
            continue
        x, y = row["MG"], row["ML"]
        xerr = [[x - row["MG_low"]], [row["MG_high"] - x]] if row.get("MG_low") is not None else None
        yerr = ([[max(0.0, y - max(0.0, row["wv_minus_t_low"]))], [max(0.0, row["wv_minus_t_high"]) - y]]
                if row.get("wv_minus_t_low") is not None else None)
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", capsize=4, markersize=markersize)
        ax.annotate(label(row), (x, y), textcoords="offset points", xytext=(6, 6), fontsize=fontsize)
        plotted += 1
    if not plotted:
        ax.text(0.5, 0.5, "no run has v, wv and t", ha="center", va="center", transform=ax.transAxes)
    ax.margins(x=0.25, y=0.2)
    ax.set_xlim(left=min(0.0, ax.get_xlim()[0]))
    ax.set_ylim(bottom=min(-0.5, ax.get_ylim()[0]))
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("multi-modal leakage ML = max(0, S_wv - S_t) (points)")
    ax.set_title("Gain from the image vs. leakage of the answers")
    ax.grid(alpha=0.3)
    return plotted


def _save(fig, path: Path, plt) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight", pad_inches=0.3)
    plt.close(fig)
