"""Data parallelism for ``torchrun --nproc-per-node N -m mmstar eval ...``.

Each rank takes every N-th sample (by position), appends to its own shard file
``<mode>.rank<r>-of-<N>.jsonl`` (resumable per shard), and after a barrier rank 0 merges the shards
into the standard ``<mode>.jsonl`` (one line per index, in benchmark order) with an atomic rewrite.
Barriers use torch.distributed with the gloo backend, which works on CPU-only machines too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mmstar.records import PredictionRecord, read_records, write_records
from mmstar.runs import done_indices, prediction_path, repair_tail, shard_path, shard_paths
from mmstar.sample import Benchmark


def world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when not distributed."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init() -> None:
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def shard_samples(bench: Benchmark, rank: int, size: int) -> list[Any]:
    return list(bench)[rank::size]


def done_in_shard(run_dir: Path, mode: str, rank: int, size: int) -> set[int]:
    return done_indices(prediction_path(run_dir, mode)) | done_indices(shard_path(run_dir, mode, rank, size))


def merge_shards(run_dir: Path, mode: str, bench: Benchmark) -> int:
    """Rank 0, after the barrier: fold every shard into ``<mode>.jsonl``; returns lines merged."""
    main = prediction_path(run_dir, mode)
    shards = shard_paths(run_dir, mode)
    if not shards:
        return 0
    by_index: dict[int, PredictionRecord] = {}
    for path in [main, *shards]:
        if path.exists():
            repair_tail(path)
            for rec in read_records(path, warn=False):
                by_index.setdefault(rec.index, rec)
    order = {s.index: k for k, s in enumerate(bench)}
    records = sorted(by_index.values(), key=lambda r: order.get(r.index, len(order)))
    write_records(main, records)
    for path in shards:
        path.unlink()
    return len(records)
