"""Multi-modal gain and leakage: per (model, benchmark), across benchmarks, and sample-level lists."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mmstar.atomic import atomic_write_text
from mmstar.runs import Run
from mmstar.scoring import gain_and_leakage
from mmstar.writers import csv_safe

__all__ = ["average_gain_leakage", "evidence", "gain_and_leakage", "leakage_rows", "write_leakage_csv"]


@dataclass(frozen=True)
class BenchScores:
    s_v: float | None
    s_wv: float | None
    s_t: float | None

    @property
    def mg(self) -> float | None:
        return gain_and_leakage(self.s_v, self.s_wv, self.s_t)[0]

    @property
    def ml(self) -> float | None:
        return gain_and_leakage(self.s_v, self.s_wv, self.s_t)[1]


def average_gain_leakage(per_bench: Sequence[BenchScores]) -> tuple[float | None, float | None]:
    """The paper's Table 4 rule: ML is clipped at 0 per benchmark first, then MG and ML are plain
    means over the benchmarks that have them."""
    mgs = [b.mg for b in per_bench if b.mg is not None]
    mls = [b.ml for b in per_bench if b.ml is not None]
    return (sum(mgs) / len(mgs) if mgs else None, sum(mls) / len(mls) if mls else None)


# the per-sample flags of the leakage probes (mmstar.probes.sample_flags) -> the probe's short name
PROBE_FLAGS = {"drops_when_moved": "order", "follows_position": "order", "reproduces_masked": "slots",
               "right_any_image": "swap", "same_answer_any_image": "swap", "backbone_knows": "backbone",
               "recalls_answer_text": "recall"}
LEAK_COLUMNS = ["model", "benchmark", "index", "source", "category", "l2_category", "question", "answer",
                "wv_prediction", "t_prediction", "t_hit", "backbone_missed", *PROBE_FLAGS, "evidence"]


def evidence(backbone_missed: bool | None, probes: Sequence[str]) -> str:
    """What points at leakage on one sample, ``+``-joined: "ML" (right without the image, its LLM
    backbone wrong text-only), then each probe of ``probes`` (from ``firing_flags``). A sample marked
    "ML+order" is flagged by ML and by a probe: two independent kinds of evidence."""
    return "+".join((["ML"] if backbone_missed else []) + list(probes))


def probe_sample_flags(run: Run) -> dict[int, dict[str, bool]]:
    """index -> the flags of the probes that ran on this run, in any mode ({} when none ran)."""
    if not run.probe_records:
        return {}
    from mmstar.probes import sample_flags

    return sample_flags(run)


def firing_flags(run: Run, matcher: str = "official", seed: int = 0) -> dict[int, list[str]]:
    """index -> the signals that count as evidence on the sample: a probe (or the backbone signal)
    that fires for the run (Holm-adjusted p < 0.05 against its null, by the core's rules) and flagged
    the sample with its evidence flag in a mode where it fired. A flag alone is not evidence: a clean
    model that prefers a letter is right in the original order and wrong once the options move on
    many samples, yet its letter-adjusted order test does not fire."""
    if not run.probe_records:
        return {}
    from mmstar.probe_scores import SIGNALS, figures

    found: dict[int, set[str]] = {}
    for probe, per_mode in figures(run, matcher, seed).items():
        for fig in per_mode.values():
            if not fig["fires"]:
                continue
            for index, flagged in (fig.get("flags") or {}).items():
                if flagged:
                    found.setdefault(int(index), set()).add(probe)
    known = [p for p in SIGNALS if any(p in f for f in found.values())]
    extra = sorted({p for f in found.values() for p in f} - set(known))
    return {i: [p for p in (*known, *extra) if p in probes] for i, probes in found.items()}


def leakage_rows(run: Run, matcher: str = "official") -> list[dict[str, object]]:
    """Samples the LVLM answered without the image (``wv`` hit); ``backbone_missed`` marks those its
    LLM backbone got wrong text-only (``t`` miss): the sample-level evidence behind ML. Each probe
    that ran adds its flag, set in any mode (empty where the probe did not run); ``evidence`` names
    ML and the probes that fire and flagged the sample (``firing_flags``)."""
    wv_hits, t_hits = run.hits("wv", matcher), run.hits("t", matcher)
    t_pred = {r.index: r.prediction for r in run.records.get("t") or []}
    probe_flags, firing = probe_sample_flags(run), firing_flags(run, matcher)
    rows = []
    for rec in run.records.get("wv") or []:
        if not wv_hits.get(rec.index):
            continue
        t_hit = t_hits.get(rec.index)
        flags = probe_flags.get(rec.index, {})
        rows.append({
            "model": run.model, "benchmark": run.benchmark, "index": rec.index, "source": rec.source,
            "category": rec.category, "l2_category": rec.l2_category, "question": rec.question, "answer": rec.answer,
            "wv_prediction": rec.prediction, "t_prediction": t_pred.get(rec.index, ""),
            "t_hit": "" if t_hit is None else t_hit, "backbone_missed": "" if t_hit is None else not t_hit,
            **{flag: flags.get(flag, "") for flag in PROBE_FLAGS},
            "evidence": evidence(t_hit is not None and not t_hit, firing.get(rec.index, [])),
        })
    return rows


def write_leakage_csv(runs: Iterable[Run], path: Path, matcher: str = "official") -> int:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LEAK_COLUMNS)
    writer.writeheader()
    n = 0
    for run in runs:
        for row in leakage_rows(run, matcher):
            # a question or reply that starts like a formula is shown as text by a spreadsheet
            writer.writerow({k: csv_safe(v) for k, v in row.items()})
            n += 1
    atomic_write_text(path, buf.getvalue())
    return n
