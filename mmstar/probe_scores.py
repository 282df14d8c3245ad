"""The ``probes`` block of ``scores.json`` and the per-sample probe flags, from a run's records.

Like every score, these are derived from the prediction text (never from the hits or the
``reproduced`` flag a writer stored): an order or swap line is re-judged by the run's matcher, a
slot line's reply is matched against its hidden text again. The rules for when a probe *fires*
(its evidence of leakage has an interval clear of zero) are the contract's
(docs/architecture.md, "Leakage probes"):

- order fires when the option-order sensitivity's lower bound is above 0 in wv or t; v is reported
  but never fires (a vision model may be mildly order-sensitive for honest reasons);
- slots fires when the reproduction rate's lower bound is above 0 in wv or t;
- swap fires when S_swap's excess over chance has its lower bound above 0 (with another sample's
  image, the answer came from the text or from memory).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from .probe_figures import order_figures, rate_figures, swap_figures
from .probe_recall import recall_mode
from .probe_variants import PROBE_MODES, PROBE_PROMPT_VERSION, PROBES, probe_file, slot_reply_matches
from .scoring import hit_of

if TYPE_CHECKING:
    from .records import PredictionRecord

# a read run (mmstar.runs.Run: records, probe_records, manifest, assessor); not imported, so that
# runs can import this module to put the probes block into scores.json
Run = Any

ORDER_FIRES_IN = ("wv", "t")
SLOTS_FIRE_IN = ("wv", "t")


def _judged(run: Run, records: list[PredictionRecord], matcher: str) -> tuple[dict, dict]:
    """(hit, choice) per record: the matcher's verdict and the robust extractor's letter."""
    hits, choices = {}, {}
    for rec in records:
        a = run.assessor(rec)
        hits[id(rec)] = hit_of(rec, a, matcher)
        choices[id(rec)] = a.extraction.choice
    return hits, choices


def order_mode(run: Run, mode: str, matcher: str = "official", seed: int = 0) -> dict[str, Any] | None:
    """The order figures of one mode (with the per-sample ``flags``), or None when it did not run.
    Shift 0 is the plain mode's own record of the sample."""
    records = run.probe_records.get(probe_file("order", mode))
    plain = run.records.get(mode)
    if not records or not plain:
        return None
    hits: dict[int, dict[int, bool]] = defaultdict(dict)
    choices: dict[int, dict[int, str | None]] = defaultdict(dict)
    probed = {r.index for r in records}
    n_options = {r.index: len(r.options or {}) for r in records}
    for recs, shift_of in ((plain, lambda r: 0), (records, lambda r: int(r.extra.get("shift", 0)))):
        h, c = _judged(run, [r for r in recs if r.index in probed], matcher)
        for r in recs:
            if r.index in probed and not r.error:  # a failed request is no answer in that order
                hits[shift_of(r)][r.index] = h[id(r)]
                choices[shift_of(r)][r.index] = c[id(r)]
    try:
        fig = order_figures(hits, choices, seed, n_options)
    except ValueError:
        return None
    fig["fires"] = mode in ORDER_FIRES_IN and fig["sensitivity_low"] > 0
    return fig


def slots_mode(run: Run, mode: str, seed: int = 0) -> dict[str, Any] | None:
    records = run.probe_records.get(probe_file("slots", mode))
    if records is None:
        return None
    outcomes = {str(r.extra.get("key")): _reproduced(r) for r in records if not r.error}
    fig = rate_figures(outcomes, seed)
    flags: dict[int, bool] = {}
    for r in records:
        if not r.error:
            flags[r.index] = flags.get(r.index, False) or _reproduced(r)
    by_variant = {}
    for variant in sorted({str(r.extra.get("variant")) for r in records}):
        picked = {str(r.extra.get("key")): _reproduced(r) for r in records
                  if not r.error and str(r.extra.get("variant")) == variant}
        by_variant[variant] = {"n": len(picked), "reproduced": sum(picked.values())}
    fig.update(reproduced=sum(flags.values()), by_variant=by_variant, flags=flags,
               fires=mode in SLOTS_FIRE_IN and fig["rate_low"] is not None and fig["rate_low"] > 0)
    return fig


def _reproduced(rec: PredictionRecord) -> bool:
    return not rec.error and slot_reply_matches(rec.prediction, str(rec.extra.get("target") or ""))


def swap_mode(run: Run, matcher: str = "official", seed: int = 0) -> dict[str, Any] | None:
    records = run.probe_records.get(probe_file("swap", "v"))
    plain = run.records.get("v")
    if not records or not plain:
        return None
    probed = {r.index for r in records}
    sides = []
    for recs in (plain, records):
        kept = [r for r in recs if r.index in probed and not r.error]
        h, c = _judged(run, kept, matcher)
        sides.append(({r.index: h[id(r)] for r in kept}, {r.index: c[id(r)] for r in kept}))
    (hv, cv), (hs, cs) = sides
    try:
        fig = swap_figures(hv, hs, cv, cs, seed, {r.index: len(r.options or {}) for r in records})
    except ValueError:
        return None
    fig["fires"] = fig["excess_low"] > 0
    return fig


