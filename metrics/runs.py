"""Load run directories for the metrics: prediction records per mode, re-judged on load.

Scores are always derived from the prediction files; ``scores.json`` is never read here, so a
stale or hand-edited one cannot mislead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmstar.errors import DataError
from mmstar.predictions import check_unique
from mmstar.runs import MODES, mode_records, read_manifest
from mmstar.scoring import judge, score_records


@dataclass
class Run:
    path: Path
    model: str
    benchmark: str
    manifest: dict[str, Any]
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # mode -> records

    @property
    def prompt(self) -> str:
        return str(self.manifest.get("prompt", ""))

    @property
    def protocol(self) -> str:
        """``official`` unless the run says otherwise (manifests before the field are official runs)."""
        return str(self.manifest.get("protocol", "official"))

    @property
    def shots(self) -> int | None:
        return self.manifest.get("shots")

    def summary(self, mode: str, matcher: str) -> dict[str, Any] | None:
        recs = self.records.get(mode)
        return score_records(recs, matcher) if recs is not None else None

    def hits(self, mode: str, matcher: str) -> dict[Any, bool]:
        """index -> hit under ``matcher`` (re-judged from the prediction text)."""
        out = {}
        for rec in self.records.get(mode) or []:
            official, robust, _choice = judge(rec)
            out[rec["index"]] = official if matcher == "official" else robust
        return out


def load_run(path: str | Path) -> Run:
    path = Path(path)
    if not path.is_dir():
        raise DataError(path, "not a run directory")
    manifest = read_manifest(path) or {}
    records = {}
    for mode in MODES:
        recs = mode_records(path, mode)
        if recs is not None:
            records[mode] = check_unique(recs, path / f"{mode}.jsonl")
    if not records:
        raise DataError(path, "run directory holds no v.jsonl, wv.jsonl or t.jsonl")
    model = manifest.get("model_label") or path.parent.name
    benchmark = manifest.get("benchmark") or path.name
    return Run(path, str(model), str(benchmark), manifest, records)
