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


# ------------------------------------------------------------------ word masks, work items, bad input


def test_word_mask_is_deterministic_and_never_hides_a_word_of_the_answer(real):
    from mmstar.probes import normalise, word_question

    masked = 0
    for s in list(real)[:300]:
        q = word_question(s, seed=0)
        if q is None:
            continue
        masked += 1
        assert q.letter is None and q.target not in normalise(s.options[s.answer]).split()
        assert "[MASK]" in q.prompt and word_question(s, seed=0) == q
        assert len(q.target) >= 4
    assert masked > 250
    assert any(word_question(s, 0) != word_question(s, 5) for s in list(real)[:50])


def test_work_items_have_unique_keys_and_the_fields_of_the_contract():
    from mmstar.probes import probe_items

    bench = Benchmark("b", make_samples(12))
    order = probe_items(bench, "order", "wv")
    # 3 rotations of each 4-option sample, 2 of each 3-option one (samples 0, 5, 10 have three)
    assert len(order) == sum(len(s.options) - 1 for s in bench) == 9 * 3 + 3 * 2
    assert len({it.key for it in order}) == len(order)
    first = order[0]
    assert first.key == "0:r1" and first.fields == {"probe": "order", "variant": "r1", "key": "0:r1", "shift": 1}
    assert first.sample.answer != bench[0].answer and first.sample.options[first.sample.answer] == \
        bench[0].options[bench[0].answer]
    slots = probe_items(bench, "slots", "t", seed=0, words=True)
    assert {it.fields["variant"] for it in slots} == {"word"}  # make_samples' options are too short to hide
    assert all(it.prompt and it.fields["masked_letter"] is None for it in slots)
    swap = probe_items(bench, "swap", "v", seed=0)
    assert all(it.fields["image_from"] != it.sample.index for it in swap) and len(swap) == 12
    assert probe_items(bench, "swap", "v", seed=0) == swap


@pytest.mark.parametrize(("samples", "probes", "fragment"), [
    ("no_options", ("order",), "no sample has options"),
    ("single_option", ("order",), "sample 1 has 1 option(s)"),
    ("lonely_capability", ("swap",), "capability 'instance reasoning' has a single sample with an image (2)"),
])
def test_bad_input_is_one_line_naming_the_sample(samples, probes, fragment):
    from mmstar.errors import DataError
    from mmstar.probes import check_probe_input

    base = make_samples(8)
    if samples == "no_options":
        base = [s.with_(options={}) for s in base]
    elif samples == "single_option":
        base[1] = base[1].with_(options={"A": "only"}, answer="A")
    with pytest.raises(DataError) as err:
        check_probe_input(Benchmark("b", base, "data/b.parquet"), probes)
    assert fragment in str(err.value) and str(err.value).startswith("data/b.parquet") and "\n" not in str(err.value)


def test_probe_names_and_modes_are_checked():
    from mmstar.errors import MmstarError
    from mmstar.probes import parse_probes, probe_modes

    assert parse_probes("swap, order") == ("order", "swap") and parse_probes(None) == ()
    with pytest.raises(MmstarError, match="unknown probe"):
        parse_probes("order,shuffle")
    assert probe_modes("slots", ("v", "wv", "t")) == ("wv", "t")
    with pytest.raises(MmstarError, match="probe slots runs in mode wv or t"):
        probe_modes("slots", ("v",))


def test_order_figures_keep_three_option_samples_beside_four_option_ones():
    # sample 0 has 4 options, sample 1 has 3: every figure counts both (shift 3 exists only for 0)
    hits = {0: {0: True, 1: True}, 1: {0: False, 1: True}, 2: {0: False, 1: True}, 3: {0: False}}
    choices = {s: {i: "A" for i in hits[s]} for s in hits}
    fig = order_figures(hits, choices, n_options={0: 4, 1: 3})
    assert fig["n"] == 2 and fig["left_out"] == 0
    assert fig["circular"] == 50.0  # sample 1 is right in all three of its orders
    # sample 0: right only in the original order (sensitivity 1 - 0); sample 1: right in all (1 - 1)
    assert fig["original"] == 100.0 and fig["rotated"] == 50.0 and fig["sensitivity"] == 50.0
    # a sample missing one of its own orders is left out, not scored on half its rotations
    del hits[2][1]
    assert order_figures(hits, choices, n_options={0: 4, 1: 3})["left_out"] == 1
