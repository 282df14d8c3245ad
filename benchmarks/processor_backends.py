"""Fast (torchvision-backed) against slow (PIL) image processors, per family: the pixel tensors
and the predictions they lead to, on the demo models and every tiny family.

For each model: the same mode-v requests (demo samples, the official prompt) are encoded by the
processor transformers picks by default ("auto": torchvision where installed, as every run since
transformers 5 has used) and by ``image_backend="pil"``; the script prints the largest absolute
difference of every floating tensor the two encodings share, whether the token ids are equal, and
how many greedy predictions agree. Not a test: run by hand.

    python benchmarks/processor_backends.py [--families all|llava,qwen2-vl] [--samples 16] [--image-size 640x480]
                                            [--json out.json]

The demo images are 64x64, which several tiny processors take without resizing; ``--image-size``
re-encodes them (PNG, lossless) at a size every processor must resize, as real MMStar images are.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]


def compare(model_dir: str, requests: list, max_new: int) -> dict:
    """Encode and generate ``requests`` with both image backends of one checkpoint."""
    from mmstar.evaluators.backends.base import GenerationConfig
    from mmstar.evaluators.backends.hf import HFBackend

    gen = GenerationConfig(max_new_tokens=max_new)
    out: dict = {}
    runs = {}
    for choice in ("auto", "pil"):
        try:
            be = HFBackend(model_dir, "vlm", gen, device="cpu", workers=0, image_backend=choice)
        except Exception as exc:  # a family with one implementation only
            out[f"{choice}_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            continue
        prepared = [be.prepare(requests[i:i + 4]) for i in range(0, len(requests), 4)]
        texts = [r.text for p in prepared for r in be.generate_prepared(p)]
        runs[choice] = (prepared, texts)
        out[f"{choice}_processor"] = type(be.processor.image_processor).__name__
        out[f"{choice}_backend"] = be.image_backend
        be.close()
    if len(runs) < 2:
        return out
    (fast, fast_texts), (slow, slow_texts) = runs["auto"], runs["pil"]
    diff, ids_equal, shapes_equal = 0.0, True, True
    for a, b in zip(fast, slow):
        for key in a.encoded:
            x, y = a.encoded[key], b.encoded.get(key)
            if y is None or not hasattr(x, "shape"):
                continue
            if tuple(x.shape) != tuple(y.shape):
                shapes_equal = False
                continue
            if x.is_floating_point():
                diff = max(diff, float((x.float() - y.float()).abs().max()))
            elif not bool((x == y).all()):
                ids_equal = False
    out.update(max_abs_diff=diff, int_tensors_equal=ids_equal, shapes_equal=shapes_equal,
               same_predictions=sum(a == b for a, b in zip(fast_texts, slow_texts)), n=len(fast_texts))
    return out


def resized(image, size: str):
    """The image scaled to ``size`` (WxH), as lossless PNG bytes: every processor then resizes it."""
    import io

    from mmstar.sample import ImageRef

    width, height = (int(x) for x in size.lower().split("x"))
    buf = io.BytesIO()
    image.pil().resize((width, height)).save(buf, "PNG")
    return ImageRef(data=buf.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default="all")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--image-size", default="", help="WxH: re-encode the demo images at this size (PNG)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from mmstar.evaluators.backends.base import Request
    from mmstar.evaluators.models.tiny import FAMILIES, SPECS, build_tiny_pair

    from mmstar.demo_data import generate
    from mmstar.prompts import PromptConfig, build_messages

    samples = list(generate(per_axis=max(1, args.samples // 18 + 1), seed=0))[:args.samples]
    if args.image_size:
        samples = [s.with_(image=resized(s.image, args.image_size)) for s in samples]
    requests = [Request(build_messages(s, "v", PromptConfig()), key=s.index) for s in samples]
    families = FAMILIES if args.families == "all" else tuple(args.families.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="mmstar-procs-"))
    models = [(f"demo-{n}", str(REPO / "data" / "demo-models" / n)) for n in ("clean", "contaminated")]
    results = {}
    print(f"{'model':<22} {'fast (auto)':<34} {'slow (pil)':<30} {'max |diff|':>10}  ids  predictions")
    for label, path in [*models, *[(f, None) for f in families]]:
        start = time.perf_counter()
        try:
            if path is None:
                if SPECS[label].known_failure:
                    results[label] = {"skipped": SPECS[label].known_failure}
                    print(f"{label:<22} skipped: known upstream failure")
                    continue
                path = str(build_tiny_pair(label, tmp / label).vlm)
            row = compare(path, requests, args.max_new_tokens)
        except Exception as exc:
            row = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"}
        row["seconds"] = round(time.perf_counter() - start, 1)
        results[label] = row
        if "max_abs_diff" in row:
            print(f"{label:<22} {row['auto_processor'] + ' (' + str(row['auto_backend']) + ')':<34} "
                  f"{row['pil_processor'] + ' (' + str(row['pil_backend']) + ')':<30} {row['max_abs_diff']:10.2e}  "
                  f"{'=' if row['int_tensors_equal'] and row['shapes_equal'] else 'DIFF'}  "
                  f"{row['same_predictions']}/{row['n']}")
        else:
            print(f"{label:<22} {json.dumps({k: v for k, v in row.items() if k != 'seconds'})[:200]}")
        sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
