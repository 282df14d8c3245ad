"""GPU throughput of ``mmstar eval`` against the card's physical bound, in one command.

Builds a LLaVA-1.5-7B-shaped model (CLIP ViT-L/14 at 336 px -> 576 image tokens; Llama 4096 x 32
layers, 32k vocabulary) and its Llama backbone with random weights, offline: real shapes (the
``LLAVA_7B`` shape of the tiny LLaVA builder, ``evaluators/models/tiny/llava.py``) with its tiny
tokenizer, created directly on the GPU in bf16 (no CPU copy of the weights); the backbone is cut out
by ``evaluators/models/backbone.py``, the extractor of ``mmstar backbone extract``. Then runs v, wv
and t through ``mmstar eval`` (automatic batch size) on ~1,500 demo-generator samples, and a batch-1
loop (processor -> generate -> decode, as peer toolkits run HF models) on the first samples of the
same set. Prints in-run samples/s per mode (model load excluded, from the run manifest), the speed-up
over the batch-1 loop, peak GPU memory, and the fraction of the physical bound: prefill FLOPs at the
card's peak plus decode weight reads at its bandwidth, card figures from ``CARDS`` keyed by
``torch.cuda.get_device_name()``. Everything lands in one JSON (written after every step, so a
timed-out step still leaves the others).

Each step is its own process under its own timeout. Needs torch + CUDA + transformers; no network,
no vLLM.
    python benchmarks/gpu_throughput.py [--out DIR] [--samples 1512] [--peer-samples 48] [--ab-prefix]
    python benchmarks/gpu_throughput.py --allow-cpu --small      # dry run of the same path on CPU
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]

# (peak dense bf16 FLOP/s, memory bandwidth bytes/s), matched against the device name
CARDS = {"H200": (989e12, 4.8e12), "H100": (989e12, 3.35e12), "A100": (312e12, 2.0e12)}


def _shapes() -> dict:
    """The 7B shape, and the dry run's tiny one on the same code path (16 image tokens, 512 rows)."""
    from mmstar.evaluators.models.tiny.llava import LLAVA_7B, LlavaShape

    return {"7b": LLAVA_7B, "small": LlavaShape(vocab=512, positions=4096, image=56, patch=14)}


# ---------------------------------------------------------------------- steps (each its own process)

def step_build(out: Path, shape: str, device: str) -> dict:
    """Random LLaVA + its Llama backbone, built on ``device`` in the run dtype, saved as safetensors."""
    import torch
    from mmstar.evaluators.models.backbone import backbone_tokenizer, carve_lm, write_backbone
    from mmstar.evaluators.models.tiny import train_tokenizer
    from mmstar.evaluators.models.tiny.llava import LLAVA, build_llava

    s, dtype = _shapes()[shape], _dtype(device)
    tok = train_tokenizer("llava")
    LLAVA.classes()  # imports the model code before the clock starts: init_s times the weights alone
    start = time.perf_counter()
    # weights are born on the accelerator, in the run dtype
    vlm, proc = build_llava(tok, seed=0, shape=s, device=device, dtype=dtype)
    built = time.perf_counter() - start
    vlm.save_pretrained(out / "llava", safe_serialization=True)
    proc.save_pretrained(out / "llava")
    # the backbone: the same language-model tensors under a causal LM's names, saved without a copy
    carved = carve_lm(vlm, "llava")
    n_params = sum(p.numel() for p in vlm.parameters())
    n_lm = sum(v.numel() for v in carved.lm.state_dict().values())
    write_backbone(carved.lm, backbone_tokenizer(tok, carved.facts), out / "llama")
    return {"params": n_params, "params_lm": n_lm, "params_vision": n_params - n_lm, "image_tokens": s.image_tokens,
            "bytes_per_param": torch.tensor([], dtype=dtype).element_size(), "init_s": round(built, 2),
            "seconds": round(time.perf_counter() - start, 2)}


