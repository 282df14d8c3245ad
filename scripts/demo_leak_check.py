"""Measure the trained demo leaks (scripts/train_demo_leaks.py) with the real pipeline, as a user would
run them: ``mmstar.evaluate`` (0 shots, 8 new tokens, as ``mmstar demo``) with the probes, on the demo
test split (360 samples). It prints one JSON object and a markdown table, and with ``--json`` writes it.

* demo-clean (clean LVLM, base LLM) and text-leak (the LVLM that learnt the answers' text): the recall
  probe's figures in wv and t;
* backbone-leak (clean LVLM, the LLM that learnt the test questions): S_t, S_wv - S_t with its paired
  interval, and the recall probe;
* half-leak (the shipped leak recipe on half the samples): every probe, and each per-sample flag's
  precision and recall against ``half-leak/leaked.json``; ML's flag is "right without the image,
  backbone wrong" (wv hit, t miss).

Usage: python scripts/demo_leak_check.py --out DIR [--models data/demo-models] [--json F]
       [--only clean,text-leak,backbone-leak,half-leak] [--limit N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmstar.data import DEMO_MODELS, DEMO_TEST
from mmstar.evaluators.run.pipeline import evaluate

from mmstar.intervals import bootstrap_paired_difference
from mmstar.probes import probe_table, sample_flags
from mmstar.runs import open_run
from mmstar.scoring import hit_of

RUN = {"shots": 0, "max_new_tokens": 8, "batch_size": 32, "progress": False}  # as app/demo.py runs them
ALL_PROBES = ["order", "slots", "swap", "recall"]
# name -> (LVLM folder, LLM folder, probes)
MODELS = {
    "clean": ("clean", "base", ALL_PROBES),
    "text-leak": ("text-leak", "base", ["recall"]),
    "backbone-leak": ("clean", "backbone-leak", ["recall"]),
    "half-leak": ("half-leak", "base", ALL_PROBES),
}
RECALL_KEYS = ("n", "rate", "rate_low", "rate_high", "donor_rate", "with_options", "chance", "over_donor",
               "over_donor_low", "over_options", "over_options_low", "p_donor", "p_options", "p", "fires")


def _hits(run, mode: str) -> dict[int, bool]:
    return {r.index: bool(hit_of(r, run.assessor(r), "official")) for r in run.records.get(mode, []) if not r.error}


def _precision_recall(flagged: set[int], leaked: set[int], universe: set[int]) -> dict:
    flagged &= universe
    hit = len(flagged & leaked)
    unseen = universe - leaked
    return {"flagged": len(flagged), "precision": round(100 * hit / len(flagged), 1) if flagged else None,
            "recall": round(100 * hit / len(leaked & universe), 1) if leaked & universe else None,
            "flagged_leaked_pct": round(100 * hit / max(1, len(leaked & universe)), 1),
            "flagged_unseen_pct": round(100 * len(flagged & unseen) / max(1, len(unseen)), 1)}


def check(name: str, models: Path, out: Path, limit: int | None) -> dict:
    vlm, llm, probes = MODELS[name]
    result = evaluate(str(models / vlm), data=str(DEMO_TEST), out=out, backbone=str(models / llm), label=f"demo-{name}",
                      probes=probes, limit=limit, **RUN)
    fig: dict = {k: round(result.scores[k], 2) for k in ("S_v", "S_wv", "S_t", "MG", "ML")}
    run = open_run(result.run_dir)
    gap = bootstrap_paired_difference(_hits(run, "wv"), _hits(run, "t"))
    fig["S_wv_minus_S_t"] = [round(gap.estimate, 2), round(gap.low, 2), round(gap.high, 2)]
    block = result.scores["probes"]
    fig["fired"] = block["fired"]
    fig["recall"] = {m: {k: (round(v, 4) if isinstance(v, float) and not k.startswith("p") else v)
                         for k, v in f.items() if k in RECALL_KEYS}
                     for m, f in (block.get("recall") or {}).items()}
    for probe in ("order", "slots", "swap", "backbone"):
        for mode, f in (block.get(probe) or {}).items():
            fig.setdefault("fires_by_mode", {})[f"{probe}-{mode}"] = f["fires"]
            fig.setdefault("p_adjusted", {})[f"{probe}-{mode}"] = f.get("p_adjusted")
    print(f"\n# demo-{name}\n{probe_table(block)}", flush=True)
    if name == "half-leak":
        truth = json.loads((models / "half-leak" / "leaked.json").read_text())
        leaked = set(truth["leaked"])
        universe = {s for s in _hits(run, "v")}
        flags = sample_flags(run)
        wv, t = _hits(run, "wv"), _hits(run, "t")
        names = sorted({n for f in flags.values() for n in f})  # every per-sample flag the probes set
        named = {n: {i for i, f in flags.items() if f.get(n)} for n in names}
        named["ml_right_wv_wrong_t"] = {i for i in wv if wv[i] and not t.get(i, False)}
        fig["flags"] = {n: _precision_recall(s, leaked, universe) for n, s in named.items()}
    return fig


def table(results: dict) -> str:
    lines = ["| model | S_v | S_wv | S_t | S_wv - S_t [95%] | recall wv: right text first / another stem / with "
             "options, p | recall t: same | fired |", "|---|---|---|---|---|---|---|---|"]
    for name, fig in results.items():
        cells = []
        for mode in ("wv", "t"):
            r = fig["recall"].get(mode)
            cells.append("-" if not r else f"{r['rate']:.1f} / {r['donor_rate']:.1f} / {r['with_options']:.1f}, "
                                           f"p {r['p']:.1e}{' **fires**' if r['fires'] else ''}")
        gap = fig["S_wv_minus_S_t"]
        lines.append(f"| demo-{name} | {fig['S_v']:.1f} | {fig['S_wv']:.1f} | {fig['S_t']:.1f} | {gap[0]:.1f} "
                     f"[{gap[1]:.1f}, {gap[2]:.1f}] | {cells[0]} | {cells[1]} | {', '.join(fig['fired']) or 'none'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=str(DEMO_MODELS))
    ap.add_argument("--out", required=True, help="a folder for the run directories")
    ap.add_argument("--json", default=None)
    ap.add_argument("--only", default=",".join(MODELS))
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    results = {n: check(n, Path(args.models), Path(args.out), args.limit) for n in args.only.split(",")}
    print(json.dumps(results, indent=1))
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
