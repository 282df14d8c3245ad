"""mmstar: vision-indispensable multimodal benchmarks and data-leakage analysis.

``import mmstar`` is light: no torch, transformers, vllm or streamlit. Heavy imports happen inside
the backend or command that needs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DataError, MmstarError
from .sample import Benchmark, ImageRef, Sample

if TYPE_CHECKING:  # the real imports happen on call: `import mmstar` stays light
    import pandas as pd

    from .evaluators.run.pipeline import EvalResult
    from .matching import extract_choice, official_match
    from .runs import Run

__version__ = "0.1.0"

__all__ = [
    "Benchmark",
    "DataError",
    "ImageRef",
    "MmstarError",
    "Sample",
    "__version__",
    "evaluate",
    "extract_choice",
    "leaderboard",
    "load_benchmark",
    "official_match",
    "open_run",
]


def load_benchmark(spec: str) -> Benchmark:
    """Load a benchmark from a file, folder or Hugging Face id (see ``mmstar.loaders``)."""
    from .loaders import load_benchmark as _load

    return _load(spec)


def evaluate(model: str, data: Any = "mmstar", modes: Sequence[str] | str = ("v", "wv", "t"), limit: int | None = None,
             out: str | Path = "runs", **options: Any) -> EvalResult:
    """Evaluate a model in modes v / wv / t; ``result.scores["S_v"]`` ... ``["ML"]``, ``result.run_dir``,
    ``result.records`` (a DataFrame); ``probes=["order", "slots", "swap"]`` adds the leakage probes
    (``result.scores["probes"]``). See ``mmstar.evaluators.run.pipeline.evaluate`` for the options."""
    from .evaluators.run.pipeline import evaluate as _evaluate

    return _evaluate(model, data, modes, limit, out, **options)


def open_run(path: str | Path) -> Run:
    """Read a run directory: its manifest, its records per mode, its scores (from the records)."""
    from .runs import open_run as _open_run

    return _open_run(path)


def leaderboard(paths: Iterable[str | Path], matcher: str = "official", seed: int = 0) -> pd.DataFrame:
    """One leaderboard row per run directory (the columns of ``mmstar leaderboard --csv``)."""
    from .metrics.leaderboard import leaderboard_frame

    return leaderboard_frame(paths, matcher=matcher, seed=seed)


def __getattr__(name: str) -> Any:
    """``mmstar.extract_choice`` and ``mmstar.official_match`` load the extractor on first use: its
    tables and patterns cost every command ~60 ms at start-up otherwise (``mmstar --help`` included)."""
    if name in ("extract_choice", "official_match"):
        from . import matching

        return getattr(matching, name)
    raise AttributeError(f"module 'mmstar' has no attribute {name!r}")