def step_eval(out: Path, data: Path, device: str, batch: str, ab: bool, workers: str = "auto") -> dict:
    """``mmstar eval`` on the built pair; the peak accelerator memory of this process. ``ab``: mode t
    alone without shared-prefix reuse, into its own folder (the A/B baseline)."""
    import torch
    from mmstar.app.cli import main

    modes, runs, extra = ("t", "runs-noprefix", ["--no-prefix-cache"]) if ab else ("v,wv,t", "runs", [])
    args = ["eval", "--model", str(out / "llava"), "--backbone", str(out / "llama"), "--data", str(data),
            "--modes", modes, "--out", str(out / runs), "--no-progress", "--device", device, "--dtype",
            str(_dtype(device)).removeprefix("torch."), "--batch-size", batch, "--workers", workers, *extra]
    start = time.perf_counter()
    rc = main(args)
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
    return {"rc": rc, "seconds": round(time.perf_counter() - start, 2),
            "peak_gpu_gib": None if peak is None else round(peak / 2**30, 2)}


def step_peer(out: Path, data: Path, device: str, n: int, budget_s: float) -> dict:
    """One sample at a time in mode v, stopping after n samples or budget_s seconds."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mmstar.loaders import load_benchmark
    from mmstar.prompts import PromptConfig, build_messages

    proc = AutoProcessor.from_pretrained(out / "llava")
    model = AutoModelForImageTextToText.from_pretrained(out / "llava", dtype=_dtype(device)).to(device).eval()
    bench = load_benchmark(data)
    done, start = 0, time.perf_counter()
    for s in list(bench)[:n]:
        msgs = build_messages(s, "v", PromptConfig())
        msgs[0]["content"][0]["image"] = s.image.pil()
        enc = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=True,
                                       return_tensors="pt").to(device)
        enc["pixel_values"] = enc["pixel_values"].to(model.dtype)
        with torch.inference_mode():
            gen = model.generate(**enc, max_new_tokens=32, do_sample=False, pad_token_id=proc.tokenizer.pad_token_id)
        proc.decode(gen[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        done += 1
        if time.perf_counter() - start > budget_s:
            break
    secs = time.perf_counter() - start
    return {"samples": done, "seconds": round(secs, 2), "samples_per_s": round(done / secs, 3)}


def _dtype(device: str):
    import torch

    return torch.bfloat16 if device.startswith("cuda") else torch.float32


# ---------------------------------------------------------------------- the driver

def run_step(name: str, argv: list[str], timeout: int) -> dict:
    """This file again, as ``--step NAME``, under a timeout; its last stdout line is its JSON."""
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--step", name, *argv], capture_output=True, text=True,
                              timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-600:]}"}
    result = json.loads(lines[-1])
    result["wall_s"] = round(time.perf_counter() - start, 2)
    return result


def card_figures(name: str) -> tuple[float, float] | None:
    return next((v for k, v in CARDS.items() if k in name.upper()), None)


def mode_bound(records: list[dict], batch: int, build: dict, mode: str, card: tuple[float, float]) -> float:
    """Seconds the card needs at best: prefill FLOPs (2 x parameters x tokens; the vision tower's
    tokens too in v) at peak, plus one read of the language model's weights per decode step of each
    batch (batches taken in file order, which is the order they ran) at full bandwidth."""
    flops_peak, bandwidth = card
    prompt = sum(r.get("prompt_tokens") or 0 for r in records)
    flops = 2 * build["params_lm"] * prompt
    if mode == "v":
        flops += 2 * build["params_vision"] * (build["image_tokens"] + 1) * len(records)
    steps = sum(max(0, max((r.get("completion_tokens") or 0) for r in records[i:i + batch]) - 1)
                for i in range(0, len(records), batch))
    return flops / flops_peak + steps * build["params_lm"] * build["bytes_per_param"] / bandwidth


def summarise(runs: Path, build: dict, peer: dict, card: tuple[float, float] | None) -> dict:
    (manifest_path,) = list(runs.glob("*/*/manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    modes = {}
    for mode, entry in manifest.get("modes", {}).items():
        records = [json.loads(x) for x in (manifest_path.parent / f"{mode}.jsonl").read_text().splitlines()]
        secs = entry.get("seconds") or 0.0
        row = {"in_run_s": secs, "samples": entry.get("ran", 0), "batch_size": entry.get("batch_size"),
               "batch_probe": entry.get("batch_probe"),
               "samples_per_s": round(entry["ran"] / secs, 2) if secs > 0 else None,
               "errors": sum(r.get("error") is not None for r in records)}
        if card and secs > 0 and entry.get("batch_size"):
            bound = mode_bound(records, int(entry["batch_size"]), build, mode, card)
            row.update(bound_s=round(bound, 2), bound_samples_per_s=round(len(records) / bound, 1),
                       fraction_of_bound=round(bound / secs, 3))
        modes[mode] = row
    if "v" in modes and peer.get("samples_per_s") and modes["v"]["samples_per_s"]:
        modes["v"]["speedup_over_batch1"] = round(modes["v"]["samples_per_s"] / peer["samples_per_s"], 1)
    return modes


def targets(modes: dict) -> dict:
    """Issue 16's targets on one H100/H200 (random 7B, 32 new tokens, ~1,500 samples)."""
    rate = {m: (modes.get(m) or {}).get("samples_per_s") for m in ("v", "wv", "t")}
    total = sum((modes.get(m) or {}).get("in_run_s", 0) for m in ("v", "wv", "t"))
    return {"v >= 40 samples/s": None if rate["v"] is None else rate["v"] >= 40,
            "t >= wv": None if None in (rate["t"], rate["wv"]) else rate["t"] >= rate["wv"],
            "v+wv+t <= 90 s in-run": total <= 90 if len([r for r in rate.values() if r]) == 3 else None}


