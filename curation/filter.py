"""The coarse automated filter: inspector LLMs answer every pool sample text-only; samples that too
many of them answer are dropped (the paper: 8 inspectors, keep samples hit by 2 or fewer).

Each inspector (and each optional blind LVLM) is a resumable run directory under ``OUT/runs``; the
hit matrix is derived from those prediction files, so a killed filter resumes without redoing
finished inspector/sample pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmstar.evaluators.backends.base import GenerationConfig
from mmstar.evaluators.run.runner import BackendFactory, EvalConfig, run_eval

from mmstar.prompts import PromptConfig
from mmstar.runs import model_slug, prediction_hits
from mmstar.sample import Benchmark
from mmstar.writers import write_benchmark


@dataclass(frozen=True)
class Inspector:
    model: str
    kind: str  # "llm" (text-only, mode t) or "lvlm" (blind, mode wv)

    @property
    def column(self) -> str:
        return ("lvlm:" if self.kind == "lvlm" else "") + model_slug(self.model)


def run_inspectors(pool: Benchmark, inspectors: list[Inspector], out: Path, factory: BackendFactory,
                   shots: int = 2, batch_size: int = 16, scoring: str = "generate", progress: bool = True,
                   gen: GenerationConfig | None = None, dtype: str | None = None) -> dict[str, Path]:
    """Run every inspector over the pool; returns column -> prediction file."""
    files = {}
    for ins in inspectors:
        mode = "t" if ins.kind == "llm" else "wv"
        config = EvalConfig(model=ins.model, backbone=ins.model if mode == "t" else None, modes=(mode,),
                            prompt=PromptConfig("official", shots), gen=gen or GenerationConfig(),
                            batch_size=batch_size, model_label=ins.column, progress=progress, scoring=scoring,
                            dtype=dtype)
        run_dir, _scores = run_eval(pool, config, out / "runs", factory, bench_slug="pool",
                                    model_slug=ins.column)
        files[ins.column] = run_dir / f"{mode}.jsonl"
    return files


def hit_matrix(pool: Benchmark, files: dict[str, Path], llm_columns: list[str], matcher: str = "official"):
    """DataFrame: index, source, category, l2_category, one boolean column per inspector, ``n_hits``
    (text-only LLM hits only) and ``n_blind_hits`` (LVLMs without image)."""
    import pandas as pd

    frame = pd.DataFrame({"index": [s.index for s in pool], "source": [s.source for s in pool],
                          "category": [s.category for s in pool], "l2_category": [s.l2_category for s in pool]})
    for column, path in files.items():
        hits = prediction_hits(path, matcher=matcher)  # re-judged from the replies, as the leaderboard does
        missing = [i for i in frame["index"] if i not in hits]
        if missing:
            raise RuntimeError(f"{path} lacks {len(missing)} pool samples (first index {missing[0]})")
        frame[column] = frame["index"].map(hits).astype(bool)
    frame["n_hits"] = frame[llm_columns].sum(axis=1).astype(int) if llm_columns else 0
    blind = [c for c in files if c not in llm_columns]
    frame["n_blind_hits"] = frame[blind].sum(axis=1).astype(int) if blind else 0
    return frame


def split_pool(pool: Benchmark, matrix: Any, max_hits: int, out: Path) -> tuple[Benchmark, Benchmark]:
    """Kept (``n_hits <= max_hits``) and dropped sets, each sample carrying its filter evidence."""
    rows = matrix.set_index("index")
    inspector_cols = [c for c in matrix.columns if c not in ("index", "source", "category", "l2_category",
                                                             "n_hits", "n_blind_hits")]
    kept, dropped = [], []
    for s in pool:
        r = rows.loc[s.index]
        evidence = {"text_only_hits": [c for c in inspector_cols if not c.startswith("lvlm:") and bool(r[c])],
                    "blind_lvlm_hits": [c[5:] for c in inspector_cols if c.startswith("lvlm:") and bool(r[c])],
                    "n_hits": int(r["n_hits"]), "n_inspectors": sum(not c.startswith("lvlm:") for c in inspector_cols)}
        s2 = s.with_(meta={**s.meta, "filter": evidence})
        (kept if evidence["n_hits"] <= max_hits else dropped).append(s2)
    kept_b, dropped_b = Benchmark("kept", kept), Benchmark("dropped", dropped)
    write_benchmark(kept_b, out / "kept.parquet")
    if dropped:  # an empty set is not written: there is no schema to give it
        write_benchmark(dropped_b, out / "dropped.parquet")
    return kept_b, dropped_b
