"""The ``probes`` block of ``scores.json`` and the per-sample probe flags, from a run's records.

Like every score, these are derived from the prediction text (never from the hits or the
``reproduced`` flag a writer stored): an order or swap line is re-judged by the run's matcher, a
slot line's reply is matched against its hidden text again. Each figure that is a verdict carries
``p`` against its stated ``null`` (``mmstar.probe_nulls``: order against the model's own letter
preferences, swap against the backbone's excess over its own letter chance, slots wv against t on
the same masks and back, the backbone signal S_wv against S_t), ``p_adjusted`` (Holm over every
figure of the run's block with a ``p``) and ``fires`` = ``p_adjusted < 0.05``
(docs/architecture.md, "Leakage probes").
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from .intervals import bootstrap_mean, bootstrap_paired_difference, bootstrap_score
from .probe_figures import order_figures, rate_figures, swap_figures
from .probe_nulls import apply_holm, excess_test, mcnemar_upper, order_test
from .probe_recall import recall_mode
from .probe_variants import PROBE_MODES, PROBE_PROMPT_VERSION, PROBES, probe_file, slot_reply_matches
from .scoring import hit_of

if TYPE_CHECKING:
    from .records import PredictionRecord

# a read run (mmstar.runs.Run: records, probe_records, manifest, assessor); not imported, so that
# runs can import this module to put the probes block into scores.json
Run = Any

# the per-sample evidence flag of each verdict (``fig["flags"]``); ``fig["more_flags"]`` adds others
EVIDENCE_FLAGS = {"order": "drops_when_moved", "slots": "reproduces_masked", "swap": "right_any_image",
                  "recall": "recalls_answer_text", "backbone": "backbone_knows"}
SIGNALS = (*PROBES, "backbone")  # the block's verdicts, in the order the table lists them
_PER_SAMPLE = ("flags", "more_flags", "rows")  # kept out of scores.json


def _judged(run: Run, records: list[PredictionRecord], matcher: str) -> tuple[dict, dict]:
    """(hit, choice) per record: the matcher's verdict and the robust extractor's letter."""
    hits, choices = {}, {}
    for rec in records:
        a = run.assessor(rec)
        hits[id(rec)] = hit_of(rec, a, matcher)
        choices[id(rec)] = a.extraction.choice
    return hits, choices


def _plain(run: Run, mode: str, matcher: str) -> dict[int, tuple[bool, str | None, str, int]]:
    """index -> (hit, choice, answer letter, option count) of a plain mode's answered records."""
    recs = [r for r in run.records.get(mode) or [] if not r.error]
    h, c = _judged(run, recs, matcher)
    return {r.index: (bool(h[id(r)]), c[id(r)], r.answer_letter, len(r.options or {})) for r in recs}


def order_mode(run: Run, mode: str, matcher: str = "official", seed: int = 0) -> dict[str, Any] | None:
    """The order figures of one mode (with the per-sample ``flags``), or None when it did not run.
    Shift 0 is the plain mode's own record of the sample. ``p`` is the letter-adjusted test of the
    original order (``probe_nulls.order_test``)."""
    records = run.probe_records.get(probe_file("order", mode))
    plain = run.records.get(mode)
    if not records or not plain:
        return None
    hits: dict[int, dict[int, bool]] = defaultdict(dict)
    choices: dict[int, dict[int, str | None]] = defaultdict(dict)
    probed = {r.index for r in records}
    n_options = {r.index: len(r.options or {}) for r in records}
    letters = {r.index: (list(r.options or {}), r.answer_letter) for r in plain if r.index in probed}
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
    kept = [i for i in fig["rows"] if i in letters and letters[i][1] in letters[i][0]]  # an answer among its options
    test = order_test([fig["rows"][i] for i in kept], [letters[i][0].index(letters[i][1]) for i in kept])
    fig.update(p=test["p"], null="letter_bias", letter_expected=test["expected"], informative=test["informative"])
    return fig


def _slot_outcomes(run: Run, mode: str) -> dict[str, bool] | None:
    records = run.probe_records.get(probe_file("slots", mode))
    if records is None:
        return None
    return {str(r.extra.get("key")): _reproduced(r) for r in records if not r.error}


def slots_mode(run: Run, mode: str, seed: int = 0) -> dict[str, Any] | None:
    """The reproduction rate of one mode; ``p`` compares it with the other mode (wv against t, t
    against wv) on the masks both answered: the guessable, both can guess."""
    records = run.probe_records.get(probe_file("slots", mode))
    if records is None:
        return None
    outcomes = _slot_outcomes(run, mode) or {}
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
    fig.update(reproduced=sum(flags.values()), by_variant=by_variant, flags=flags, p=None, null=None)
    other = _slot_outcomes(run, "t" if mode == "wv" else "wv")
    common = sorted(set(outcomes) & set(other or {}))
    if common and other is not None:
        p, only_here, only_there = mcnemar_upper([outcomes[k] for k in common], [other[k] for k in common])
        fig.update(p=p, null=f"{mode}_vs_{'t' if mode == 'wv' else 'wv'}", paired=len(common),
                   only_here=only_here, only_other=only_there)
    return fig


