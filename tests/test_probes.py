"""The leakage probes' variants (mmstar.probes) and figures (mmstar.metrics.probes), on the 1,500
real MMStar questions where the data matters."""

import pytest
from conftest import make_samples
from mmstar.metrics.probes import compare, follows_position, mcnemar_exact, order_figures, swap_figures

from mmstar.options import parse_question
from mmstar.probes import derangement, rotate, slot_question, slot_reply_matches, swap_images
from mmstar.sample import Benchmark


@pytest.fixture(scope="module")
def real(reference_xlsx):
    from mmstar.loaders import load_benchmark

    return load_benchmark(str(reference_xlsx))


def test_rotation_moves_the_answer_with_its_text_on_every_real_question(real):
    for s in real:
        for shift in range(1, len(s.options)):
            r = rotate(s, shift)
            assert list(r.options) == list(s.options)  # the letters stay; the texts move under them
            assert r.options[r.answer] == s.options[s.answer]
            assert parse_question(r.question).options == r.options, (s.index, shift)
            assert parse_question(r.question).stem == parse_question(s.question).stem
            assert r.meta["probe"] == {"name": "order", "shift": shift, "answer_was": s.answer}
        assert rotate(s, len(s.options)) is s and rotate(s, 0) is s


def test_a_three_option_question_wraps_after_three():
    (s,) = [x for x in make_samples(6) if len(x.options) == 3][:1]
    assert [rotate(s, k).answer for k in range(3)] == [s.answer, *[rotate(s, k).answer for k in (1, 2)]]
    assert {rotate(s, k).options["A"] for k in range(3)} == set(s.options.values())


def test_slot_masks_a_wrong_option_deterministically_and_never_shows_it(real):
    masked = 0
    for s in list(real)[:300]:
        q = slot_question(s, seed=0)
        if q is None:
            continue
        masked += 1
        assert q.letter != s.answer and q.target == s.options[q.letter]
        assert "[MASK]" in q.prompt and f"{q.letter}: [MASK]" in q.prompt
        assert q.target not in q.prompt.split("Options:")[1].replace(f"{q.letter}: [MASK]", "")
        assert slot_question(s, seed=0) == q  # same seed, same question
    assert masked > 100
    changed = sum((slot_question(s, 0) or 0) != (slot_question(s, 1) or 0) for s in list(real)[:300])
    assert changed > 0  # the seed matters


@pytest.mark.parametrize(("reply", "target", "expected"), [
    ("The man is waving his hand.", "The man is waving his hand", True),
    ("B: the man is waving his hand", "The man is waving his hand", True),
    ("waving", "The man is waving his hand", False),
    ("", "The man is waving his hand", False),
    ("I cannot know what was hidden.", "The man is waving his hand", False),
    ("Open the door\nbecause ...", "oepn the door", False),
    ("open the door", "Open the door", True),
])
def test_slot_reply_matching(reply, target, expected):
    assert slot_reply_matches(reply, target) is expected


def test_derangement_has_no_fixed_point_and_depends_on_the_seed():
    for n in range(2, 40):
        d = derangement(list(range(n)), seed=7, salt="cp")
        assert sorted(d) == sorted(d.values()) == list(range(n)) and all(k != v for k, v in d.items())
    assert derangement([5], 0) == {}
    assert derangement(list(range(20)), 0) != derangement(list(range(20)), 1)


def test_swap_gives_each_sample_an_image_of_its_own_capability():
    samples = make_samples(18)
    bench = Benchmark("b", samples)
    swapped, donors = swap_images(bench, seed=0)
    by_index = {s.index: s for s in samples}
    assert len(swapped) == len(donors) == 18
    for s in swapped:
        donor = by_index[donors[s.index]]
        assert donor.index != s.index and donor.category == s.category and s.image == donor.image
        assert s.answer == by_index[s.index].answer and s.question == by_index[s.index].question
    # samples 0 and 6 share a capability; 1..5 are alone in theirs and are left out
    assert swap_images(Benchmark("c", samples[:7]), 0)[1] == {0: 6, 6: 0}
    assert swap_images(bench, seed=0)[1] == donors


def test_order_figures_tell_a_position_follower_from_a_reader():
    n = 40
    answers = {i: "ABCD"[i % 4] for i in range(n)}

    def shifted(letter: str, k: int) -> str:  # where the answer's text sits after a rotation by k
        return "ABCD"[("ABCD".index(letter) - k) % 4]

    # a reader follows the text; a slot-guesser always says "A"
    reader = {k: {i: shifted(answers[i], k) for i in range(n)} for k in range(4)}
    slot = {k: dict.fromkeys(range(n), "A") for k in range(4)}
    for choices, circular, flagged in ((reader, 100.0, 0), (slot, 0.0, n)):
        hits = {k: {i: choices[k][i] == shifted(answers[i], k) for i in range(n)} for k in range(4)}
        fig = order_figures(hits, choices)
        assert fig["circular"] == circular and fig["follows_position"] == flagged and fig["n"] == n
    # a slot-guesser scores 25% on the original order and on average, so its sensitivity is ~0 but its
    # CircularEval is 0: the flag, not the sensitivity, is what gives it away here
    hits = {k: {i: slot[k][i] == shifted(answers[i], k) for i in range(n)} for k in range(4)}
    assert order_figures(hits, slot)["sensitivity"] == pytest.approx(0.0)
    assert follows_position(["B", "B", None]) is False


def test_swap_figures_and_the_paired_comparison():
    hv = {i: i % 10 != 0 for i in range(100)}       # 90% with the right image
    hs = {i: i % 2 == 0 for i in range(100)}        # 50% with another sample's image
    cv = {i: "A" for i in range(100)}
    cs = {i: "A" if i < 30 else "B" for i in range(100)}
    fig = swap_figures(hv, hs, cv, cs, seed=0)
    assert fig["S_swap"] == 50.0 and fig["image_dependence"] == pytest.approx(40.0)
    assert fig["image_dependence_low"] > 0 and fig["same_answer"] == 30
    assert mcnemar_exact({i: True for i in range(10)}, {i: False for i in range(10)})["p"] == pytest.approx(2 / 1024)
    assert mcnemar_exact(hv, hv)["p"] == 1.0
    c = compare(hv, hs)
    assert c["difference"] == pytest.approx(40.0) and not c["spans_zero"] and c["mcnemar_p"] < 1e-6
