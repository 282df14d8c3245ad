"""Mode v on CPU: ``mmstar eval`` against a batched plain transformers loop, in one run.

Every arm is its own process, started as a user starts it, with OMP_NUM_THREADS and MKL_NUM_THREADS
unset (an arm that sets OMP_NUM_THREADS=1 says so):
- plain: the batched loop a user writes (processor -> generate -> decode, batch after batch, in the
  data's order), with the same prompts (``build_messages``, official preset) and greedy decoding;
- mmstar: ``python -m mmstar eval --modes v`` with its defaults (worker processes, auto);
- mmstar --workers 0: the path before worker processes (a prefetch thread, torch's default threads).

For each: the in-run time (plain: its first batch to its last; mmstar: the manifest's ``seconds``),
the in-run CPU (user + system of the process and its workers over that time), the whole command's
wall time and CPU (user + system of the process tree / wall), and the fixed cost (whole - in-run).
Ratios are against the plain loop at the same batch size, taken pair by pair within a repeat (the
arms of one repeat run back to back, so load from other processes hits them alike), and the median
over repeats is printed, with the machine's load average at the time. Predictions are compared
across arms. ``--timeline`` also prints where an mmstar command spends the time before its first batch.

Not a test: run by hand.
    python benchmarks/cpu_pipeline.py [--samples 200] [--batch-sizes 16,32] [--max-new-tokens 32]
                                      [--images native,640x480] [--repeats 3] [--timeline] [--arms 'plain;mmstar']
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
UNSET = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def plain_loop(model: str, data: str, batch: int, n: int, max_new: int, out: str) -> None:
    """The batched loop, in this process; writes its in-run figures and predictions to ``out``."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mmstar.loaders import load_benchmark
    from mmstar.prompts import PromptConfig, build_messages

    proc = AutoProcessor.from_pretrained(model)
    proc.tokenizer.padding_side = "left"
    model_ = AutoModelForImageTextToText.from_pretrained(model, dtype=torch.float32).eval()
    samples = list(load_benchmark(data))[:n]
    start, cpu = time.perf_counter(), time.process_time()
    preds = {}
    for i in range(0, len(samples), batch):
        chunk = samples[i:i + batch]
        convs = []
        for s in chunk:
            msgs = build_messages(s, "v", PromptConfig())
            for m in msgs:
                if isinstance(m["content"], list):
                    m["content"] = [{"type": "image", "image": p["image"].pil()} if p.get("type") == "image" else p
                                    for p in m["content"]]
            convs.append(msgs)
        enc = proc.apply_chat_template(convs, add_generation_prompt=True, tokenize=True, return_dict=True,
                                       return_tensors="pt", processor_kwargs={"padding": True})
        with torch.inference_mode():
            gen = model_.generate(**enc, max_new_tokens=max_new, do_sample=False,
                                  pad_token_id=proc.tokenizer.pad_token_id)
        for s, row in zip(chunk, gen[:, enc["input_ids"].shape[1]:]):
            preds[s.index] = proc.decode(row, skip_special_tokens=True).strip()
    Path(out).write_text(json.dumps({"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
                                     "predictions": preds}))


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the whole process tree, stderr) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} ... failed:\n{proc.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stderr


def run_arm(arm: str, model: Path, backbone: Path, data: Path, batch: int, n: int, max_new: int,
            tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    if arm == "plain, OMP_NUM_THREADS=1":
        env["OMP_NUM_THREADS"] = "1"
    out = tmp / f"{arm.replace(' ', '_').replace(',', '').replace('=', '')}-{batch}"
    if arm.startswith("plain"):
        out.parent.mkdir(parents=True, exist_ok=True)
        result = out.with_suffix(".json")
        cmd = [sys.executable, __file__, "--plain-loop", str(model), str(data), str(batch), str(n), str(max_new),
               str(result)]
        wall, cpu, _ = timed(cmd, env)
        got = json.loads(result.read_text())
        preds = {int(k): v for k, v in got["predictions"].items()}
        in_run, in_cpu = got["seconds"], got["cpu_seconds"]
    else:
        cmd = [sys.executable, "-m", "mmstar", "eval", "--model", str(model), "--backbone", str(backbone),
               "--data", str(data), "--modes", "v", "--out", str(out), "--batch-size", str(batch), "--limit", str(n),
               "--max-new-tokens", str(max_new), "--device", "cpu", "--no-progress", "--overwrite"]
        if arm == "mmstar --workers 0":
            cmd += ["--workers", "0"]
        wall, cpu, _ = timed(cmd, env)
        (manifest,) = out.glob("*/*/manifest.json")
        stats = json.loads(manifest.read_text())["modes"]["v"]
        in_run, in_cpu = stats["seconds"], stats["cpu_seconds"]
        lines = (manifest.parent / "v.jsonl").read_text().splitlines()
        preds = {r["index"]: r["prediction"] for r in map(json.loads, lines)}
    return {"wall": wall, "cpu": cpu, "in_run": in_run, "in_cpu": in_cpu, "preds": preds,
            "load": os.getloadavg()[0]}


TIMELINE = """
import sys, time
T0 = time.perf_counter()
marks = []
def mark(what): marks.append((round(time.perf_counter() - T0, 3), what))
import mmstar.app.cli as cli
mark("command-line module imported")
import mmstar.evaluators.run.pipeline as P, mmstar.evaluators.run.runner as R
import mmstar.evaluators.backends.hf as H
def wrap(mod, name, label):
    f = getattr(mod, name)
    def g(*a, **k):
        mark(label + " starts"); r = f(*a, **k); mark(label + " ends"); return r
    setattr(mod, name, g)
wrap(P, "load_data", "reading the data")
wrap(H.HFBackend, "__init__", "loading the model (imports transformers)")
first = H.HFBackend.generate_prepared
def gp(self, *a, **k):
    if not any(w == "first batch generates" for _, w in marks): mark("first batch generates")
    return first(self, *a, **k)
H.HFBackend.generate_prepared = gp
sub = H.HFBackend.submit_prepare
def sp(self, *a, **k):
    if not any(w == "first batch handed to a worker" for _, w in marks): mark("first batch handed to a worker")
    return sub(self, *a, **k)
H.HFBackend.submit_prepare = sp
import atexit, contextlib, io, json
def done():  # an exit handler: cli.entry runs it, then leaves without the interpreter's teardown
    mark("command returns")
    print(json.dumps(marks), file=sys.__stdout__, flush=True)
atexit.register(done)
sys.argv = ["mmstar", *sys.argv[1:]]
with contextlib.redirect_stdout(io.StringIO()):
    cli.entry()
"""


def timeline(model: Path, backbone: Path, data: Path, n: int, max_new: int, tmp: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    cmd = [sys.executable, "-c", TIMELINE, "eval", "--model", str(model), "--backbone", str(backbone), "--data",
           str(data), "--modes", "v", "--out", str(tmp / "timeline"), "--batch-size", "16", "--limit", str(n),
           "--max-new-tokens", str(max_new), "--device", "cpu", "--no-progress", "--overwrite"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    marks = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\n[timeline] one mmstar eval, {n} samples, batch 16 (load {os.getloadavg()[0]:.2f}); process start-up to "
          f"the first line of the script is outside these marks; the whole command took {wall:.2f} s")
    for t, what in marks:
        print(f"  {t:7.2f} s  {what}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plain-loop", nargs=6, metavar=("MODEL", "DATA", "BATCH", "N", "MAX_NEW", "OUT"))
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--batch-sizes", default="16,32")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--images", default="native,640x480", help="native (the demo's 64x64 PNGs) and/or WxH (JPEG)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--family", default="llava")
    ap.add_argument("--arms", default="plain;plain, OMP_NUM_THREADS=1;mmstar;mmstar --workers 0",
                    help="a semicolon list of: plain; plain, OMP_NUM_THREADS=1; mmstar; mmstar --workers 0")
    ap.add_argument("--timeline", action="store_true")
    args = ap.parse_args()
    if args.plain_loop:
        model, data, batch, n, max_new, out = args.plain_loop
        plain_loop(model, data, int(batch), int(n), int(max_new), out)
        return
    from mmstar.evaluators.models.tiny import build_tiny_pair

    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    tmp = Path(tempfile.mkdtemp(prefix="mmstar-cpu-"))
    pair = build_tiny_pair(args.family, tmp / "models")
    bench = list(generate(per_axis=max(1, -(-args.samples // 18)), seed=0))
    arms = [a.strip() for a in args.arms.split(";") if a.strip()]
    if "plain" not in arms:
        raise SystemExit("--arms needs plain: the ratios are against it")
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(f"load average before the first arm: {os.getloadavg()[0]:.2f}")
    print(f"tiny {args.family}, mode v, {args.samples} samples, {args.max_new_tokens} new tokens, greedy, CPU, "
          f"{len(os.sched_getaffinity(0))} cores; OMP_NUM_THREADS unset unless an arm says so; "
          f"{args.repeats} alternating repeats, medians")
    summary = {}
    for images in args.images.split(","):
        data = tmp / f"data-{images}.parquet"
        samples = bench if images == "native" else [s.with_(image=jpeg(s.image, images)) for s in bench]
        write_benchmark(samples, data)
        results: dict[tuple[str, int], list[dict]] = {}
        for _rep in range(args.repeats):
            for b in sizes:
                for arm in arms:
                    r = run_arm(arm, pair.vlm, pair.backbone, data, b, args.samples, args.max_new_tokens,
                                tmp / images)
                    results.setdefault((arm, b), []).append(r)
                    print(f"  [{images} repeat {_rep + 1} batch {b}] {arm:<27} in-run {r['in_run']:6.2f} s, whole "
                          f"{r['wall']:6.2f} s, load {r['load']:.2f}", flush=True)
        summary[images] = report(images, results, arms, sizes, args.samples)
    if args.timeline:
        timeline(pair.vlm, pair.backbone, tmp / f"data-{args.images.split(',')[0]}.parquet", args.samples,
                 args.max_new_tokens, tmp)
    print(json.dumps(summary))


def jpeg(image, size: str):
    """The demo image scaled to WxH with some grain, as JPEG (quality 90): an MMStar-sized photo."""
    import io

    import numpy as np
    from PIL import Image

    from mmstar.sample import ImageRef

    width, height = (int(x) for x in size.lower().split("x"))
    pixels = np.asarray(image.pil().convert("RGB").resize((width, height))).astype(np.int16)
    grain = np.random.default_rng(len(image.data())).integers(-20, 20, pixels.shape)
    buf = io.BytesIO()
    Image.fromarray((pixels + grain).clip(0, 255).astype("uint8")).save(buf, "JPEG", quality=90)
    return ImageRef(data=buf.getvalue())


def report(images: str, results: dict, arms: list[str], sizes: list[int], n: int) -> dict:
    med = statistics.median
    loads = [r["load"] for rs in results.values() for r in rs]
    print(f"\n[images {images}] load average (1 min, this benchmark's own processes included) after each arm: "
          f"min {min(loads):.2f}, median {med(loads):.2f}, max {max(loads):.2f}")
    print(f"  {'arm':<27} {'batch':>5} {'in-run s':>8} {'/s':>6} {'in-run CPU':>10} {'CPU s':>6} {'whole s':>8} "
          f"{'CPU':>5} {'fixed s':>7} {'fixed CPU s':>11} {'in-run x':>8} {'whole x':>7} {'load':>5}  "
          "predictions = plain")
    out = {}
    for b in sizes:
        base = results[("plain", b)] if ("plain", b) in results else None
        for arm in arms:
            rs = results[(arm, b)]
            in_run, wall = med(r["in_run"] for r in rs), med(r["wall"] for r in rs)
            in_cpu = med(r["in_cpu"] / r["in_run"] for r in rs)
            cpu = med(r["cpu"] / r["wall"] for r in rs)
            fixed = med(r["wall"] - r["in_run"] for r in rs)
            # CPU seconds: what the machine's load moves least (a busy machine stretches wall time, not work)
            cpu_s = med(r["in_cpu"] for r in rs)
            fixed_cpu = med(r["cpu"] - r["in_cpu"] for r in rs)
            load = med(r["load"] for r in rs)
            x_in = med(p["in_run"] / r["in_run"] for p, r in zip(base, rs)) if base else float("nan")
            x_wall = med(p["wall"] / r["wall"] for p, r in zip(base, rs)) if base else float("nan")
            same = (f"{sum(base[0]['preds'].get(i) == v for i, v in rs[0]['preds'].items())}/{len(rs[0]['preds'])}"
                    if base else "-")
            print(f"  {arm:<27} {b:>5} {in_run:8.2f} {n / in_run:6.1f} {100 * in_cpu:9.0f}% {cpu_s:6.2f} {wall:8.2f} "
                  f"{100 * cpu:4.0f}% {fixed:7.2f} {fixed_cpu:11.2f} {x_in:7.2f}x {x_wall:6.2f}x {load:5.2f}  {same}")
            out[f"{arm} b{b}"] = {"in_run_s": in_run, "in_run_cpu": in_cpu, "in_run_cpu_s": cpu_s, "wall_s": wall,
                                  "cpu": cpu, "fixed_s": fixed, "fixed_cpu_s": fixed_cpu, "in_run_x": x_in,
                                  "wall_x": x_wall, "load": load, "same_as_plain": same}
        if ("mmstar", b) in results and ("mmstar --workers 0", b) in results:
            a, c = results[("mmstar", b)][0]["preds"], results[("mmstar --workers 0", b)][0]["preds"]
            print(f"  mmstar vs mmstar --workers 0 at batch {b}: {sum(a[i] == c.get(i) for i in a)}/{len(a)} identical")
    return out


if __name__ == "__main__":
    main()
