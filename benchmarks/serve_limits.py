"""What ``mmstar serve``'s request limits cost: the same requests with the checks on and off, in one run.

The Host / content-type / body / JSON checks (serve_guard.py) are per-request string work; the prompt
count against the context (the batcher's ``_generate``) reads each prompt's length from the batch's own
encoding (``prepare``, then ``generate_prepared``), so it should cost nothing. (A first version encoded
each prompt once more: 1.91x the wall time on 1024x768 images.) Baseline: the same server with its
batcher's context table emptied, which turns the count off. Tiny LLaVA on CPU, concurrent clients over
real HTTP; rounds alternate on/off so machine load hits both alike.

Not a test: run by hand, it prints the figures of this run and their ratios.
    python benchmarks/serve_limits.py [--requests 64] [--clients 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]


def png(size: tuple[int, int], seed: int) -> bytes:
    from PIL import Image

    img = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, 128))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def bodies(kind: str, n: int) -> list[dict]:
    out = []
    for i in range(n):
        text = f"Question: what colour is the picture? {i}\nOptions: A: red, B: green, C: blue, D: grey"
        if kind == "text":
            out.append({"model": "lm", "messages": [{"role": "user", "content": text}], "max_tokens": 4})
            continue
        size = (64, 64) if kind == "image 64x64" else (1024, 768)
        url = "data:image/png;base64," + base64.b64encode(png(size, i)).decode()
        out.append({"model": "vlm", "max_tokens": 4, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}]}]})
    return out


def timed_burst(httpx, url: str, requests: list[dict], clients: int) -> float:
    queue = list(requests)
    lock = threading.Lock()
    failures = []

    def client() -> None:
        with httpx.Client(timeout=120) as c:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                resp = c.post(f"{url}/v1/chat/completions", json=body)
                if resp.status_code != 200:
                    failures.append(resp.text[:200])

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    import httpx
    import torch
    from mmstar.evaluators.backends.base import GenerationConfig
    from mmstar.evaluators.backends.hf import HFBackend
    from mmstar.evaluators.backends.serve import make_server, serve_in_thread
    from mmstar.evaluators.models.tiny import build_tiny_pair

    torch.set_num_threads(1)
    pair = build_tiny_pair("llava", Path(tempfile.mkdtemp()))
    gen = GenerationConfig(max_new_tokens=4)
    models = {"vlm": HFBackend(str(pair.vlm), "vlm", gen, device="cpu"),
              "lm": HFBackend(str(pair.backbone), "llm", gen, device="cpu")}
    srv = make_server(models, max_batch=8, batch_wait_s=0.005)
    stop = serve_in_thread(srv)
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    contexts = dict(srv.batcher.contexts)
    print(f"tiny LLaVA behind mmstar serve (CPU, 1 torch thread), {args.requests} requests x {args.clients} "
          f"clients, max_tokens 4, {args.rounds} alternating rounds; context {contexts}")
    try:
        for kind in ("text", "image 64x64", "image 1024x768"):
            reqs = bodies(kind, args.requests)
            timed_burst(httpx, url, reqs[:8], args.clients)  # warm-up
            on, off = [], []
            for _ in range(args.rounds):
                srv.batcher.contexts = {}
                off.append(timed_burst(httpx, url, reqs, args.clients))
                srv.batcher.contexts = dict(contexts)
                on.append(timed_burst(httpx, url, reqs, args.clients))
            m_on, m_off = statistics.median(on), statistics.median(off)
            print(f"  {kind:<15} checks off {m_off:6.2f} s ({args.requests / m_off:6.1f} req/s); prompt count on "
                  f"{m_on:6.2f} s ({args.requests / m_on:6.1f} req/s); on / off {m_on / m_off:5.2f}x")
    finally:
        stop()


if __name__ == "__main__":
    main()
