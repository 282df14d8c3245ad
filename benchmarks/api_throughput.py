"""``--backend openai`` against a server whose latency has a heavy tail: the old per-batch path and
the continuous pool, side by side in one process, against the bound ``sum(latencies) / concurrency``.

The server is ``benchmarks/api_standin.py`` in its own process: 95% of requests take 30-60 ms, 5% take
1.5 s (``--slow-share``, ``--slow-ms``), always the same requests, so both paths are served the same
latencies. The run is the demo benchmark (360 samples) in modes v and wv: 720 requests.

- before: a faithful copy of the backend as it was (below, :class:`BatchedOpenAIBackend`): each batch
  sent with ``asyncio.gather`` on a new client, the next batch only after the slowest request of this
  one, mode after mode (the run loop's batched path). At the default ``--batch-size 8`` and at a batch
  as large as the concurrency.
- after: ``--backend openai`` as it is: one continuous pool for both modes, one keep-alive client.

Sweep section: two models served by the stand-in (``standin-vlm-a``, ``standin-vlm-b``) x the demo, v and
wv (1,440 requests). Before: the models one after another, each run with its own pool (the sweep's
per-model path, ``sweep._run_model``). After: ``run_sweep``, both runs through one shared window.

Not a test: run by hand, it prints the figures measured in this run and their ratios.
    python benchmarks/api_throughput.py [--concurrency 16] [--slow-share 0.05] [--slow-ms 1500]
        [--only run|sweep] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
TARGET = 1.5  # the target: in-run time at most 1.5x the bound


def _standin() -> Any:
    spec = importlib.util.spec_from_file_location("api_standin", Path(__file__).with_name("api_standin.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


class BatchedOpenAIBackend:
    """The openai backend before the pool (kept verbatim in substance): one ``asyncio.run`` per batch,
    a new ``httpx.AsyncClient`` per batch, ``gather`` over the batch under a semaphore."""

    RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})

    def __init__(self, model: str, kind: str, gen: Any, *, base_url: str, concurrency: int = 8,
                 max_retries: int = 6, timeout: float = 120.0, backoff: float = 1.0) -> None:
        from mmstar.evaluators.backends.openai_api import to_openai_messages

        self.to_openai_messages = to_openai_messages
        self.model, self.kind, self.base_url, self.gen = model, kind, base_url.rstrip("/"), gen
        self.concurrency, self.max_retries, self.timeout, self.backoff = concurrency, max_retries, timeout, backoff

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai-batched", "model": self.model, "concurrency": self.concurrency}

    def close(self) -> None:
        pass

    def generate(self, requests: Sequence[Any]) -> list[Any]:
        return asyncio.run(self._all(requests))

    async def _all(self, requests: Sequence[Any]) -> list[Any]:
        sem = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout, headers={"Content-Type": "application/json"}) as client:
            return list(await asyncio.gather(*(self._one(client, sem, r) for r in requests)))

    async def _one(self, client: Any, sem: asyncio.Semaphore, req: Any) -> Any:
        from mmstar.evaluators.backends.base import Response

        payload = {"model": self.model, "messages": self.to_openai_messages(req.messages),
                   "max_tokens": self.gen.max_new_tokens, "temperature": self.gen.temperature}
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            async with sem:
                try:
                    resp = await client.post(f"{self.base_url}/chat/completions", json=payload)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    last, retry_after = f"{type(exc).__name__}: {exc}"[:200], None
                else:
                    if resp.status_code == 200:
                        body = resp.json()
                        usage = body.get("usage") or {}
                        return Response(text=(body["choices"][0]["message"].get("content") or "").strip(),
                                        prompt_tokens=int(usage.get("prompt_tokens") or 0),
                                        completion_tokens=int(usage.get("completion_tokens") or 0))
                    last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                    if resp.status_code not in self.RETRY_STATUS:
                        break
                    retry_after = resp.headers.get("retry-after")
            if attempt < self.max_retries:
                delay = float(retry_after) if retry_after else self.backoff * 2 ** attempt * (0.5 + random.random() / 2)
                await asyncio.sleep(min(60.0, delay))
        return Response(error=f"request failed after {attempt + 1} attempt(s): {last}")


def run(label: str, url: str, bench: Any, out: Path, concurrency: int, batch: int | None) -> dict[str, Any]:
    """One run of v + wv; ``batch`` None: the pool, else the old path with that batch size."""
    from mmstar.evaluators.backends import registry
    from mmstar.evaluators.backends.base import GenerationConfig
    from mmstar.evaluators.run.runner import EvalConfig, run_eval

    gen = GenerationConfig(max_new_tokens=32)
    name = "openai" if batch is None else "openai-batched"
    config = EvalConfig(model="standin-vlm", backbone=None, modes=("v", "wv"), backend=name, gen=gen,
                        batch_size=batch or 8, progress=False)
    if batch is None:
        factory = registry.factory("openai", gen, {"base_url": url, "concurrency": concurrency})
    else:
        def factory(model_id: str, kind: str) -> Any:
            return BatchedOpenAIBackend(model_id, kind, gen, base_url=url, concurrency=concurrency)
    httpx.post(url.replace("/v1", "/reset"))
    start, cpu = time.perf_counter(), time.process_time()
    run_dir, _scores = run_eval(bench, config, out / label.replace(" ", "-"), factory)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    served = httpx.get(url.replace("/v1", "/stats")).json()
    preds = {(m, r["index"]): r["prediction"] for m in ("v", "wv")
             for r in map(json.loads, (run_dir / f"{m}.jsonl").read_text().splitlines())}
    errors = sum(1 for m in ("v", "wv") for r in map(json.loads, (run_dir / f"{m}.jsonl").read_text().splitlines())
                 if r["error"])
    bound = served["latency_sum"] / concurrency
    return {"label": label, "wall": wall, "cpu": cpu, "bound": bound, "served": served["served"],
            "peak": served["peak_in_flight"], "connections": served["connections"], "preds": preds, "errors": errors}


SWEEP_MODELS = ("standin-vlm-a", "standin-vlm-b")


def sweep(label: str, url: str, bench: Any, out: Path, concurrency: int, shared: bool) -> dict[str, Any]:
    """Two served models x the benchmark, v + wv: one model after another (``shared`` False), or the
    sweep's shared window (True)."""
    from mmstar.evaluators.backends import registry
    from mmstar.evaluators.backends.base import GenerationConfig
    from mmstar.evaluators.models.registry import resolve_model
    from mmstar.evaluators.run import sweep as sw
    from mmstar.evaluators.run.runner import EvalConfig

    gen = GenerationConfig(max_new_tokens=32)
    entries = [resolve_model(m, None, any_name=True) for m in SWEEP_MODELS]

    def config(entry: Any) -> EvalConfig:
        return EvalConfig(model=entry.lvlm, backbone=None, modes=("v", "wv"), backend="openai", gen=gen,
                          model_label=entry.alias, progress=False)

    def factory(entry: Any) -> Any:
        return registry.factory("openai", gen, {"base_url": url, "concurrency": concurrency})

    root = out / label.replace(" ", "-")
    httpx.post(url.replace("/v1", "/reset"))
    start, cpu = time.perf_counter(), time.process_time()
    if shared:
        results = sw.run_sweep(entries, [bench], root, config, factory, echo=lambda _line: None)
    else:
        results = [r for e in entries for r in sw._run_model(e, [bench], root, config(e), factory(e), lambda _l: None)]
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    served = httpx.get(url.replace("/v1", "/stats")).json()
    preds: dict[tuple[str, str, int], str] = {}
    errors = 0
    for r in results:
        if r.run_dir is None:
            raise SystemExit(f"{r.model} failed: {r.error}")
        for m in ("v", "wv"):
            for rec in map(json.loads, (r.run_dir / f"{m}.jsonl").read_text().splitlines()):
                preds[(r.model, m, rec["index"])] = rec["prediction"]
                errors += bool(rec["error"])
    return {"label": label, "wall": wall, "cpu": cpu, "bound": served["latency_sum"] / concurrency,
            "served": served["served"], "peak": served["peak_in_flight"], "mixed": served["peak_in_flight_mixed"],
            "connections": served["connections"], "preds": preds, "errors": errors}


