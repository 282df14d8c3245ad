"""Two models on the same samples: ``mmstar leaderboard RUN_A RUN_B --compare``.

Per mode both runs have (v, wv, t): each model's accuracy on the samples both answered, the paired
difference A - B with its seeded bootstrap interval, and McNemar's exact p on the discordant pairs
(A right and B wrong, against A wrong and B right). Two checkpoints on one benchmark differ by a few
points; whether those points are more than resampling noise is what a user choosing between them
needs, and an unpaired comparison of two intervals would hide it (lmms-eval ships paired tests too).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmstar.atomic import atomic_write_text
from mmstar.errors import MmstarError
from mmstar.runs import MODES, Run

from .probes import compare

COMPARE_COLUMNS = ["model_a", "model_b", "benchmark", "mode", "matcher", "n", "S_a", "S_b", "difference",
                   "difference_low", "difference_high", "spans_zero", "only_a", "only_b", "mcnemar_p"]


def _check_pairable(a: Run, b: Run) -> None:
    """Paired figures need the same questions: the same benchmark, and the same data where both
    manifests name its fingerprint."""
    if a.benchmark != b.benchmark:
        raise MmstarError(f"cannot pair {a.path} ({a.benchmark}) with {b.path} ({b.benchmark}): "
                          "different benchmarks")
    fa, fb = a.manifest.dataset_fingerprint, b.manifest.dataset_fingerprint
    if fa and fb and fa != fb:
        raise MmstarError(f"cannot pair {a.path} with {b.path}: the benchmark data differ "
                          f"(fingerprints {fa} and {fb})")


def compare_runs(a: Run, b: Run, matcher: str = "official", seed: int = 0) -> list[dict[str, Any]]:
    """One row per mode present in both runs (COMPARE_COLUMNS), figures in percent / points."""
    _check_pairable(a, b)
    rows = []
    for mode in MODES:
        if mode not in a.records or mode not in b.records:
            continue
        ha, hb = a.hits(mode, matcher), b.hits(mode, matcher)
        common = set(ha) & set(hb)
        if not common:
            raise MmstarError(f"{a.path} and {b.path} share no sample in mode {mode}")
        c = compare(ha, hb, seed)
        rows.append({
            "model_a": a.model, "model_b": b.model, "benchmark": a.benchmark, "mode": mode, "matcher": matcher,
            "n": c["mcnemar_n"], "S_a": 100 * sum(ha[i] for i in common) / len(common),
            "S_b": 100 * sum(hb[i] for i in common) / len(common), "difference": c["difference"],
            "difference_low": c["difference_low"], "difference_high": c["difference_high"],
            "spans_zero": c["spans_zero"], "only_a": c["mcnemar_only_a"], "only_b": c["mcnemar_only_b"],
            "mcnemar_p": c["mcnemar_p"],
        })
    if not rows:
        raise MmstarError(f"{a.path} and {b.path} have no mode (v, wv, t) in common")
    return rows


def format_compare(rows: Sequence[dict[str, Any]]) -> str:
    """The console table, and one line per mode saying what it means."""
    head = (f"{'mode':<5}{'n':>6}{'S_A':>8}{'S_B':>8}{'A-B':>8}  {'95% interval':<18}{'only A':>7}{'only B':>7}"
            "  McNemar p")
    first = rows[0]
    lines = [f"A = {first['model_a']}   B = {first['model_b']}   on {first['benchmark']} ({first['matcher']} matcher)",
             head]
    for r in rows:
        ci = f"[{r['difference_low']:.2f}, {r['difference_high']:.2f}]"
        lines.append(f"{r['mode']:<5}{r['n']:>6}{r['S_a']:>8.2f}{r['S_b']:>8.2f}{r['difference']:>8.2f}  {ci:<18}"
                     f"{r['only_a']:>7}{r['only_b']:>7}  {r['mcnemar_p']:.4g}")
    lines.append("")
    for r in rows:
        verdict = ("interval spans 0: no difference shown" if r["spans_zero"]
                   else f"{'A' if r['difference'] > 0 else 'B'} scores higher (interval clear of 0)")
        lines.append(f"{r['mode']}: {verdict}; McNemar exact p = {r['mcnemar_p']:.4g} "
                     f"on {r['only_a'] + r['only_b']} discordant sample(s)")
    return "\n".join(lines)


def write_compare_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COMPARE_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def write_compare_json(rows: Sequence[dict[str, Any]], path: Path) -> None:
    atomic_write_text(path, json.dumps(list(rows), indent=2) + "\n")
