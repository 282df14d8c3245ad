"""``mmstar demo``: the main job on the bundled demo benchmark and tiny local models.

With trained demo models bundled (``mmstar.data``: clean, contaminated, base), it shows MG and ML
doing what they claim. Without them it falls back to tiny random LLaVA checkpoints built on the
spot: the pipeline runs end to end, but the numbers are then noise around chance.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mmstar.evaluators.run.pipeline import evaluate

from mmstar.loaders import load_benchmark
from mmstar.sample import Benchmark
from mmstar.writers import write_benchmark

from .publishing import publish_demo


def demo_benchmark(out: Path):
    from mmstar.data import DEMO_TEST

    if DEMO_TEST.exists():
        bench = load_benchmark(DEMO_TEST)
        return Benchmark("mmstar-demo", list(bench), bench.origin)
    from mmstar.demo_data import generate

    path = out / "data" / "mmstar-demo-test.parquet"
    if not path.exists():
        write_benchmark(generate(per_axis=10, seed=0, split="test", vary_order=True), path)
    return load_benchmark(path)


# (label, LVLM folder, LLM backbone folder) under mmstar.data.DEMO_MODELS: the clean model, the shipped
# leak (scripts/train_demo_models.py) and the three leaks of scripts/train_demo_leaks.py, one per kind the
# probes must tell apart: the leak on half the samples, the answers' text (recall), the backbone
DEMO_LINEUP = (("demo-clean", "clean", "base"), ("demo-contaminated", "contaminated", "base"),
               ("demo-half-leak", "half-leak", "base"), ("demo-text-leak", "text-leak", "base"),
               ("demo-backbone-leak", "clean", "backbone-leak"))


def demo_models(out: Path) -> list[tuple[str, str, str]]:
    """(label, LVLM folder, backbone folder) for each demo model bundled."""
    from mmstar.data import DEMO_MODELS

    found = [(label, str(DEMO_MODELS / vlm), str(DEMO_MODELS / llm)) for label, vlm, llm in DEMO_LINEUP
             if (DEMO_MODELS / vlm / "config.json").exists() and (DEMO_MODELS / llm / "config.json").exists()]
    if found:
        return found
    from mmstar.evaluators.models.tiny import build_tiny_pair

    root = out / "_tiny"
    if not (root / "tiny-llava" / "config.json").exists():
        build_tiny_pair("llava", root)
    return [("tiny-llava-random", str(root / "tiny-llava"), str(root / "tiny-llava-backbone"))]


# the leakage probes run on the first PROBE_LIMIT samples: all 360 of the demo. Order asks every sample
# 3 more times in each mode, recall scores every option text twice in wv and t; for the five demo models
# the probes took 186 s of a 222 s demo on this 2-core CPU while another test run shared it (2026-12-07)
DEMO_PROBES = ("order", "slots", "swap", "recall")
PROBE_LIMIT = 360


def probe_demo(label: str, vlm: str, backbone: str, bench: Benchmark, out: Path, batch_size: int = 32,
               quiet: bool = False, device: str = "cpu", dtype: str = "float32",
               limit: int | None = PROBE_LIMIT) -> dict[str, Any]:
    """The leakage probes on one demo model's run (its modes done already, so only the probes run):
    returns the run's ``probes`` block."""
    result = evaluate(vlm, data=bench, out=out / "runs", backbone=backbone, label=label, batch_size=batch_size,
                      shots=0, max_new_tokens=8, progress=not quiet, device=device, dtype=dtype, limit=limit,
                      probes=DEMO_PROBES)
    return result.scores["probes"]


def run_demo(out: Path, batch_size: int = 32, quiet: bool = False, device: str = "cpu",
             dtype: str = "float32", probes: bool = True, probe_limit: int | None = PROBE_LIMIT) -> int:
    import torch
    from mmstar.evaluators.backends.registry import concrete_dtype

    concrete_dtype("hf", {"device": device, "dtype": dtype})  # a missing CUDA device fails here, in one line
    torch.manual_seed(0)
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    bench = demo_benchmark(out)
    models = demo_models(out)
    run_dirs = []
    for label, vlm, backbone in models:
        # the paper's protocol but 0 shots and 8 new tokens: the demo models answer with one letter
        result = evaluate(vlm, data=bench, out=out / "runs", backbone=backbone, label=label, batch_size=batch_size,
                          shots=0, max_new_tokens=8, progress=not quiet, device=device, dtype=dtype)
        run_dirs.append(result.run_dir)
        print(f"{label:<22} {result.summary()}")
    if probes:
        _probes(models, bench, out, batch_size, quiet, device, dtype, probe_limit)
    publish_demo(run_dirs, out)
    print(f"\ndemo finished in {time.perf_counter() - start:.1f} s; runs under {out / 'runs'}")
    if models[0][0] == "tiny-llava-random":
        print("note: no trained demo models are bundled, so these tiny random models score near chance")
    return 0


def _probes(models: list[tuple[str, str, str]], bench: Benchmark, out: Path, batch_size: int, quiet: bool,
            device: str, dtype: str, limit: int | None) -> None:
    """Run the probes on every demo model and print the probe table (ML misses what they catch)."""
    from mmstar.probes import probe_table

    start = time.perf_counter()
    n = len(bench) if limit is None else min(limit, len(bench))
    print(f"\nleakage probes ({', '.join(DEMO_PROBES)}) on the first {n} of {len(bench)} samples:")
    for label, vlm, backbone in models:
        block = probe_demo(label, vlm, backbone, bench, out, batch_size, quiet, device, dtype, limit)
        print(f"{label}: " + probe_table(block))
    print(f"probes took {time.perf_counter() - start:.1f} s")
