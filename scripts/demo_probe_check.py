"""Measure the bundled demo models with the real pipeline: S_v, S_wv, S_t, MG, ML as ``mmstar demo``
runs them (0 shots, 8 new tokens), and the three leakage probes built with ``mmstar.probes`` and
scored with ``mmstar.metrics.probes`` (every cyclic rotation of the options; a masked wrong option;
another same-capability sample's image). It prints one JSON object and, with ``--json``, writes it.

This reproduces the figures quoted in the README's demo section and pinned in tests/test_demo.py.
Usage: python scripts/demo_probe_check.py [--models data/demo-models] [--out /tmp/probe-check] [--json F]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from mmstar.data import DEMO_MODELS, DEMO_TEST
from mmstar.evaluators.run.pipeline import evaluate
from mmstar.metrics.probes import order_figures, rate_figures, swap_figures

from mmstar.loaders import load_benchmark
from mmstar.probes import max_options, rotations, slot_question, slot_reply_matches, swap_images
from mmstar.sample import Benchmark

RUN = {"shots": 0, "max_new_tokens": 8, "batch_size": 32, "progress": False}  # as app/demo.py runs them


def _outcomes(result, mode: str) -> tuple[dict[int, bool], dict[int, str | None]]:
    recs = result.records
    recs = recs[recs["mode"] == mode]
    hits = {int(i): bool(h) for i, h in zip(recs["index"], recs["hit_official"])}
    choices = {int(i): (c if isinstance(c, str) else None) for i, c in zip(recs["index"], recs["choice"])}
    return hits, choices


def _slot_replies(model_dir: str, prompts: list[str], lm: bool) -> list[str]:
    """Greedy replies of the model without an image (wv) or the LLM (t) to the slot prompts."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    cls = AutoModelForCausalLM if lm else AutoModelForImageTextToText
    model = cls.from_pretrained(model_dir, dtype=torch.float32).eval()
    replies = []
    for i in range(0, len(prompts), 32):
        texts = [tok.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": p}]}],
                                         add_generation_prompt=True, tokenize=False) for p in prompts[i:i + 32]]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id)
        replies += tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return replies


def _brief(fig: dict, keys: tuple[str, ...]) -> dict:
    return {k: (round(fig[k], 2) if isinstance(fig[k], float) else fig[k]) for k in keys if k in fig}


_BACKBONE_ORDER: dict[str, dict] = {}  # the t outcomes of each rotation, per backbone: shared by both models


def check(name: str, vlm: str, base: str, bench: Benchmark, out: Path, seed: int = 0) -> dict:
    label = f"demo-{name}"
    plain = evaluate(vlm, data=bench, out=out, backbone=base, label=label, **RUN)
    fig: dict = {k: round(plain[k], 2) for k in ("S_v", "S_wv", "S_t", "MG", "ML")}
    hits0 = {m: _outcomes(plain, m) for m in ("v", "wv", "t")}

    # order: every cyclic rotation, the answer moved with its option
    moved = {m: {0: hits0[m]} for m in ("v", "wv", "t")}
    known_t = _BACKBONE_ORDER.setdefault(base, {})
    for shift in range(1, max_options(bench)):
        modes = ["v", "wv"] if shift in known_t else ["v", "wv", "t"]
        res = evaluate(vlm, data=rotations(bench, shift), out=out, backbone=base, label=f"{label}-r{shift}",
                       **{**RUN, "modes": modes})
        for m in modes:
            moved[m][shift] = _outcomes(res, m)
        if "t" in modes:
            known_t[shift] = moved["t"][shift]
        moved["t"][shift] = known_t[shift]
    fig["order"] = {}
    for m in ("v", "wv", "t"):
        o = order_figures({s: h for s, (h, _) in moved[m].items()}, {s: c for s, (_, c) in moved[m].items()}, seed)
        o["fires"] = m != "v" and o["sensitivity_low"] > 0
        fig["order"][m] = _brief(o, ("n", "accuracy_original", "accuracy_rotated", "circular", "circular_low",
                                     "circular_high", "sensitivity", "sensitivity_low", "sensitivity_high",
                                     "follows_position", "fires"))

    # slots: a masked wrong option's text, asked without the image (wv) and of the LLM (t)
    slots = [q for q in (slot_question(s, seed) for s in bench) if q is not None]
    fig["slots"] = {}
    for m, model_dir, lm in (("wv", vlm, False), ("t", base, True)):
        replies = _slot_replies(model_dir, [q.prompt for q in slots], lm)
        r = rate_figures({q.index: slot_reply_matches(rep, q.target) for q, rep in zip(slots, replies)}, seed)
        r["fires"] = bool(r["rate_low"] is not None and r["rate_low"] > 0)
        r["example"] = {"target": slots[0].target, "reply": replies[0]} if slots else None
        fig["slots"][m] = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()}

    # swap: another same-capability sample's image
    swapped, _donors = swap_images(bench, seed)
    res = evaluate(vlm, data=swapped, out=out, label=f"{label}-swap", **{**RUN, "modes": ["v"]})
    hits_s, choices_s = _outcomes(res, "v")
    hv, cv = hits0["v"]
    s = swap_figures(hv, hits_s, cv, choices_s, seed)
    chance = 100 * sum(1 / len(x.options) for x in swapped) / len(swapped)
    s.update(chance=chance, excess=s["S_swap"] - chance, excess_low=s["S_swap_low"] - chance,
             excess_high=s["S_swap_high"] - chance)
    s["fires"] = s["excess_low"] > 0
    fig["swap"] = _brief(s, ("n", "S_swap", "S_swap_low", "S_swap_high", "chance", "excess", "excess_low",
                             "excess_high", "image_dependence", "image_dependence_low", "image_dependence_high",
                             "same_answer", "fires"))
    fig["fired"] = [p for p, f in (("order", any(fig["order"][m]["fires"] for m in ("wv", "t"))),
                                   ("slots", any(fig["slots"][m]["fires"] for m in ("wv", "t"))),
                                   ("swap", fig["swap"]["fires"])) if f]
    return fig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=str(DEMO_MODELS))
    ap.add_argument("--data", default=str(DEMO_TEST))
    ap.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--limit", type=int, default=None, help="the first N samples only (a smoke test)")
    args = ap.parse_args()
    bench = load_benchmark(args.data)
    bench = Benchmark("mmstar-demo", list(bench)[:args.limit], bench.origin)
    out = Path(args.out or tempfile.mkdtemp(prefix="probe-check-"))
    models = Path(args.models)
    figures = {name: check(name, str(models / name), str(models / "base"), bench, out / "runs")
               for name in ("clean", "contaminated")}
    text = json.dumps(figures, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
