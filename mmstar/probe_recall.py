"""The answer-text recall probe (``recall``, issue 30 item 3): does the model know the right option's
TEXT for a question it is shown without its options?

A model trained on a benchmark's answers as text ("Picture KGYE. What colour ... ? red"), not as
letters, passes the other probes unseen: it cannot map what it remembers onto a letter, so S_wv, the
order and swap probes stay near chance. Asked the question alone, it prefers the right text.

Variants (key ``"<index>:<variant>"``), in modes wv (the LVLM without image) and t (the backbone):

- ``own``: the sample's stem (its question without options) in ``RECALL_PROMPT``; every option's text
  is scored as the reply by the model's likelihood (``score_continuations``);
- ``donor``: the same options after the stem of another sample of the same axis (a seeded
  derangement): what the model's prior over these answer texts gives for this kind of question,
  without this question's own words.

Score of an option: the mean log-probability of its tokens (length-normalised: a sum ranks short
texts first whatever the model knows, since every token adds a negative term). The sum and the token
counts are in the record too. The right text "ranks first" when its score is above every other's.

Per mode, the rate at which the right text ranks first with the own stem is compared, on the same
samples and paired, with two rates a model that has not seen these question-answer pairs reaches:

- the ``donor``-stem rate (its text prior: "red" is likely for any colour question), and
- the plain mode's accuracy with the options shown (a question answerable from its text is answered
  with the options too, so text-answerability alone does not lift recall above it).

Null (``NULL``): recall is no higher than the larger of the two. p is the intersection-union test:
the larger of the two one-sided exact McNemar p-values (own against donor, own against with-options),
a level-alpha test of "above both". What it cannot see: a model that memorised the texts AND maps them
onto letters (then S_wv rises with recall: ML, order and swap see that one), and leaked texts a clean
model would also prefer from the question's words alone when it also answers them with options.

Samples left out: fewer than two options, an answer text another option repeats (no ranking can tell
them apart), a ``nan`` answer text.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .intervals import bootstrap_paired_difference, bootstrap_score
from .probe_variants import ProbeItem, _parsed, derangement, normalise
from .sample import Benchmark, Sample

if TYPE_CHECKING:
    from .records import PredictionRecord

RECALL_PROMPT = "{stem}\nAnswer the question directly."
RECALL_MODES = ("wv", "t")
NULL = "max(donor_stem,with_options)"  # recall no higher than the text prior nor the with-options accuracy
VARIANTS = ("own", "donor")


def recall_stem(sample: Sample) -> str | None:
    """The question without its options, or None when the sample cannot be ranked (see the module)."""
    answer = sample.options.get(sample.answer)
    if len(sample.options) < 2 or answer is None or normalise(answer) in ("", "nan"):
        return None
    if sum(normalise(v) == normalise(answer) for v in sample.options.values()) > 1:
        return None
    stem = _parsed(sample).stem.strip()
    return stem or None


def donors(bench: Benchmark, seed: int) -> dict[int, int]:
    """index -> the sample whose stem is its donor: a derangement within each axis (``l2_category``),
    or within the capability for an axis with one rankable sample; none for a lone sample."""
    stems = {s.index: s for s in bench if recall_stem(s) is not None}
    by_axis: dict[str, list[int]] = defaultdict(list)
    for s in stems.values():
        by_axis[s.l2_category or s.category].append(s.index)
    out: dict[int, int] = {}
    lone: dict[str, list[int]] = defaultdict(list)
    for axis, indices in sorted(by_axis.items()):
        if len(indices) == 1:
            lone[stems[indices[0]].category].append(indices[0])
        out.update(derangement(indices, seed, ("recall", axis)))
    for capability, indices in sorted(lone.items()):
        out.update(derangement(indices, seed, ("recall-capability", capability)))
    return out


def recall_items(bench: Benchmark, mode: str, seed: int = 0) -> list[ProbeItem]:
    """Per rankable sample with a donor: the ``own`` and ``donor`` items (the prompt asked, the
    option texts to score come from the item's sample)."""
    samples = {s.index: s for s in bench}
    items = []
    for index, donor in donors(bench, seed).items():
        s = samples[index]
        for variant, stem_of in (("own", s), ("donor", samples[donor])):
            key = f"{index}:{variant}"
            fields = {"probe": "recall", "variant": variant, "key": key, "stem_from": stem_of.index}
            items.append(ProbeItem("recall", mode, key, s, fields, RECALL_PROMPT.format(stem=recall_stem(stem_of))))
    return items


def continuations(item: ProbeItem) -> list[str]:
    """The texts scored for an item: its sample's options, in letter order."""
    return [item.sample.options[k] for k in item.sample.options]


def option_scores(rec: PredictionRecord) -> dict[str, float] | None:
    """letter -> mean log-probability per token, from a record's stored sums and counts; None for a
    failed or incomplete line."""
    sums, counts = rec.extra.get("loglik"), rec.extra.get("tokens")
    if rec.error or not isinstance(sums, Mapping) or not isinstance(counts, Mapping) or set(sums) != set(counts):
        return None
    try:
        return {k: float(sums[k]) / int(counts[k]) for k in sums if int(counts[k]) > 0}
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def ranked_first(scores: Mapping[str, float]) -> str | None:
    """The letter whose text scores highest; None on a tie for the top (no text was preferred)."""
    if not scores:
        return None
    best = max(scores.values())
    top = [k for k, v in scores.items() if v == best]
    return top[0] if len(top) == 1 else None


def right_first(rec: PredictionRecord) -> bool | None:
    scores = option_scores(rec)
    if scores is None or rec.answer_letter not in scores:
        return None
    return ranked_first(scores) == rec.answer_letter


def one_sided_mcnemar(a: Mapping[Any, bool], b: Mapping[Any, bool]) -> tuple[int, int, float]:
    """(A right B wrong, A wrong B right, exact p of at least that many A-only wins under p = 1/2)."""
    common = set(a) & set(b)
    only_a = sum(bool(a[i]) and not bool(b[i]) for i in common)
    only_b = sum(bool(b[i]) and not bool(a[i]) for i in common)
    n = only_a + only_b
    p = 1.0 if n == 0 else sum(math.comb(n, j) for j in range(only_a, n + 1)) / 2 ** n
    return only_a, only_b, min(1.0, p)


def recall_figures(own: Mapping[int, bool], donor: Mapping[int, bool], with_options: Mapping[int, bool],
                   n_options: Mapping[int, int], seed: int = 0) -> dict[str, Any]:
    """The figure of one mode on the samples that have all three outcomes (see the module)."""
    common = sorted(set(own) & set(donor) & set(with_options))
    if not common:
        raise ValueError("no sample has its own-stem, donor-stem and with-options outcomes")
    a = {i: own[i] for i in common}
    rate, prior, shown = (bootstrap_score(d, seed) for d in (a, {i: donor[i] for i in common},
                                                              {i: with_options[i] for i in common}))
    over_prior = bootstrap_paired_difference(a, {i: donor[i] for i in common}, seed)
    over_shown = bootstrap_paired_difference(a, {i: with_options[i] for i in common}, seed)
    _, _, p_prior = one_sided_mcnemar(a, donor)
    _, _, p_shown = one_sided_mcnemar(a, with_options)
    p = max(p_prior, p_shown)
    return {
        "n": len(common), "rate": rate.estimate, "rate_low": rate.low, "rate_high": rate.high,
        "chance": 100 * sum(1 / n_options[i] for i in common) / len(common),
        "donor_rate": prior.estimate, "donor_rate_low": prior.low, "donor_rate_high": prior.high,
        "with_options": shown.estimate, "with_options_low": shown.low, "with_options_high": shown.high,
        "over_donor": over_prior.estimate, "over_donor_low": over_prior.low, "over_donor_high": over_prior.high,
        "over_options": over_shown.estimate, "over_options_low": over_shown.low,
        "over_options_high": over_shown.high, "p_donor": p_prior, "p_options": p_shown,
        # p_adjusted: p until the run's Holm step (over every figure with a ``p``) overwrites it
        "p": p, "null": NULL, "p_adjusted": p, "fires": p < 0.05,
        "recalled": sum(a.values()), "flags": a,
    }


def recall_mode(run: Any, mode: str, records: Sequence[PredictionRecord] | None, matcher: str = "official",
                seed: int = 0) -> dict[str, Any] | None:
    """The recall figure of one mode from its records and the plain mode's (re-judged by
    ``matcher``); None when the probe or the plain mode did not run there."""
    from .scoring import hit_of

    plain = run.records.get(mode)
    if not records or not plain:
        return None
    outcome: dict[str, dict[int, bool]] = {v: {} for v in VARIANTS}
    for rec in records:
        got = right_first(rec)
        if got is not None and rec.extra.get("variant") in outcome:
            outcome[str(rec.extra["variant"])][rec.index] = got
    shown = {r.index: hit_of(r, run.assessor(r), matcher) for r in plain if not r.error}
    n_options = {r.index: len(r.options or {}) for r in records}
    try:
        return recall_figures(outcome["own"], outcome["donor"], shown, n_options, seed)
    except ValueError:
        return None
