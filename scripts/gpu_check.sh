#!/usr/bin/env bash
# GPU check (one short script, < 8 minutes on one H100): tiny checkpoints -> v / wv / t with the HF
# backend and, when vLLM is importable, the vLLM backend on the GPU; compares their predictions and
# prints the throughput of each. Usage: bash scripts/gpu_check.sh [PYTHON]
set -euo pipefail
PY=${1:-python}
OUT=${OUT:-$(mktemp -d)}
export HF_HUB_OFFLINE=1
cd "$(dirname "$0")/.."
$PY - "$OUT" <<'PY'
import json, sys, time
from pathlib import Path
import torch
from mmstar.cli import main
from mmstar.demo_data import generate
from mmstar.evaluators.tiny import build_tiny_pair
from mmstar.writers import write_benchmark

out = Path(sys.argv[1])
assert torch.cuda.is_available(), "no CUDA device"
print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
data = write_benchmark(generate(per_axis=20, seed=0), out / "demo.parquet")  # 360 samples
pair = build_tiny_pair("llava", out / "models")
rows = {}
backends = ["hf"]
try:
    import vllm  # noqa: F401
    backends.append("vllm")
except ImportError:
    print("vllm is not importable here: vLLM half of the check skipped")
for backend in backends:
    start = time.perf_counter()
    code = main(["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", str(data),
                 "--out", str(out / backend), "--backend", backend, "--batch-size", "64", "--no-progress",
                 "--max-new-tokens", "16", "--gpu-memory-utilization", "0.3"] if backend == "vllm" else
                ["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", str(data),
                 "--out", str(out / backend), "--batch-size", "64", "--no-progress", "--max-new-tokens", "16"])
    assert code == 0
    seconds = time.perf_counter() - start
    (run,) = [p.parent for p in (out / backend).glob("*/*/manifest.json")]
    rows[backend] = run
    print(f"{backend}: 3 modes x 360 samples in {seconds:.1f} s = {3 * 360 / seconds:.1f} samples/s (incl. load)")
if "vllm" in rows:
    for mode in ("v", "wv", "t"):
        a = {json.loads(x)["index"]: json.loads(x)["prediction"] for x in (rows["hf"] / f"{mode}.jsonl").open()}
        b = {json.loads(x)["index"]: json.loads(x)["prediction"] for x in (rows["vllm"] / f"{mode}.jsonl").open()}
        same = sum(a[i] == b[i] for i in a)
        print(f"{mode}: HF and vLLM predictions identical on {same}/{len(a)}")
PY