def sweep_repeats(url: str, bench: Any, out: Path, c: int, repeats: int) -> list[dict[str, Any]]:
    """Both sweep paths ``repeats`` times, in alternating order (a loaded machine drifts: neither path
    always goes first)."""
    sweep("warm-up", url, bench.limit(8), out / "warm-up", c, shared=True)  # first-use imports, untimed
    rows = []
    for i in range(repeats):
        for shared in (False, True) if i % 2 == 0 else (True, False):
            label = "after, shared window" if shared else "before, model by model"
            rows.append({**sweep(label, url, bench, out / str(i), c, shared), "repeat": i + 1})
    return rows


def print_sweep(rows: list[dict[str, Any]], n: int, c: int) -> None:
    print(f"sweep: {len(SWEEP_MODELS)} models x {n} samples x modes v, wv on the same stand-in, concurrency {c}")
    print(f"  {'path':<22} {'run':>3} {'requests':>8} {'in-run s':>9} {'bound s':>8} {'x bound':>8} {'peak':>5} "
          f"{'peak 2 models':>13} {'conns':>6} {'client CPU s':>12}")
    for r in rows:
        print(f"  {r['label']:<22} {r['repeat']:>3} {r['served']:>8} {r['wall']:>9.2f} {r['bound']:>8.2f} "
              f"{r['wall'] / r['bound']:>8.2f} {r['peak']:>5} {r['mixed']:>13} {r['connections']:>6} {r['cpu']:>12.2f}")
    before = [r for r in rows if r["label"] == "before, model by model"]
    after = [r for r in rows if r["label"] == "after, shared window"]
    same = sum(before[0]["preds"][k] == after[0]["preds"].get(k) for k in before[0]["preds"])
    ratio = statistics.median(b["wall"] / a["wall"] for b, a in zip(before, after))
    print(f"  median x bound: model by model {statistics.median(r['wall'] / r['bound'] for r in before):.2f}, "
          f"shared window {statistics.median(r['wall'] / r['bound'] for r in after):.2f}; shared window vs one "
          f"model after another: {ratio:.2f}x faster (median of {len(before)} pairs); "
          f"predictions identical {same}/{len(before[0]['preds'])}; errors {sum(r['errors'] for r in rows)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--slow-share", type=float, default=0.05)
    p.add_argument("--slow-ms", type=float, default=1500)
    p.add_argument("--data", default=str(REPO / "data" / "demo" / "test.parquet"))
    p.add_argument("--only", choices=("run", "sweep"), help="one section (default: both)")
    p.add_argument("--repeats", type=int, default=3, help="sweep section: runs of each path, alternating")
    args = p.parse_args()
    from mmstar.evaluators.backends import registry

    from mmstar.loaders import load_benchmark

    registry.BACKENDS.setdefault("openai-batched", registry.BackendSpec(
        "openai-batched", f"{__name__}:BatchedOpenAIBackend", "the openai backend before the pool", (),
        extra="openai", requires="httpx", local=False, dtype_rule="server"))
    bench = load_benchmark(args.data)
    c = args.concurrency
    proc, url = _standin().start("--slow-share", str(args.slow_share), "--slow-ms", str(args.slow_ms))
    rows: list[dict[str, Any]] = []
    sweep_rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if args.only != "sweep":
                rows = [run("before, batch 8", url, bench, Path(tmp), c, 8),
                        run(f"before, batch {c}", url, bench, Path(tmp), c, c),
                        run("after, pool", url, bench, Path(tmp), c, None)]
            if args.only != "run":
                sweep_rows = sweep_repeats(url, bench, Path(tmp) / "sweep", c, args.repeats)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    if rows:
        print_runs(rows, args, len(bench), c)
    if sweep_rows:
        print_sweep(sweep_rows, len(bench), c)


