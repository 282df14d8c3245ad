"""Export the accepted samples, with reviewers' corrections applied, as a benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmstar.errors import MmstarError
from mmstar.loaders import load_benchmark
from mmstar.options import LETTERS
from mmstar.sample import Benchmark, Sample
from mmstar.writers import write_benchmark

from .store import Store, Vote, agreement, status


def apply_corrections(sample: Sample, votes: dict[str, Vote]) -> Sample:
    """Consensus labels; the newest correction among the agreeing votes wins. The original text is
    kept in ``meta['original']`` whenever something was corrected."""
    newest = max(votes.values(), key=lambda v: v.row_id)
    fix: dict[str, Any] = {}
    for v in sorted(votes.values(), key=lambda v: v.row_id):
        fix.update({k: val for k, val in v.corrections.items() if val not in (None, "", {})})
    meta = dict(sample.meta)
    changes: dict[str, Any] = {"category": newest.category, "l2_category": newest.l2_category}
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
    meta["review"] = {"reviewers": sorted(votes), "votes": len(votes)}
    return sample.with_(meta=meta, **changes)


def accepted_samples(candidates: Benchmark, store: Store, quorum: int | None = None) -> list[Sample]:
    latest = store.latest_votes()
    out = []
    for s in candidates:
        votes = latest.get(s.index, {})
        if status(votes, quorum) == "accepted":
            out.append(apply_corrections(s, votes))
    return out


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
    return [write_benchmark(accepted, t) for t in targets], len(samples)


def stats_text(db: str, quorum: int | None = None) -> str:
    store = Store(db)
    latest = store.latest_votes()
    counts: dict[str, int] = {}
    for votes in latest.values():
        st = status(votes, quorum)
        counts[st] = counts.get(st, 0) + 1
    ag = agreement(latest)
    rows = store.all_rows()
    reviewers = sorted({r["reviewer"] for r in rows})

    def k(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    return "\n".join([
        f"{db}: {len(rows)} decisions by {len(reviewers)} reviewer(s) ({', '.join(reviewers)}) "
        f"on {len(latest)} samples",
        "status: " + ", ".join(f"{s} {n}" for s, n in sorted(counts.items())),
        f"Fleiss' kappa keep/drop {k(ag['kappa_keep_drop'])}, capability {k(ag['kappa_capability'])} "
        f"(over {int(ag['samples_with_2plus_votes'] or 0)} samples with 2+ votes)",
    ])
