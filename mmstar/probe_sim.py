"""A record-level simulator of models under the leakage probes, for calibrating the probes' verdicts
(issue 30): clean models with letter preferences, text-answerable samples and guessable masks, and
models that memorised the test on a share of its samples (the answer's letter or its text, in the
LVLM or in its LLM backbone), on a real benchmark's questions.

``simulate`` draws one model's answers (per sample, per mode, per rotation of the options, with
another sample's image, and per masked option) as arrays; ``verdicts`` scores them with the same
tests ``probe_scores`` applies to a run's records (``probe_nulls``: order against the letters, swap
against the backbone, slots wv against t, the backbone signal; Holm); ``write_run`` writes the same
answers as a run directory (manifest, v/wv/t and every probe file) that ``mmstar.open_run`` reads and
the project's own scoring judges, so a test can check that both paths give the same p-values.
``benchmarks/probe_calibration.py`` runs the false-alarm and power tables.

How a simulated model answers a sample in a mode, rotation r of the options (r = 0 the original):
it is right when it knows the sample there (text-answerable: every mode; seen with its own image:
v; memorised text: every order in the leaking side's modes; memorised letter: the original order
only, since the memory is of a letter, not an option), and otherwise guesses: its preferred letter
with the sample's own preference strength (Beta-distributed around the model's, so some samples
lean hard and others not at all), else a letter at random among the options it has not ruled out
(a fifth of unknown samples have one wrong option ruled out). With another sample's image the LVLM
knows what the text gives and what it memorised. A model with ``primacy`` narrows half of its
unknown samples to the answer and one wrong option and picks the one at the earlier letter that
often (a position preference that is not one per letter). A mask is reproduced by wv and by t each with
probability 0.7 when it is guessable, and with 0.5 by the side that memorised the text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .probe_figures import drops_when_moved, follows_position
from .probe_nulls import apply_holm, excess_test, mcnemar_upper, order_test
from .probe_variants import PROBE_PROMPT_VERSION, _draw, rotate, slot_question
from .sample import Sample

LVLM_MODES = ("v", "wv")
GUESS_PROB, LEAK_SLOT_PROB, RULED_OUT = 0.7, 0.5, 0.2


@dataclass(frozen=True)
class SimModel:
    """One simulated model. ``bias``: the share of unknown samples where it answers ``bias_letter``
    (the model's mean; per sample Beta-distributed); ``backbone_*`` the same for its LLM backbone.
    ``leak`` ("letter" or "text") on ``leak_share`` of the samples, in ``leak_in`` ("lvlm": v, wv and
    with another image; "backbone": t)."""

    name: str = "clean"
    bias_letter: str = "A"
    bias: float = 0.0
    backbone_bias_letter: str = "A"
    backbone_bias: float = 0.0
    text_answerable: float = 0.0
    vision: float = 0.5
    guessable_slots: float = 0.0
    leak: str | None = None
    leak_in: str = "lvlm"
    leak_share: float = 0.0
    primacy: float = 0.0  # > 0: half the unknown samples narrowed to two options, the earlier letter picked so often


@dataclass
class SimRun:
    """The answers of one simulated run: ``choices[mode]`` (n x K letter positions, rotation r in
    column r, -1 where a sample has fewer options), ``swap`` (n), ``slots[mode]`` (per masked sample),
    and the truth: ``leaked`` (n bools)."""

    model: SimModel
    seed: int
    answers: np.ndarray  # original answer position per sample
    k: np.ndarray  # option count per sample
    choices: dict[str, np.ndarray] = field(default_factory=dict)
    swap: np.ndarray | None = None
    slot_samples: np.ndarray | None = None  # positions (into the samples) of the masked ones
    slots: dict[str, np.ndarray] = field(default_factory=dict)
    leaked: np.ndarray | None = None

    def hits(self, mode: str) -> np.ndarray:
        """n x K: right in rotation r (the answer stands at (a0 - r) mod k)."""
        r = np.arange(self.choices[mode].shape[1])
        at = (self.answers[:, None] - r[None, :]) % self.k[:, None]
        return self.choices[mode] == at


@dataclass(frozen=True)
class Questions:
    """What the simulator needs of a benchmark: its samples, their answer positions, option counts
    and slot questions (masked option per sample or None), computed once."""

    samples: tuple[Sample, ...]
    answers: np.ndarray
    k: np.ndarray
    slot_samples: np.ndarray

    @classmethod
    def of(cls, samples: Sequence[Sample], seed: int = 0) -> Questions:
        samples = tuple(s for s in samples if len(s.options) >= 2 and s.answer in s.options)
        answers = np.array([list(s.options).index(s.answer) for s in samples])
        k = np.array([len(s.options) for s in samples])
        slot = np.array([i for i, s in enumerate(samples) if slot_question(s, seed) is not None])
        return cls(samples, answers, k, slot)


def _guess(rng: np.random.Generator, n: int, k_max: int, k: np.ndarray, strength: np.ndarray, letter: int,
           ruled_out: np.ndarray) -> np.ndarray:
    """n x k_max guessed letter positions: ``letter`` with per-sample ``strength``, else uniform over
    the sample's letters except ``ruled_out`` (a position per sample and column, -1 for none)."""
    u = rng.random((n, k_max))
    pick = np.floor(u * k[:, None]).astype(int)
    clash = pick == ruled_out
    while clash.any():  # redraw among the rest; a 2-option sample never rules its only other one out
        pick[clash] = np.floor(rng.random(int(clash.sum())) * np.repeat(k[:, None], k_max, 1)[clash]).astype(int)
        clash = pick == ruled_out
    lean = rng.random((n, k_max)) < strength[:, None]
    return np.where(lean & (letter < k[:, None]), letter, pick)


def simulate(model: SimModel, questions: Questions, seed: int) -> SimRun:
    """One run's answers for ``model`` (seeded: the same seed, the same run)."""
    rng = np.random.default_rng([seed, _draw(0, "sim", model.name) % (2 ** 31)])  # not hash(): salted per process
    n, k, a0 = len(questions.answers), questions.k, questions.answers
    k_max = int(k.max())
    text = rng.random(n) < model.text_answerable
    vision = rng.random(n) < model.vision
    leaked = rng.random(n) < model.leak_share if model.leak else np.zeros(n, bool)
    letters = "ABCDEFGHIJ"

    def strength(mean: float) -> np.ndarray:
        if mean <= 0:
            return np.zeros(n)
        return rng.beta(2 * mean, 2 * (1 - mean), n) if mean < 1 else np.ones(n)

    rot = np.arange(k_max)
    answer_at = (a0[:, None] - rot[None, :]) % k[:, None]  # the answer's letter in rotation r
    partial = rng.random(n) < RULED_OUT
    wrong = (a0 + 1 + np.floor(rng.random(n) * np.maximum(k - 1, 1)).astype(int)) % k  # a wrong option
    ruled_out = np.where(partial[:, None], (wrong[:, None] - rot[None, :]) % k[:, None], -1)
    sides = {"lvlm": (strength(model.bias), letters.index(model.bias_letter)),
             "backbone": (strength(model.backbone_bias), letters.index(model.backbone_bias_letter))}
    run = SimRun(model, seed, a0, k, leaked=leaked, slot_samples=questions.slot_samples)
    valid = rot[None, :] < k[:, None]
    narrowed = rng.random(n) < 0.5 if model.primacy > 0 else None  # drawn only then: other models' runs unchanged

    def answer(side: str, knows_any_order: np.ndarray, extra_rows: int = k_max) -> np.ndarray:
        s, letter = sides[side]
        memo_letter = leaked & (model.leak == "letter") & (model.leak_in == side)
        memo_text = leaked & (model.leak == "text") & (model.leak_in == side)
        got = _guess(rng, n, extra_rows, k, s, letter, ruled_out[:, :extra_rows])
        if narrowed is not None:  # a preference for the earlier of the two options left, not for a letter
            a_at, d_at = answer_at[:, :extra_rows], (wrong[:, None] - rot[None, :extra_rows]) % k[:, None]
            early = rng.random((n, extra_rows)) < model.primacy
            got = np.where(narrowed[:, None], np.where(early, np.minimum(a_at, d_at), np.maximum(a_at, d_at)), got)
        known = (knows_any_order | memo_text)[:, None] | (memo_letter[:, None] & (rot[None, :extra_rows] == 0))
        return np.where(valid[:, :extra_rows], np.where(known, answer_at[:, :extra_rows], got), -1)

    run.choices["v"] = answer("lvlm", text | vision)
    run.choices["wv"] = answer("lvlm", text)
    run.choices["t"] = answer("backbone", text)
    run.swap = answer("lvlm", text, 1)[:, 0]
    guessable = rng.random(n) < model.guessable_slots
    for mode, side in (("wv", "lvlm"), ("t", "backbone")):
        memo = leaked & (model.leak == "text") & (model.leak_in == side)
        hit = (guessable & (rng.random(n) < GUESS_PROB)) | (memo & (rng.random(n) < LEAK_SLOT_PROB))
        run.slots[mode] = hit[questions.slot_samples]
    return run


# ------------------------------------------------------------------------------------------ verdicts


def _letters(run: SimRun, column: np.ndarray) -> list[str | None]:
    return ["ABCDEFGHIJ"[c] if c >= 0 else None for c in column]


def verdicts(run: SimRun) -> dict[str, Any]:
    """The probes block's verdicts for a simulated run, by the tests ``probe_scores`` applies to
    records: ``{signal: {mode: {"p", "null", "p_adjusted", "fires"}}, "fired": [...]}``."""
    block: dict[str, Any] = {"order": {}}
    answers = ["ABCDEFGHIJ"[a] for a in run.answers]
    for mode in ("v", "wv", "t"):
        hits = run.hits(mode)
        rows = [list(h[:k]) for h, k in zip(hits, run.k)]
        test = order_test(rows, list(run.answers))
        block["order"][mode] = {"p": test["p"], "null": "letter_bias"}
    if run.slot_samples is not None and len(run.slot_samples):
        wv, t = run.slots["wv"], run.slots["t"]
        block["slots"] = {"wv": {"p": mcnemar_upper(wv, t)[0], "null": "wv_vs_t"},
                          "t": {"p": mcnemar_upper(t, wv)[0], "null": "t_vs_wv"}}
    swap_hits = run.swap == run.answers
    t0 = run.hits("t")[:, 0]
    test = excess_test(list(swap_hits), _letters(run, run.swap), answers, list(t0),
                       _letters(run, run.choices["t"][:, 0]))
    block["swap"] = {"v": {"p": test["p"], "null": test["null"]}}
    wv0 = run.hits("wv")[:, 0]
    block["backbone"] = {"t": {"p": mcnemar_upper(list(t0), list(wv0))[0], "null": "wv_vs_t"}}
    return apply_holm(block)


def sample_flags(run: SimRun) -> dict[str, np.ndarray]:
    """The per-sample flags ``probe_scores.sample_flags`` computes, as n-bool arrays: the order flag
    per mode (a firing mode's flags are the evidence), the others in any mode where their probe
    ran, plus ML's flag (right in wv, backbone wrong)."""
    n = len(run.answers)
    out: dict[str, np.ndarray] = {}
    follows = np.zeros(n, bool)
    for mode in ("v", "wv", "t"):
        hits, ch = run.hits(mode), run.choices[mode]
        drops = np.zeros(n, bool)
        for i in range(n):
            k = run.k[i]
            drops[i] = drops_when_moved(list(hits[i, :k]))
            follows[i] |= follows_position(list(ch[i, :k]))
        out[f"drops_when_moved {mode}"] = drops
    t0, wv0 = run.hits("t")[:, 0], run.hits("wv")[:, 0]
    swap_hits = run.swap == run.answers
    masked = np.zeros(n, bool)
    if run.slot_samples is not None and len(run.slot_samples):
        masked[run.slot_samples] = run.slots["wv"] | run.slots["t"]
    v_choice = run.choices["v"][:, 0]
    return {**out, "follows_position": follows, "right_any_image": swap_hits & ~t0,
            "same_answer_any_image": v_choice == run.swap, "reproduces_masked": masked,
            "backbone_knows": t0 & ~wv0, "right_in_t": t0, "ML (right in wv, backbone wrong)": wv0 & ~t0}


# ------------------------------------------------------------------------------- as a run directory


def write_run(run: SimRun, questions: Questions, out: str | Path) -> Path:
    """The run as a run directory (``<out>/<model>/mmstar``): manifest, v/wv/t.jsonl and the probe
    files, each reply the chosen letter, in the formats ``mmstar eval --probes`` writes."""
    from .records import PredictionRecord, write_records
    from .runs import write_manifest

    d = Path(out) / run.model.name / "mmstar"
    d.mkdir(parents=True, exist_ok=True)
    write_manifest(d, {"model": f"sim/{run.model.name}", "benchmark": "mmstar", "model_label": run.model.name,
                       "modes": {}, "probes": {"version": PROBE_PROMPT_VERSION, "seed": 0,
                                               "names": ["order", "slots", "swap"], "simulated": asdict(run.model)}})

    def rec(sample: Sample, mode: str, choice: int, **extra: Any) -> PredictionRecord:
        return PredictionRecord(index=sample.index, mode=mode, prediction="ABCDEFGHIJ"[choice] if choice >= 0 else "",
                                answer=sample.answer, options=dict(sample.options), question=sample.question,
                                category=sample.category, l2_category=sample.l2_category, extra=extra)

    samples = questions.samples
    for mode in ("v", "wv", "t"):
        ch = run.choices[mode]
        write_records(d / f"{mode}.jsonl", [rec(s, mode, int(ch[i, 0])) for i, s in enumerate(samples)])
        write_records(d / f"order-{mode}.jsonl", [
            rec(rotate(s, r), mode, int(ch[i, r]), probe="order", variant=f"r{r}", key=f"{s.index}:r{r}", shift=r)
            for i, s in enumerate(samples) for r in range(1, len(s.options))])
    for mode in ("wv", "t"):
        lines = []
        for j, i in enumerate(run.slot_samples):
            s = samples[int(i)]
            q = slot_question(s, 0)
            reply = q.target if run.slots[mode][j] else "something else entirely"
            lines.append(PredictionRecord(index=s.index, mode=mode, prediction=reply, answer=s.answer,
                                          options={**s.options, q.letter: "[MASK]"}, question=q.prompt,
                                          category=s.category, l2_category=s.l2_category,
                                          extra={"probe": "slots", "variant": "option", "key": f"{s.index}:option",
                                                 "masked_letter": q.letter, "target": q.target}))
        write_records(d / f"slots-{mode}.jsonl", lines)
    n = len(samples)
    write_records(d / "swap-v.jsonl", [
        rec(s, "v", int(run.swap[i]), probe="swap", variant="swap", key=f"{s.index}:swap",
            image_from=samples[(i + 1) % n].index) for i, s in enumerate(samples)])
    (d / "truth.json").write_text(json.dumps({"leaked": [s.index for s, x in zip(samples, run.leaked) if x]}))
    return d


# ---------------------------------------------------------------------------------- the calibration

# the clean models of the calibration: letter preferences up to 60% on one letter (MMStar's answers
# are B 447, A 429, D 315, C 309), up to 20% text-answerable samples, guessable masks
CLEAN = {
    "no preference": SimModel("clean-none"),
    "A 35%": SimModel("clean-A35", "A", 0.35, "A", 0.35),
    "B 35%": SimModel("clean-B35", "B", 0.35, "B", 0.35),
    "A 60%": SimModel("clean-A60", "A", 0.6, "A", 0.6),
    "B 60%": SimModel("clean-B60", "B", 0.6, "B", 0.6),
    "C 60%": SimModel("clean-C60", "C", 0.6, "C", 0.6),
    "D 60%": SimModel("clean-D60", "D", 0.6, "D", 0.6),
    "B 60%, backbone A 60%": SimModel("clean-B60-A60", "B", 0.6, "A", 0.6),
    "20% text-answerable": SimModel("clean-text20", text_answerable=0.2),
    "20% text-answerable, B 60%, backbone A 60%": SimModel("clean-text20-B60", "B", 0.6, "A", 0.6, 0.2),
    "5% of masks guessable": SimModel("clean-guess5", guessable_slots=0.05),
    "half narrowed to two options, the earlier picked 80%": SimModel("clean-primacy", primacy=0.8),
    "all: B 60%, backbone D 35%, 20% text, 5% masks": SimModel("clean-all", "B", 0.6, "D", 0.35, 0.2,
                                                              guessable_slots=0.05),
}
# the leaks are planted behind the hardest clean background for the order probe: a 60% preference
# for C, MMStar's rarest answer letter, with 10% text-answerable samples
LEAK_BACKGROUND = SimModel("leak", "C", 0.6, "C", 0.6, 0.1)
LEAKS = {"letter, LVLM": ("letter", "lvlm"), "text, LVLM": ("text", "lvlm"),
         "letter, backbone": ("letter", "backbone"), "text, backbone": ("text", "backbone")}
SHARES = (0.02, 0.05, 0.10, 0.25)


def leaked_model(kind: str, share: float, background: SimModel = LEAK_BACKGROUND) -> SimModel:
    leak, where = LEAKS[kind]
    name = f"{background.name}-{leak}-{where}-{round(100 * share)}"
    return SimModel(name, background.bias_letter, background.bias, background.backbone_bias_letter,
                    background.backbone_bias, background.text_answerable, background.vision,
                    background.guessable_slots, leak, where, share)


def rule_names(block: dict[str, Any]) -> list[str]:
    return [f"{p} {m}" for p, per in block.items() if isinstance(per, dict) for m in per]


def firing_rates(model: SimModel, questions: Questions, seeds: Sequence[int]) -> dict[str, float]:
    """Per rule ("order wv", ...) the share of runs where it fires, and "any" (the run's ``fired``
    list not empty), over the seeds."""
    counts: dict[str, int] = {}
    for seed in seeds:
        block = verdicts(simulate(model, questions, seed))
        for probe, per in block.items():
            if isinstance(per, dict):
                for mode, fig in per.items():
                    counts[f"{probe} {mode}"] = counts.get(f"{probe} {mode}", 0) + bool(fig["fires"])
        counts["any"] = counts.get("any", 0) + bool(block["fired"])
    return {k: v / len(seeds) for k, v in counts.items()}


def flag_scores(model: SimModel, questions: Questions, seeds: Sequence[int]) -> dict[str, dict[str, float]]:
    """Per flag, its precision and recall against the samples the model leaked, pooled over seeds."""
    tp: dict[str, int] = {}
    fp: dict[str, int] = {}
    fn: dict[str, int] = {}
    for seed in seeds:
        run = simulate(model, questions, seed)
        for name, flag in sample_flags(run).items():
            tp[name] = tp.get(name, 0) + int((flag & run.leaked).sum())
            fp[name] = fp.get(name, 0) + int((flag & ~run.leaked).sum())
            fn[name] = fn.get(name, 0) + int((~flag & run.leaked).sum())
    return {name: {"precision": tp[name] / max(tp[name] + fp[name], 1),
                   "recall": tp[name] / max(tp[name] + fn[name], 1)} for name in tp}
