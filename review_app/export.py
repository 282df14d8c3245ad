"""Export the accepted samples, with reviewers' corrections applied, as a benchmark.

Provenance travels with it: each exported sample's ``meta['review']['decisions']`` names the reviewer
(and account id) of every decision that made it, and ``decisions.jsonl`` beside the files holds every
decision in the store, superseded votes and adjudications included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmstar.atomic import atomic_write_text
from mmstar.errors import MmstarError
from mmstar.loaders import load_benchmark
from mmstar.options import LETTERS
from mmstar.sample import Benchmark, Sample
from mmstar.writers import write_benchmark

from .store import Store, Vote, agreement, final_status


def apply_corrections(sample: Sample, votes: dict[str, Vote], adjudication: Vote | None = None) -> Sample:
    """Consensus labels; the newest correction among the agreeing votes wins. The original text is
    kept in ``meta['original']`` whenever something was corrected. After an adjudication its labels win;
    the corrections come from the votes that agree with it, then from the adjudication itself."""
    by_row = sorted(votes.values(), key=lambda v: v.row_id)
    if adjudication is None:
        labels, correcting = by_row[-1], by_row
    else:
        same = (adjudication.decision, adjudication.category, adjudication.l2_category)
        labels = adjudication
        correcting = [v for v in by_row if (v.decision, v.category, v.l2_category) == same] + [adjudication]
    fix: dict[str, Any] = {}
    for v in correcting:
        fix.update({k: val for k, val in v.corrections.items() if val not in (None, "", {})})
    meta = dict(sample.meta)
    changes: dict[str, Any] = {"category": labels.category, "l2_category": labels.l2_category}
    if fix:
        meta["original"] = {"question": sample.question, "options": sample.options, "answer": sample.answer}
        if "options" in fix:
            options = {k: str(fix["options"][k]) for k in LETTERS if k in fix["options"]}
            changes["options"] = options
            changes["options_embedded"] = False if "question" not in fix else sample.options_embedded
        if "question" in fix:
            changes["question"] = str(fix["question"])
        if "answer" in fix:
            changes["answer"] = str(fix["answer"])
    meta["review"] = {"reviewers": sorted(votes), "votes": len(votes),
                      "decisions": [_decision_record(v) for v in by_row]}
    if adjudication is not None:
        meta["review"]["adjudicated_by"] = adjudication.reviewer
        meta["review"]["decisions"].append(_decision_record(adjudication, "adjudication"))
    return sample.with_(meta=meta, **changes)


def _decision_record(v: Vote, kind: str = "vote") -> dict[str, Any]:
    """Who decided what: the reviewer's name and account id (None in single-user local mode)."""
    return {"decision_id": v.row_id, "kind": kind, "reviewer": v.reviewer, "account_id": v.account_id,
            "decision": v.decision, "category": v.category, "l2_category": v.l2_category, "reason": v.reason,
            "created": v.created}


def accepted_samples(candidates: Benchmark, store: Store, quorum: int | None = None) -> list[Sample]:
    latest, adjudicated = store.latest_votes(), store.adjudications()
    out = []
    for s in candidates:
        votes, adj = latest.get(s.index, {}), adjudicated.get(s.index)
        if final_status(votes, adj, quorum) == "accepted":
            out.append(apply_corrections(s, votes, adj))
    return out


def write_decision_log(store: Store, path: Path) -> Path:
    """Every decision row, oldest first, with its reviewer and account id (JSON lines, atomically)."""
    keys = ("id", "sample_index", "kind", "reviewer", "account_id", "created", "decision", "reason", "category",
            "l2_category")
    lines = []
    for r in store.all_rows():
        rec = {k: r.get(k) for k in keys}
        rec["corrections"] = json.loads(r["corrections"] or "{}")
        lines.append(json.dumps(rec, ensure_ascii=False))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path


def export(db: str, out: Path, candidates: str | None = None, quorum: int | None = None,
           fmt: str = "all") -> tuple[list[Path], int]:
    store = Store(db)
    source = candidates or store.setting("candidates")
    if not source:
        raise MmstarError(f"{db} does not record its candidates file; pass --candidates FILE")
    bench = load_benchmark(source)
    samples = accepted_samples(bench, store, quorum)
    if not samples:
        raise MmstarError(f"no accepted samples in {db} yet (a sample needs 2+ agreeing keep votes)")
    accepted = Benchmark("reviewed", samples)
    out.mkdir(parents=True, exist_ok=True)
    targets = {"parquet": [out / "reviewed.parquet"], "tsv": [out / "reviewed.tsv"], "hf": [out / "reviewed"],
               "all": [out / "reviewed.parquet", out / "reviewed.tsv", out / "reviewed"]}[fmt]
    written = [write_benchmark(accepted, t) for t in targets]
    write_decision_log(store, out / "decisions.jsonl")
    return written, len(samples)


def stats_text(db: str, quorum: int | None = None) -> str:
    store = Store(db)
    latest, adjudicated = store.latest_votes(), store.adjudications()
    counts: dict[str, int] = {}
    for index in set(latest) | set(adjudicated):
        st = final_status(latest.get(index, {}), adjudicated.get(index), quorum)
        counts[st] = counts.get(st, 0) + 1
    ag = agreement(latest)  # kappa is agreement between raters: votes only, never adjudications
    every = store.all_rows()
    rows = [r for r in every if r["kind"] == "vote"]
    reviewers = sorted({r["reviewer"] for r in rows})

    def k(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    return "\n".join([
        f"{db}: {len(rows)} decisions by {len(reviewers)} reviewer(s) ({', '.join(reviewers)}) "
        f"on {len(latest)} samples" + (f"; {len(every) - len(rows)} adjudication(s) by leads" if
                                        len(every) > len(rows) else ""),
        "status: " + ", ".join(f"{s} {n}" for s, n in sorted(counts.items())),
        f"Fleiss' kappa keep/drop {k(ag['kappa_keep_drop'])}, capability {k(ag['kappa_capability'])} "
        f"(over {int(ag['samples_with_2plus_votes'] or 0)} samples with 2+ votes)",
    ])