def _reproduced(rec: PredictionRecord) -> bool:
    return not rec.error and slot_reply_matches(rec.prediction, str(rec.extra.get("target") or ""))


def swap_mode(run: Run, matcher: str = "official", seed: int = 0) -> dict[str, Any] | None:
    """S_swap and its figures; ``p`` tests its excess over its own letter chance against the
    backbone's on the same samples (null ``backbone``; ``letter_chance`` without a t run)."""
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
    answers = {r.index: r.answer_letter for r in records}
    t = _plain(run, "t", matcher)
    common = sorted(i for i in set(hv) & set(hs) if i in t) if t else sorted(set(hv) & set(hs))
    if not common:
        return None
    args = ([bool(hs[i]) for i in common], [cs.get(i) for i in common], [answers[i] for i in common])
    test = excess_test(*args, [t[i][0] for i in common], [t[i][1] for i in common]) if t else excess_test(*args)
    fig.update(p=test["p"], null=test["null"], letter_chance=test["letter_chance"],
               backbone_excess=test.get("base_excess"), tested=len(common),
               more_flags={"same_answer_any_image": fig["flags"]},
               flags={i: bool(hs[i]) and not (t and t.get(i, (False,))[0]) for i in hs})
    fig["right_any_image"] = sum(fig["flags"].values())
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



def backbone_mode(run: Run, matcher: str = "official", seed: int = 0) -> dict[str, Any] | None:
    """The backbone signal: S_t with its interval against chance (1/k per sample) and against the
    chance of its own letter choices (``p_chance``, reported: text-answerable samples lift it on a
    clean model), and S_wv - S_t on the same samples, whose one-sided exact McNemar ``p`` is the
    verdict (null ``wv_vs_t``: the backbone is right no more often than the LVLM without its image).
    Per sample: ``backbone_knows`` (right in t, wrong in wv) and ``right_in_t``."""
    t, wv = _plain(run, "t", matcher), _plain(run, "wv", matcher)
    common = sorted(set(t) & set(wv))
    if not common:
        return None
    st = bootstrap_score({i: t[i][0] for i in common}, seed)
    chance = [1 / t[i][3] if t[i][3] else 0.0 for i in common]
    answers = [t[i][2] for i in common]
    own = excess_test([t[i][0] for i in common], [t[i][1] for i in common], answers)
    excess = bootstrap_mean([float(t[i][0]) - c for i, c in zip(common, chance)], seed)
    gap = bootstrap_paired_difference({i: wv[i][0] for i in common}, {i: t[i][0] for i in common}, seed)
    p, t_only, wv_only = mcnemar_upper([t[i][0] for i in common], [wv[i][0] for i in common])
    flags = {i: t[i][0] and not wv[i][0] for i in common}
    return {"n": len(common), "S_t": st.estimate, "S_t_low": st.low, "S_t_high": st.high,
            "chance": 100 * sum(chance) / len(common), "excess": excess.estimate, "excess_low": excess.low,
            "excess_high": excess.high, "letter_chance": own["letter_chance"], "p_chance": own["p"],
            "gap": gap.estimate, "gap_low": gap.low, "gap_high": gap.high, "only_t": t_only, "only_wv": wv_only,
            "p": p, "null": "wv_vs_t", "backbone_knows": sum(flags.values()), "flags": flags,
            "more_flags": {"right_in_t": {i: t[i][0] for i in common}}}