def report(results: dict) -> None:
    print(f"device: {results['device']} | torch {results['torch']} | transformers {results['transformers']}"
          + (" | DRY RUN (tiny shapes)" if results["shape"] == "small" else ""))
    b = results.get("build", {})
    if "params" in b:
        unit, div = ("B", 1e9) if b["params"] >= 1e9 else ("M", 1e6)
        print(f"model: LLaVA, {b['params'] / div:.2f} {unit} parameters ({b['params_lm'] / div:.2f} {unit} "
              f"language model), {b['image_tokens']} image tokens; built in {b['seconds']} s (init {b['init_s']} s)")
    for mode, row in results.get("modes", {}).items():
        line = (f"  {mode:>2}: {row['samples']} samples in {row['in_run_s']:.1f} s in-run = "
                f"{row['samples_per_s']} samples/s at batch {row['batch_size']}")
        if "fraction_of_bound" in row:
            line += f"; bound {row['bound_samples_per_s']} samples/s, {100 * row['fraction_of_bound']:.0f}% of it"
        if "speedup_over_batch1" in row:
            line += f"; {row['speedup_over_batch1']}x the batch-1 loop"
        print(line)
    for mode, row in results.get("modes_no_prefix", {}).items():
        print(f"  {mode:>2} without prefix reuse (--no-prefix-cache): {row['samples_per_s']} samples/s "
              f"at batch {row['batch_size']}")
    peer = results.get("peer", {})
    if "samples_per_s" in peer:
        print(f"  batch-1 loop (v, processor -> generate -> decode): {peer['samples_per_s']} samples/s "
              f"over {peer['samples']} samples")
    ev = results.get("eval", {})
    if ev.get("peak_gpu_gib") is not None:
        print(f"  peak GPU memory (eval process): {ev['peak_gpu_gib']} GiB")
    if results.get("modes"):
        total = sum(r["in_run_s"] for r in results["modes"].values())
        print(f"  v+wv+t in-run: {total:.1f} s")
    if results.get("targets") and results["shape"] == "7b":
        print("  targets: " + "; ".join(f"{k}: {'met' if v else 'NOT met' if v is False else '-'}"
                                        for k, v in results["targets"].items()))
    for name in ("build", "eval", "peer", "eval_t_no_prefix"):
        if "error" in results.get(name, {}):
            print(f"  step {name}: {results[name]['error']}")


