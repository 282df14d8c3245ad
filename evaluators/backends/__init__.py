"""Model backends: one interface (``base``), its implementations (hf, vllm, openai) and the
registry that maps a backend name to its options and constructor (``registry``)."""
