"""Figures for the viewer and the report (matplotlib, Agg): radar charts with any set of runs
overlaid, and the MG-vs-ML scatter with bootstrap intervals. Functions return a Figure; ``png``
turns one into bytes (and closes it)."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from mmstar.errors import require


def _pyplot():
    matplotlib = require("matplotlib", "plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def radar_figure(labels: Sequence[str], series: Mapping[str, Sequence[float | None]], title: str):
    """One polygon per run over ``labels`` (scores 0-100); a missing score is drawn at 0 and the
    label says "n/a" for runs that all lack it, so a gap is never mistaken for a real zero."""
    import numpy as np

    plt = _pyplot()
    n = len(labels)
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False).tolist()
    small = n > 8
    fig, ax = plt.subplots(figsize=(8.5, 7.5) if small else (7.5, 7), subplot_kw={"polar": True})
    for name, values in series.items():
        vals = [v if v is not None else 0.0 for v in values]
        ax.plot(angles + angles[:1], vals + vals[:1], linewidth=1.8, marker="o", markersize=3 if small else 5,
                label=name)
        ax.fill(angles + angles[:1], vals + vals[:1], alpha=0.08)
    ax.set_xticks(angles)
    ax.set_xticklabels([])
    missing = [all(vals[i] is None for vals in series.values()) for i in range(n)]
    for angle, label, gap in zip(angles, labels, missing):  # outside the 100 ring, aligned away from it
        cos = np.cos(angle)
        ha = "left" if cos > 0.1 else "right" if cos < -0.1 else "center"
        text = "\n".join(textwrap.wrap(label, 22 if small else 28)) + (" (n/a)" if gap else "")
        ax.text(angle, 112, text, ha=ha, va="center", fontsize=8 if small else 10)
    ax.set_ylim(0, 100)
    ax.set_yticks([20, 40, 60, 80, 100])
    ax.set_yticklabels(["20", "40", "60", "80", "100"], fontsize=7, color="grey")
    ax.set_rlabel_position(90)
    ax.set_title(title, pad=44 if small else 30, fontsize=12)
    if series:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=min(2, len(series)), frameon=False,
                  fontsize=9)
    fig.tight_layout()
    return fig


def mg_ml_figure(rows: Sequence[Mapping[str, Any]], label_key: str = "run"):
    """Each run as a point: MG (x) against ML (y), with the bootstrap interval of MG and that of
    S_wv - S_t (clipped at 0, like ML) as error bars."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    plotted = 0
    for row in rows:
        if row.get("MG") is None or row.get("ML") is None:
            continue
        x, y = row["MG"], row["ML"]
        xerr = [[x - row["MG_low"]], [row["MG_high"] - x]] if row.get("MG_low") is not None else None
        yerr = ([[max(0.0, y - max(0.0, row["wv_minus_t_low"]))], [max(0.0, row["wv_minus_t_high"]) - y]]
                if row.get("wv_minus_t_low") is not None else None)
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", capsize=4, markersize=7)
        ax.annotate(str(row.get(label_key) or row.get("model")), (x, y), textcoords="offset points", xytext=(6, 6),
                    fontsize=8)
        plotted += 1
    if not plotted:
        ax.text(0.5, 0.5, "no run has v, wv and t", ha="center", va="center", transform=ax.transAxes)
    ax.margins(x=0.25, y=0.2)
    ax.set_xlim(left=min(0.0, ax.get_xlim()[0]))
    ax.set_ylim(bottom=min(-0.5, ax.get_ylim()[0]))
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("multi-modal gain MG = S_v - S_wv (points, 95% interval)")
    ax.set_ylabel("multi-modal leakage ML = max(0, S_wv - S_t) (points)")
    ax.set_title("Gain from the image vs. leakage of the answers")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def png(fig, dpi: int = 90) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.2)
    plt.close(fig)
    return buf.getvalue()
