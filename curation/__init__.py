"""Benchmark curation: candidate pools, multi-LLM text-only filter, difficulty and balanced selection."""