def print_runs(rows: list[dict[str, Any]], args: argparse.Namespace, n: int, c: int) -> None:
    print(f"--backend openai, {n} samples x modes v, wv against a heavy-tailed stand-in "
          f"({100 * (1 - args.slow_share):.0f}% 30-60 ms, {100 * args.slow_share:.0f}% {args.slow_ms:.0f} ms), "
          f"concurrency {c}")
    print(f"  {'path':<18} {'requests':>8} {'in-run s':>9} {'bound s':>8} {'x bound':>8} {'peak':>5} "
          f"{'conns':>6} {'client CPU s':>12}")
    for r in rows:
        print(f"  {r['label']:<18} {r['served']:>8} {r['wall']:>9.2f} {r['bound']:>8.2f} "
              f"{r['wall'] / r['bound']:>8.2f} {r['peak']:>5} {r['connections']:>6} {r['cpu']:>12.2f}")
    new = rows[-1]
    for old in rows[:-1]:
        same = sum(old["preds"][k] == new["preds"].get(k) for k in old["preds"])
        print(f"  pool vs {old['label']}: {old['wall'] / new['wall']:.2f}x faster; predictions identical "
              f"{same}/{len(old['preds'])}")
    ratio = new["wall"] / new["bound"]
    print(f"  target: pool within {TARGET}x the bound: {'met' if ratio <= TARGET else 'NOT met'} ({ratio:.2f}x); "
          f"errors {sum(r['errors'] for r in rows)}")


if __name__ == "__main__":
    main()