def probe_figure(run: Run, probe: str, mode: str, matcher: str = "official", seed: int = 0) -> dict[str, Any] | None:
    """One probe's figure (with its per-sample ``flags``) in one mode; None where it did not run."""
    if probe == "order":
        return order_mode(run, mode, matcher, seed)
    if probe == "slots":
        return slots_mode(run, mode, seed)
    if probe == "swap":
        return swap_mode(run, matcher, seed)
    return recall_mode(run, mode, run.probe_records.get(probe_file(probe, mode)), matcher, seed)


def _figures(run: Run, matcher: str, seed: int) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for probe in PROBES:
        for mode in PROBE_MODES[probe]:
            if probe_file(probe, mode) not in run.probe_records:
                continue
            fig = probe_figure(run, probe, mode, matcher, seed)
            if fig is not None:
                out.setdefault(probe, {})[mode] = fig
    return out


def probe_block(run: Run, matcher: str = "official", seed: int = 0) -> dict[str, Any]:
    """``scores.json``'s ``probes``: the version and variant seed from the manifest, each probe's
    figures per mode (the per-sample flags left to ``sample_flags``) and the probes that fire."""
    recorded = run.manifest.extra.get("probes") or {}
    block: dict[str, Any] = {"version": recorded.get("version", PROBE_PROMPT_VERSION),
                             "seed": recorded.get("seed", 0)}
    figures = _figures(run, matcher, seed)
    for probe, per_mode in figures.items():
        block[probe] = {mode: {k: v for k, v in fig.items() if k != "flags"} for mode, fig in per_mode.items()}
    block["fired"] = [p for p in PROBES if any(f["fires"] for f in figures.get(p, {}).values())]
    return block


def sample_flags(run: Run, matcher: str = "official") -> dict[int, dict[str, bool]]:
    """index -> the flags of the probes that ran: ``follows_position`` (order, in any mode),
    ``reproduces_masked`` (slots, any mode or variant), ``same_answer_any_image`` (swap),
    ``recalls_answer_text`` (recall: the right text ranked first without options, wv or t)."""
    names = {"order": "follows_position", "slots": "reproduces_masked", "swap": "same_answer_any_image",
             "recall": "recalls_answer_text"}
    out: dict[int, dict[str, bool]] = defaultdict(dict)
    for probe, per_mode in _figures(run, matcher, 0).items():
        for fig in per_mode.values():
            for index, flag in fig["flags"].items():
                out[index][names[probe]] = out[index].get(names[probe], False) or bool(flag)
    return dict(out)


def probe_table(block: dict[str, Any]) -> str:
    """The console table of a ``probes`` block: one line per probe and mode, its figure with the
    interval, the flagged samples, and whether it fires."""
    def iv(fig: dict[str, Any], key: str) -> str:
        value = fig.get(key)
        if value is None:
            return "-"
        return f"{value:6.2f} [{fig[f'{key}_low']:6.2f}, {fig[f'{key}_high']:6.2f}]"

    lines = [f"leakage probes ({block.get('version')}, seed {block.get('seed')})"]
    for mode, fig in (block.get("order") or {}).items():
        lines.append(f"  order  {mode:<2}  n {fig['n']:<5} CircularEval {iv(fig, 'circular')}  sensitivity "
                     f"{iv(fig, 'sensitivity')}  follow position {fig['follows_position']}"
                     + ("  FIRES" if fig["fires"] else ""))
    for mode, fig in (block.get("slots") or {}).items():
        lines.append(f"  slots  {mode:<2}  n {fig['n']:<5} reproduced {iv(fig, 'rate')}  samples {fig['reproduced']}"
                     + ("  FIRES" if fig["fires"] else ""))
    for mode, fig in (block.get("swap") or {}).items():
        lines.append(f"  swap   {mode:<2}  n {fig['n']:<5} S_swap {iv(fig, 'S_swap')}  over chance "
                     f"{iv(fig, 'excess')}  image dependence {iv(fig, 'image_dependence')}  same answer "
                     f"{fig['same_answer']}" + ("  FIRES" if fig["fires"] else ""))
    for mode, fig in (block.get("recall") or {}).items():
        lines.append(f"  recall {mode:<2}  n {fig['n']:<5} right text first {iv(fig, 'rate')}  stem of another "
                     f"{iv(fig, 'donor_rate')}  with options {iv(fig, 'with_options')}  p {fig['p']:.2g}"
                     + ("  FIRES" if fig["fires"] else ""))
    lines.append("  fired: " + (", ".join(block.get("fired") or []) or "none"))
    return "\n".join(lines)
