"""mmstar: vision-indispensable multimodal benchmarks and data-leakage analysis.

``import mmstar`` is light: no torch, transformers, vllm or streamlit. Heavy imports happen inside
the backend or command that needs them.
"""

from __future__ import annotations

from .errors import DataError, MmstarError
from .matching import extract_choice, official_match
from .sample import Benchmark, ImageRef, Sample

__version__ = "0.1.0"

__all__ = [
    "Benchmark",
    "DataError",
    "ImageRef",
    "MmstarError",
    "Sample",
    "__version__",
    "extract_choice",
    "load_benchmark",
    "official_match",
]


def load_benchmark(spec: str) -> Benchmark:
    """Load a benchmark from a file, folder or Hugging Face id (see ``mmstar.loaders``)."""
    from .loaders import load_benchmark as _load

    return _load(spec)
