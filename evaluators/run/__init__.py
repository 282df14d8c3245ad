"""The run: the evaluation pipeline (``pipeline``), its loop (``runner``), sweeps, data-parallel
sharding and the LLM judge. Above backends and model knowledge; below metrics' consumers."""
