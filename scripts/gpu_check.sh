#!/usr/bin/env bash
# GPU check (one short script, < 8 minutes on one H100): tiny LLaVA and Idefics3 through v / wv / t with
# the HF backend and (when importable) vLLM on the GPU, predictions compared, throughput of each.
# Usage: bash scripts/gpu_check.sh [PYTHON] [extra args for scripts/gpu_check.py, e.g. --allow-cpu]
set -euo pipefail
PY=${1:-python}
shift || true
OUT=${OUT:-$(mktemp -d)}
export HF_HUB_OFFLINE=1
cd "$(dirname "$0")/.."
exec "$PY" scripts/gpu_check.py "$OUT" "$@"
