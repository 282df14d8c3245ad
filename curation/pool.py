"""Candidate pools: merge samples from several benchmark files, tag source and split, drop exact
duplicates (same question, options and image bytes) and report them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from mmstar.errors import MmstarError
from mmstar.loaders import build_sample, read_table
from mmstar.sample import Benchmark, Sample
from mmstar.validate import validate_table


@dataclass
class PoolReport:
    per_source: dict[str, int] = field(default_factory=dict)
    duplicates: list[tuple[str, int, str, int]] = field(default_factory=list)  # (src, idx, kept src, kept idx)
    problems: list[str] = field(default_factory=list)
    skipped: int = 0


def parse_source(spec: str) -> tuple[str, str | None, str | None]:
    """``PATH[=NAME[:SPLIT]]``: the file, and the source name / split to tag its samples with."""
    path, _, tag = spec.partition("=")
    name, _, split = tag.partition(":")
    return path, name or None, split or None


def sample_key(s: Sample) -> str:
    h = hashlib.sha256(json.dumps([s.question, s.options], ensure_ascii=False).encode())
    h.update((s.image.digest() if s.image is not None else "-").encode())
    return h.hexdigest()


def build_pool(specs: list[str], skip_invalid: bool = False) -> tuple[Benchmark, PoolReport]:
    """Samples get new consecutive indices; ``meta`` keeps ``orig_index``, ``split`` and the file."""
    report = PoolReport()
    seen: dict[str, tuple[str, int, int]] = {}
    pooled: list[Sample] = []
    for spec in specs:
        path, name, split = parse_source(spec)
        table = read_table(path)
        _samples, problems = validate_table(table, taxonomy_mode="none", check_images=False)
        bad_rows = {p.row for p in problems if p.severity == "error" and p.row is not None}
        report.problems += [p.line(table.origin) for p in problems if p.severity == "error"]
        if bad_rows and not skip_invalid:
            first = next(p for p in problems if p.severity == "error")
            raise MmstarError(f"{first.line(table.origin)} (and {len(bad_rows) - 1} more bad rows); fix them or "
                              "pass --skip-invalid to leave them out")
        for raw in table.rows:
            if raw.rownum in bad_rows:
                report.skipped += 1
                continue
            s = build_sample(table, raw)
            source = name or s.source or Path(path).stem
            key = sample_key(s)
            if key in seen:
                kept_src, kept_orig, _kept_idx = seen[key]
                report.duplicates.append((source, s.index, kept_src, kept_orig))
                continue
            new_index = len(pooled)
            seen[key] = (source, s.index, new_index)
            meta = {**s.meta, "orig_index": s.index, "pool_file": str(path)}
            if split or "split" not in meta:
                meta["split"] = split or ""
            pooled.append(s.with_(index=new_index, source=source, meta=meta))
            report.per_source[source] = report.per_source.get(source, 0) + 1
    if not pooled:
        raise MmstarError("the pool is empty: no valid samples in the sources")
    return Benchmark("pool", pooled), report

