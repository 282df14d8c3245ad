"""Throughput of ``mmstar eval`` against a batch-size-1 per-sample loop (how peer toolkits run HF
models), against bare ``model.generate`` on the same batches, and peak memory vs. sample count.

Not a test: run by hand, it prints figures measured in this run and their ratios.
    python benchmarks/eval_throughput.py [--samples 360] [--batch-size 32] [--family llava]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def peer_loop(model_dir: Path, bench, mode: str, max_new: int) -> float:
    """One sample at a time: processor -> generate -> decode, as VLMEvalKit / lmms-eval HF paths do."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mmstar.prompts import PromptConfig, build_messages

    proc = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32).eval()
    start = time.perf_counter()
    for s in bench:
        msgs = build_messages(s, mode, PromptConfig())
        if mode == "v":
            msgs[0]["content"][0]["image"] = s.image.pil()
        enc = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=True,
                                       return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False)
        proc.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return time.perf_counter() - start


def bare_generate(model_dir: Path, bench, mode: str, batch: int, max_new: int) -> float:
    """Only ``model.generate`` on pre-encoded batches (encoding excluded from the time)."""
    import torch
    from mmstar.evaluators.hf import HFBackend

    from mmstar.prompts import PromptConfig, build_messages

    be = HFBackend(str(model_dir), "vlm", device="cpu")
    encoded = []
    for i in range(0, len(bench), batch):
        convs = [be._materialise(build_messages(s, mode, PromptConfig())) for s in bench[i:i + batch]]
        encoded.append(be._encode(convs))
    start = time.perf_counter()
    for enc in encoded:
        with torch.inference_mode():
            be.model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=be.tokenizer.pad_token_id)
    return time.perf_counter() - start


def mmstar_eval(model_dir: Path, backbone: Path, data: Path, out: Path, mode: str, batch: int, max_new: int,
                limit: int | None = None) -> float:
    from mmstar.cli import main

    args = ["eval", "--model", str(model_dir), "--backbone", str(backbone), "--data", str(data), "--modes", mode,
            "--out", str(out), "--batch-size", str(batch), "--max-new-tokens", str(max_new), "--no-progress",
            "--overwrite"]
    if limit:
        args += ["--limit", str(limit)]
    start = time.perf_counter()
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 0
    return time.perf_counter() - start


def peak_rss_mb(model_dir: Path, backbone: Path, data: Path, out: Path, n: int, batch: int) -> float:
    """Peak RSS of a separate ``mmstar eval`` process over the first n samples (mode v)."""
    code = ("import resource, sys; from mmstar.cli import main; "
            f"main(['eval','--model','{model_dir}','--backbone','{backbone}','--data','{data}','--modes','v',"
            f"'--out','{out}','--batch-size','{batch}','--max-new-tokens','8','--no-progress','--overwrite',"
            f"'--limit','{n}']); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(proc.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=360)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--family", default="llava")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    from mmstar.evaluators.tiny import build_tiny_pair

    from mmstar.demo_data import generate
    from mmstar.loaders import load_benchmark
    from mmstar.writers import write_benchmark

    tmp = Path(tempfile.mkdtemp(prefix="mmstar-bench-"))
    pair = build_tiny_pair(args.family, tmp / "models")
    per_axis = max(1, args.samples // 18)
    data = write_benchmark(generate(per_axis=per_axis, seed=0), tmp / "demo.parquet")
    big = write_benchmark(generate(per_axis=84, seed=0), tmp / "demo1500.parquet")  # 1,512 samples
    bench = load_benchmark(data)
    n, mode, b, new = len(bench), "v", args.batch_size, args.max_new_tokens
    print(f"tiny {args.family}, {n} samples, mode {mode}, max_new_tokens {new}, torch threads 2, CPU")

    t_eval = mmstar_eval(pair.vlm, pair.backbone, data, tmp / "runs", mode, b, new)
    t_gen = bare_generate(pair.vlm, bench, mode, b, new)
    t_peer = peer_loop(pair.vlm, bench, mode, new)
    rows = {
        f"mmstar eval, batch {b} (whole command incl. load)": t_eval,
        f"bare model.generate, batch {b} (pre-encoded)": t_gen,
        "per-sample loop, batch 1 (peer style)": t_peer,
    }
    for name, t in rows.items():
        print(f"  {name:<52} {t:7.2f} s  {n / t:8.1f} samples/s")
    print(f"  speed-up of mmstar eval over the batch-1 loop:        {t_peer / t_eval:6.2f}x")
    print(f"  mmstar eval wall time / bare generate time:            {t_eval / t_gen:6.2f}x")
    small = peak_rss_mb(pair.vlm, pair.backbone, big, tmp / "m1", 150, b)
    large = peak_rss_mb(pair.vlm, pair.backbone, big, tmp / "m2", 1500, b)
    print(f"  peak RSS, 150 samples: {small:.0f} MB; 1,500 samples: {large:.0f} MB; difference {large - small:.0f} MB")
    print(json.dumps({"samples": n, "eval_s": t_eval, "generate_s": t_gen, "peer_s": t_peer,
                      "rss_150_mb": small, "rss_1500_mb": large}))
    _ = resource  # keep import for ru_maxrss in the subprocess code path


if __name__ == "__main__":
    main()
