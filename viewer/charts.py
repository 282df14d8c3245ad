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
    from mmstar.metrics.plots import draw_mg_ml

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    draw_mg_ml(ax, rows, lambda row: str(row.get(label_key) or row.get("model")), markersize=7, fontsize=8,
               xlabel="multi-modal gain MG = S_v - S_wv (points, 95% interval)")
    fig.tight_layout()
    return fig


def png(fig, dpi: int = 90) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.2)
    plt.close(fig)
    return buf.getvalue()
