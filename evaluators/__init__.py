"""Model backends (HF transformers, vLLM, OpenAI-compatible), model registry and the run loop."""
