"""The probes' verdicts calibrated (issue 30): simulated clean models on the real 1,500 MMStar
questions must not fire, planted leaks must, and a simulated run scored from its run directory gives
the same p-values as the simulator's own scoring. ``benchmarks/probe_calibration.py`` prints the full
tables (the README quotes them); the slow test here asserts the issue's bounds on the full counts."""

import re

import pytest

from mmstar.loaders import load_benchmark
from mmstar.probe_nulls import apply_holm, holm, mcnemar_upper, order_test
from mmstar.probe_sim import CLEAN, Questions, SimModel, firing_rates, leaked_model, simulate, verdicts, write_run
from mmstar.probe_variants import normalise, slot_question
from mmstar.runs import compute_scores


@pytest.fixture(scope="module")
def questions(reference_xlsx):  # skips with the reason where ../shared/reference is absent
    return Questions.of(list(load_benchmark(reference_xlsx)))


def test_holm_adjusts_in_steps_and_the_block_fires_on_the_adjusted_p():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    block = {"version": "v", "order": {"wv": {"p": 0.001}, "t": {"p": 0.02}}, "slots": {"t": {"p": None}},
             "recall": {"wv": {"p": 0.03, "null": "x"}}}  # a probe this code does not know joins by its p
    apply_holm(block)
    assert block["order"]["wv"]["p_adjusted"] == pytest.approx(0.003) and block["order"]["wv"]["fires"]
    assert block["order"]["t"]["p_adjusted"] == pytest.approx(0.04) and block["order"]["t"]["fires"]
    assert block["recall"]["wv"]["p_adjusted"] == pytest.approx(0.04) and block["recall"]["wv"]["fires"]
    assert block["slots"]["t"] == {"p": None, "p_adjusted": None, "fires": False}
    assert block["fired"] == ["order", "recall"]


def test_the_letter_sets_law_matches_enumeration():
    """The order test's inclusion probabilities (P(H) proportional to the product of the letters'
    weights over the size-m letter sets H) against brute-force enumeration of the sets."""
    import itertools

    import numpy as np

    from mmstar.probe_nulls import _inclusion

    w = np.array([0.3, 1.7, 0.9, 2.5, 1.1])
    for m in range(1, len(w)):
        sets = list(itertools.combinations(range(len(w)), m))
        weight = np.array([np.prod(w[list(h)]) for h in sets])
        weight /= weight.sum()
        p1, p2 = _inclusion(w, m)
        assert p1 == pytest.approx([sum(x for h, x in zip(sets, weight) if i in h) for i in range(len(w))])
        for i, j in itertools.product(range(len(w)), repeat=2):
            assert p2[i, j] == pytest.approx(sum(x for h, x in zip(sets, weight) if i in h and j in h))


def test_exact_tests_on_hand_counts():
    # 5 samples only the first side reproduced, 1 only the second: P(X >= 5 | n = 6, 1/2) = 7/64
    assert mcnemar_upper([1] * 5 + [0] + [1, 0], [0] * 5 + [1] + [1, 0])[0] == pytest.approx(7 / 64)
    # a model that answers "A" everywhere, on samples whose answers are all A: the letters explain it
    assert order_test([[True, False, False, False]] * 40, [0] * 40)["p"] == pytest.approx(1.0)


def _hidden_text_shown(sample, q) -> bool:
    """The masked text can be read off the prompt: another option or the question holds it (or it
    holds another option of two words or more), compared normalised. Written apart from the probe's
    own check, so that a mask choice that forgets it fails here."""
    hidden = f" {normalise(q.target)} "
    others = [normalise(t) for k, t in sample.options.items() if k != q.letter]
    stem = re.split(r"\n(?:Options:|Choices:)", sample.question)[0]
    return (hidden in f" {normalise(stem)} " or any(hidden in f" {o} " for o in others)
            or any(len(o.split()) >= 2 and f" {o} " in hidden for o in others))


def test_shown_elsewhere_compares_normalised_texts_both_ways():
    from mmstar.probe_variants import shown_elsewhere
    from mmstar.sample import Sample

    options = {"A": "The cat on the mat", "B": "cat on the mat, asleep", "C": "a dog in the garden",
               "D": "-3 metres of rope", "E": "3 metres of rope"}
    s = Sample(0, "Where is the cat? Look in the garden shed.\nOptions: ...", options, "A", options_embedded=False)
    stem = "Where is the cat? Look in the garden shed."
    assert shown_elsewhere(s, "A", stem)  # B holds "cat on mat" (case, articles, punctuation gone)
    assert shown_elsewhere(s, "B", stem)  # it holds A's text whole (two words or more)
    assert shown_elsewhere(s, "D", stem) and shown_elsewhere(s, "E", stem)  # a sign is not a new text
    assert not shown_elsewhere(s, "C", stem)  # "dog in garden" is nowhere else
    assert shown_elsewhere(s.with_(options={**options, "C": "the garden shed"}), "C", stem)  # the question shows it


