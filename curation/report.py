"""The filter report: per source, samples, dropped, abnormal hit rate; per-inspector accuracy.
Written as ``report.md``, ``report.csv`` and a bar chart ``report.png``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mmstar.atomic import atomic_path, atomic_write_text


def abnormal_threshold(n_inspectors: int, fraction: float) -> int:
    """Hits needed to count as abnormal: the paper's Figure 2 uses 6 of 8 (fraction 0.75)."""
    return max(1, math.ceil(fraction * n_inspectors - 1e-9))


def source_table(matrix: Any, llm_columns: list[str], max_hits: int, abnormal_fraction: float):
    import pandas as pd

    need = abnormal_threshold(len(llm_columns), abnormal_fraction)
    rows = []
    groups = [*matrix.groupby("source", sort=True), ("ALL", matrix)]
    for source, g in groups:
        row = {"source": source, "samples": len(g), "dropped": int((g["n_hits"] > max_hits).sum()),
               "kept": int((g["n_hits"] <= max_hits).sum()),
               "abnormal_hit_rate": round(100 * float((g["n_hits"] >= need).mean()), 2)}
        for col in llm_columns:
            row[f"acc:{col}"] = round(100 * float(g[col].mean()), 2)
        rows.append(row)
    return pd.DataFrame(rows), need


def write_report(matrix: Any, llm_columns: list[str], max_hits: int, abnormal_fraction: float, out: Path,
                 meta: dict[str, Any]) -> Path:
    table, need = source_table(matrix, llm_columns, max_hits, abnormal_fraction)
    with atomic_path(out / "report.csv") as tmp:
        table.to_csv(tmp, index=False)
    lines = [
        "# Filter report", "",
        f"- inspectors ({len(llm_columns)}): {', '.join(llm_columns)}",
        f"- shots: {meta.get('shots')}, scoring: {meta.get('scoring')}, keep rule: n_hits <= {max_hits}",
        f"- abnormal: hit by at least {need} of {len(llm_columns)} inspectors (fraction {abnormal_fraction})",
        "", "| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns),
    ]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    _chart(table, out / "report.png", need, len(llm_columns))
    return out / "report.md"


def _chart(table: Any, path: Path, need: int, n: int) -> None:
    from mmstar.errors import require

    matplotlib = require("matplotlib", "plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per = table[table.source != "ALL"]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(per) + 2), 4.5))
    bars = ax.bar(per["source"].astype(str), per["abnormal_hit_rate"], color="#c0504d")
    ax.bar_label(bars, fmt="%.1f%%", fontsize=9)
    ax.set_ylabel(f"samples hit by >= {need} of {n} inspectors (%)")
    ax.set_title("Abnormal hit rate per source (answerable without the image)")
    ax.set_ylim(0, max(10.0, float(per["abnormal_hit_rate"].max() if len(per) else 0) * 1.2))
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