def drive(args: argparse.Namespace) -> int:
    import torch
    import transformers

    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        raise SystemExit("no CUDA device (use --allow-cpu --small for a dry run on the CPU)")
    device = "cuda" if cuda else "cpu"
    out = Path(args.out or tempfile.mkdtemp(prefix="mmstar-gpu-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(0) if cuda else "CPU"
    card = card_figures(name) if cuda else None
    results: dict = {"device": name, "card_figures": card, "torch": torch.__version__,
                     "transformers": transformers.__version__, "shape": args.shape, "out": str(out)}
    json_path = Path(args.json or out / "gpu_throughput.json")

    def save() -> None:
        json_path.write_text(json.dumps(results, indent=2))

    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    data = write_benchmark(generate(per_axis=max(1, math.ceil(args.samples / 18)), seed=0), out / "demo.parquet")
    common = ["--out", str(out), "--device", device, "--shape", args.shape]
    results["build"] = run_step("build", common, args.build_timeout)
    save()
    if "error" not in results["build"]:
        results["eval"] = run_step("eval", [*common, "--data", str(data), "--batch-size", args.batch_size,
                                            "--workers", args.workers], args.eval_timeout)
        save()
        results["peer"] = run_step("peer", [*common, "--data", str(data), "--peer-samples", str(args.peer_samples),
                                            "--peer-timeout", str(args.peer_timeout)],
                                   args.peer_timeout)
        if args.ab_prefix:
            results["eval_t_no_prefix"] = run_step("eval", [*common, "--data", str(data), "--batch-size",
                                                            args.batch_size, "--ab-prefix"], args.eval_timeout)
        if list((out / "runs").glob("*/*/manifest.json")):
            results["modes"] = summarise(out / "runs", results["build"], results["peer"], card)
        if list((out / "runs-noprefix").glob("*/*/manifest.json")):
            results["modes_no_prefix"] = summarise(out / "runs-noprefix", results["build"], {}, card)
        results["targets"] = targets(results.get("modes", {}))
    save()
    report(results)
    print(f"wrote {json_path}")
    return 0 if all("error" not in results.get(k, {}) for k in ("build", "eval", "peer")) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="work folder (models, data, runs); default: a new temp folder")
    ap.add_argument("--json", help="where to write the results (default OUT/gpu_throughput.json)")
    ap.add_argument("--samples", type=int, default=1512)
    ap.add_argument("--peer-samples", type=int, default=48, help="batch-1 loop: at most this many samples")
    ap.add_argument("--batch-size", default="auto")
    # auto on CUDA: no workers, the image processor's tensor work on the GPU (a prefetch thread decodes
    # and tokenises); N: N processes prepare on the CPU. Which is faster on a GPU box is unmeasured
    ap.add_argument("--workers", default="auto", help="mmstar eval --workers (auto, or a count)")
    ap.add_argument("--allow-cpu", action="store_true", help="run on the CPU (with --small: a dry run)")
    ap.add_argument("--ab-prefix", action="store_true",
                    help="also run mode t with --no-prefix-cache (the baseline for shared-prefix reuse; ~1 min more)")
    ap.add_argument("--small", action="store_true", help="tiny shapes instead of 7B (the same code path)")
    # expected on an H100/H200: build ~1-1.5 min (mostly writing 2 x ~13.5 GB), eval ~2-4 min, peer ~1 min
    ap.add_argument("--build-timeout", type=int, default=180)
    ap.add_argument("--eval-timeout", type=int, default=330)
    ap.add_argument("--peer-timeout", type=int, default=90)
    # internal: one step in this process
    ap.add_argument("--step", choices=("build", "eval", "peer"), help=argparse.SUPPRESS)
    ap.add_argument("--device", help=argparse.SUPPRESS)
    ap.add_argument("--shape", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        out = Path(args.out)
        if args.step == "build":
            result = step_build(out, args.shape, args.device)
        elif args.step == "eval":
            result = step_eval(out, Path(args.data), args.device, args.batch_size, args.ab_prefix, args.workers)
        else:
            # what is left of the step's timeout after loading the model (~15-30 s for 14 GB)
            result = step_peer(out, Path(args.data), args.device, args.peer_samples,
                               budget_s=max(5.0, args.peer_timeout - 45))
        print(json.dumps(result))
        return 0 if result.get("rc", 0) == 0 else 1
    args.shape = "small" if args.small else "7b"
    if args.small:
        args.samples = min(args.samples, 72)
        args.peer_samples = min(args.peer_samples, 8)
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
