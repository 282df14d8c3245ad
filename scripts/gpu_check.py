"""GPU check: tiny checkpoints (LLaVA, Idefics3) -> v / wv / t with the HF backend and, when vLLM is
importable, the vLLM backend, both in float32 so their predictions compare token for token; prints
the throughput of each (in-run samples/s, model load excluded, from the run manifests).
Run by scripts/gpu_check.sh; ``--allow-cpu`` runs it on a CPU (a dry run of the script itself).
A file, not stdin: vLLM's engine starts worker processes that re-import the main module."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def records(run: Path, mode: str) -> dict:
    return {r["index"]: r for r in map(json.loads, (run / f"{mode}.jsonl").read_text().splitlines())}


def rate(stats: dict) -> str:
    """In-run samples/s of one mode; a resumed mode that had nothing left ran 0 samples in 0 s."""
    ran, secs = stats.get("ran", 0), stats.get("seconds") or 0.0
    if ran and secs > 0:
        return f"{ran / secs:.0f}/s"
    return f"nothing left to run ({stats.get('done_before', 0)} done before)"


def run_family(family: str, backends: list[str], data: Path, out: Path, n: int) -> None:
    from mmstar.app.cli import main
    from mmstar.evaluators.backends import registry
    from mmstar.evaluators.models.tiny import build_tiny_pair

    pair = build_tiny_pair(family, out / "models")
    runs = {}
    for backend in backends:
        args = ["eval", "--model", str(pair.vlm), "--backbone", str(pair.backbone), "--data", str(data),
                "--out", str(out / family / backend), "--backend", backend, "--batch-size", "64", "--no-progress",
                "--max-new-tokens", "16", "--dtype", "float32"]
        if registry.get(backend).takes("gpu_memory_utilization"):  # leave room for the other backend's run
            args += ["--gpu-memory-utilization", "0.3"]
        start = time.perf_counter()
        if main(args) != 0:
            print(f"{family} {backend}: FAILED (see above)", flush=True)
            continue
        wall = time.perf_counter() - start
        (run,) = [p.parent for p in (out / family / backend).glob("*/*/manifest.json")]
        runs[backend] = run
        modes = json.loads((run / "manifest.json").read_text())["modes"]
        rates = ", ".join(f"{m} {rate(modes[m])}" for m in ("v", "wv", "t"))
        print(f"{family} {backend}: whole command {wall:.1f} s; in-run {rates}", flush=True)
    first, *others = list(runs) or [None]
    for other in others:  # each backend's predictions against the first's, token for token
        for mode in ("v", "wv", "t"):
            a, b = records(runs[first], mode), records(runs[other], mode)
            same = sum(a[i]["prediction"] == b[i]["prediction"] for i in a)
            errors = sum(b[i]["error"] is not None for i in b)
            print(f"{family} {mode}: {first} and {other} predictions identical on {same}/{len(a)}; "
                  f"{other} errors {errors}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--families", default="llava,idefics3")
    ap.add_argument("--allow-cpu", action="store_true")
    args = ap.parse_args()
    import torch

    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    if not torch.cuda.is_available() and not args.allow_cpu:
        raise SystemExit("no CUDA device (use --allow-cpu for a dry run on the CPU)")
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"device: {name} | torch {torch.__version__}", flush=True)
    out = Path(args.out)
    data = write_benchmark(generate(per_axis=20, seed=0), out / "demo.parquet")  # 360 samples
    from mmstar.evaluators.backends import registry

    # every backend that loads weights here and whose engine is installed (hf; vllm where it is)
    backends = [name for name in registry.names(lambda spec: spec.local) if registry.available(name)]
    skipped = [name for name in registry.names(lambda spec: spec.local) if name not in backends]
    if skipped:
        print(f"not importable here, skipped: {', '.join(skipped)}")
    for family in args.families.split(","):
        run_family(family.strip(), backends, data, out, 360)


if __name__ == "__main__":
    main()