def figures(run: Run, matcher: str = "official", seed: int = 0) -> dict[str, dict[str, dict[str, Any]]]:
    """signal -> mode -> figure (per-sample ``flags`` included), Holm applied over all of them: what
    the ``probes`` block shows, and what the sample flags and the evidence column read."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for probe in PROBES:
        for mode in PROBE_MODES[probe]:
            if probe_file(probe, mode) not in run.probe_records:
                continue
            fig = probe_figure(run, probe, mode, matcher, seed)
            if fig is not None:
                out.setdefault(probe, {})[mode] = fig
    if run.probe_records:
        fig = backbone_mode(run, matcher, seed)
        if fig is not None:
            out["backbone"] = {"t": fig}
    apply_holm(out)  # type: ignore[arg-type]
    out.pop("fired", None)  # type: ignore[call-overload]
    return out


def probe_block(run: Run, matcher: str = "official", seed: int = 0) -> dict[str, Any]:
    """``scores.json``'s ``probes``: the version and variant seed from the manifest, each probe's
    figures per mode (the per-sample flags left to ``sample_flags``) and the probes that fire."""
    recorded = run.manifest.extra.get("probes") or {}
    block: dict[str, Any] = {"version": recorded.get("version", PROBE_PROMPT_VERSION),
                             "seed": recorded.get("seed", 0)}
    per_signal = figures(run, matcher, seed)
    for probe, per_mode in per_signal.items():
        block[probe] = {mode: {k: v for k, v in fig.items() if k not in _PER_SAMPLE} for mode, fig in per_mode.items()}
    block["fired"] = [p for p in per_signal if any(f["fires"] for f in per_signal[p].values())]
    return block


def sample_flags(run: Run, matcher: str = "official") -> dict[int, dict[str, bool]]:
    """index -> the flags of the probes that ran, each set in any mode: per signal its evidence flag
    (EVIDENCE_FLAGS: ``drops_when_moved``, ``reproduces_masked``, ``right_any_image``,
    ``backbone_knows``, ``recalls_answer_text``) and the others (``follows_position``, ``same_answer_any_image``,
    ``right_in_t``)."""
    out: dict[int, dict[str, bool]] = defaultdict(dict)
    for probe, per_mode in figures(run, matcher, 0).items():
        for fig in per_mode.values():
            named = {EVIDENCE_FLAGS.get(probe, probe): fig.get("flags") or {}, **(fig.get("more_flags") or {})}
            for name, flags in named.items():
                for index, flag in flags.items():
                    out[index][name] = out[index].get(name, False) or bool(flag)
    return dict(out)


def _p(fig: dict[str, Any]) -> str:
    if fig.get("p") is None:
        return "  (no test)"
    return f"  p {fig['p']:.2g} adj {fig['p_adjusted']:.2g} ({fig['null']})" + ("  FIRES" if fig["fires"] else "")


def probe_table(block: dict[str, Any]) -> str:
    """The console table of a ``probes`` block: one line per probe and mode, its figure with the
    interval, the flagged samples, its p against its null, Holm's adjusted p and whether it fires."""
    def iv(fig: dict[str, Any], key: str) -> str:
        value = fig.get(key)
        if value is None:
            return "-"
        return f"{value:6.2f} [{fig[f'{key}_low']:6.2f}, {fig[f'{key}_high']:6.2f}]"

    lines = [f"leakage probes ({block.get('version')}, seed {block.get('seed')})"]
    for mode, fig in (block.get("order") or {}).items():
        expected = fig.get("letter_expected")
        lines.append(f"  order  {mode:<2}  n {fig['n']:<5} CircularEval {iv(fig, 'circular')}  sensitivity "
                     f"{iv(fig, 'sensitivity')}  original {fig['original']:.2f} (letters predict "
                     f"{'-' if expected is None else f'{expected:.2f}'})  drops when moved "
                     f"{fig.get('drops_when_moved', 0)}  follow position {fig['follows_position']}" + _p(fig))
    for mode, fig in (block.get("slots") or {}).items():
        lines.append(f"  slots  {mode:<2}  n {fig['n']:<5} reproduced {iv(fig, 'rate')}  samples {fig['reproduced']}"
                     + _p(fig))
    for mode, fig in (block.get("swap") or {}).items():
        lines.append(f"  swap   {mode:<2}  n {fig['n']:<5} S_swap {iv(fig, 'S_swap')}  over chance "
                     f"{iv(fig, 'excess')}  image dependence {iv(fig, 'image_dependence')}  same answer "
                     f"{fig['same_answer']}  right any image {fig.get('right_any_image', 0)}" + _p(fig))
    for mode, fig in (block.get("recall") or {}).items():
        lines.append(f"  recall {mode:<2}  n {fig['n']:<5} right text first {iv(fig, 'rate')}  stem of another "
                     f"{iv(fig, 'donor_rate')}  with options {iv(fig, 'with_options')}" + _p(fig))
    for mode, fig in (block.get("backbone") or {}).items():
        lines.append(f"  backbone {mode:<2} n {fig['n']:<5} S_t {iv(fig, 'S_t')}  "
                     f"over chance {iv(fig, 'excess')} (p {fig['p_chance']:.2g} against its letters, not a verdict)  "
                     f"S_wv - S_t {iv(fig, 'gap')}  backbone knows {fig['backbone_knows']}" + _p(fig))
    known = set(SIGNALS) | {"version", "seed", "fired"}
    for probe, per_mode in block.items():  # a probe this table has no line format for: its p at least
        if probe not in known and isinstance(per_mode, dict):
            for mode, fig in per_mode.items():
                if isinstance(fig, dict):
                    lines.append(f"  {probe} {mode:<2}  n {fig.get('n', '-')}" + _p(fig))
    lines.append("  fired: " + (", ".join(block.get("fired") or []) or "none"))
    return "\n".join(lines)