def test_no_mask_hides_a_text_the_prompt_still_shows(questions):
    # mmstar-probes-v1 hid such an option 39 times over these 4 seeds (21 times one that another option
    # still shows whole); copying it counted as memory
    shown = [(s.index, seed) for seed in range(4) for s in questions.samples
             if (q := slot_question(s, seed)) is not None and _hidden_text_shown(s, q)]
    assert shown == []
    assert sum(slot_question(s, 0) is not None for s in questions.samples) > 600  # still most slot questions


def test_a_simulated_run_scores_the_same_from_its_run_directory(questions, tmp_path):
    """The simulator's arrays and the project's scoring of the run directory written from them (records
    re-judged from the reply text, masks re-matched) give the same p, Holm's p and fired list."""
    sub = Questions.of(questions.samples[:300])
    run = simulate(leaked_model("letter, LVLM", 0.25), sub, seed=1)
    mine = verdicts(run)
    block = compute_scores(write_run(run, sub, tmp_path))["probes"]
    for probe in ("order", "slots", "swap", "backbone"):
        for mode, fig in mine[probe].items():
            got = block[probe][mode]
            assert (got["p"], got["p_adjusted"]) == pytest.approx((fig["p"], fig["p_adjusted"]), rel=1e-9), probe
            assert (got["null"], got["fires"]) == (fig["null"], fig["fires"]), (probe, mode)
    assert block["fired"] == mine["fired"] and "order" in block["fired"]


def test_clean_models_rarely_fire_and_letter_leaks_are_caught(questions):
    """A bounded sample of the calibration (12 seeds a clean row, 20 a leak): clean models with a 60% preference for a
    letter (and the backbone for another) and 20% text-answerable samples, against leaks of the
    memorised letter on 10% and 25% of the samples behind a 60% preference for C."""
    seeds = range(12)
    for label in ("B 60%, backbone A 60%", "20% text-answerable, B 60%, backbone A 60%"):
        rates = firing_rates(CLEAN[label], questions, seeds)
        assert rates["any"] <= 0.25 and max(rates.values()) <= 0.25, (label, rates)
    assert firing_rates(leaked_model("letter, LVLM", 0.10), questions, range(20))["any"] >= 0.8
    assert firing_rates(leaked_model("letter, LVLM", 0.25), questions, range(20))["any"] == 1.0


def test_the_old_rule_fired_on_a_letter_preference_and_this_one_does_not(questions):
    """Why the null: a clean model preferring B (MMStar's commonest answer) is right more often in the
    original order, so its order sensitivity's interval clears 0; the letter-adjusted test does not
    fire."""
    import numpy as np

    run = simulate(SimModel("clean-B80", "B", 0.8, "B", 0.8), questions, seed=0)
    hits = run.hits("wv")
    sensitivity = [float(h[0]) - float(h[1:k].mean()) for h, k in zip(hits, run.k)]
    mean, se = np.mean(sensitivity), np.std(sensitivity, ddof=1) / np.sqrt(len(sensitivity))
    assert mean - 1.96 * se > 0  # what fired before
    assert not verdicts(run)["order"]["wv"]["fires"]


@pytest.mark.slow  # 2,600 clean and 200 leaked simulated runs: 6 min on a busy 2-core machine
def test_the_issue_bounds_on_the_full_counts(questions):
    """Every rule fires in at most 5% of 200 clean runs per setting (the run's fired list in at most
    10%); a 10% letter leak is caught in at least 80% of 100 runs, a 25% one in at least 95%."""
    for label, model in CLEAN.items():
        rates = firing_rates(model, questions, range(200))
        assert rates["any"] <= 0.10, (label, rates)
        assert max(v for k, v in rates.items() if k != "any") <= 0.05, (label, rates)
    assert firing_rates(leaked_model("letter, LVLM", 0.10), questions, range(100))["any"] >= 0.80
    assert firing_rates(leaked_model("letter, LVLM", 0.25), questions, range(100))["any"] >= 0.95
