"""Model knowledge: the alias registry, per-family facts, install checks, LLM-backbone extraction
and the tiny checkpoints the tests build. Plain data and loaders; no run loop, no backend."""
