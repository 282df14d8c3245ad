"""The probes' figures from hand-built run directories: scores.json's ``probes`` block, the per-sample
flags and the leaderboard's probe columns, against values computed by hand from the records.
Every figure is re-judged from the reply text: the hits and ``reproduced`` a writer stored are
deliberately wrong here and must not count."""

import json

import pytest

from mmstar.intervals import bootstrap_mean, bootstrap_paired_difference, bootstrap_score
from mmstar.probes import sample_flags
from mmstar.records import PredictionRecord, write_records
from mmstar.runs import compute_scores, open_run, write_manifest

ABCD = {"A": "red circle", "B": "green square", "C": "blue star", "D": "pink moon"}
ABC = {"A": "red circle", "B": "green square", "C": "blue star"}


def _rotated(options, shift):
    letters = list(options)
    return {letters[i]: options[letters[(i + shift) % len(letters)]] for i in range(len(letters))}


def _moved(options, answer, shift):
    letters = list(options)
    return letters[(letters.index(answer) - shift) % len(letters)]


def _rec(index, mode, prediction, answer, options, **extra):
    # hit/choice stored wrong on purpose: scores re-judge the text
    return PredictionRecord(index=index, mode=mode, prediction=prediction, answer=answer, options=options,
                            question="Which shape?", category="math", l2_category="numeric commonsense & calculation",
                            hit=False, choice="Z", extra=extra)


def _order_lines(index, options, answer, replies, mode="wv"):
    """shift 0's record for the plain file and the rotations' for order-<mode>.jsonl."""
    plain = _rec(index, mode, replies[0], answer, options)
    rotated = [_rec(index, mode, reply, _moved(options, answer, k), _rotated(options, k), probe="order",
                    variant=f"r{k}", key=f"{index}:r{k}", shift=k) for k, reply in enumerate(replies) if k]
    return plain, rotated


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "m" / "b"
    d.mkdir(parents=True)
    write_manifest(d, {"model": "m", "benchmark": "b", "model_label": "m", "modes": {},
                       "probes": {"version": "mmstar-probes-v1", "seed": 3, "names": ["order", "slots", "swap"]}})
    # order, wv: sample 0 says "A" whatever the order (follows the position: right only at shift 0);
    # sample 1 (three options) reads its options (right in all three orders); sample 2 is wrong in
    # the original order and right in every rotation
    lines = [_order_lines(0, ABCD, "A", ["A", "A", "A", "A"]),
             _order_lines(1, ABC, "B", ["B", "A", "C"]),
             _order_lines(2, ABCD, "C", ["D", "B", "A", "D"])]
    write_records(d / "wv.jsonl", [p for p, _ in lines])
    write_records(d / "order-wv.jsonl", [r for _, rs in lines for r in rs])
    # slots, t: two of four questions reproduced (samples 0 and 2); "reproduced" stored wrong
    write_records(d / "t.jsonl", [_rec(i, "t", "A", "A", ABCD) for i in range(3)])
    write_records(d / "slots-t.jsonl", [
        _rec(0, "t", "The green square.", "A", {**ABCD, "B": "[MASK]"}, probe="slots", variant="option", key="0:option",
             masked_letter="B", target="green square", reproduced=False),
        _rec(1, "t", "a yellow square", "B", {**ABC, "A": "[MASK]"}, probe="slots", variant="option", key="1:option",
             masked_letter="A", target="red circle", reproduced=True),
        _rec(2, "t", "pink", "C", {**ABCD, "D": "[MASK]"}, probe="slots", variant="option", key="2:option",
             masked_letter="D", target="pink moon", reproduced=True),
        _rec(2, "t", "shape", "C", ABCD, probe="slots", variant="word", key="2:word", masked_letter=None,
             target="Shape", reproduced=False)])
    # swap: v right on 0, 1, 2 and wrong on 3; with another image right only on 1; same letter on 1 and 3
    v = [_rec(0, "v", "A", "A", ABCD), _rec(1, "v", "B", "B", ABC), _rec(2, "v", "C", "C", ABCD),
         _rec(3, "v", "D", "A", ABCD)]
    write_records(d / "v.jsonl", v)
    write_records(d / "swap-v.jsonl", [
        _rec(i, "v", reply, r.answer, r.options, probe="swap", variant="swap", key=f"{i}:swap", image_from=(i + 1) % 4)
        for i, (reply, r) in enumerate(zip(["B", "B", "A", "D"], v))])
    return d


def test_the_probes_block_matches_the_hand_computed_figures(run_dir):
    block = compute_scores(run_dir)["probes"]
    assert block["version"] == "mmstar-probes-v1" and block["seed"] == 3
    order = block["order"]["wv"]
    # per sample: circular 0, 1, 0; sensitivity 1 - 0, 1 - 1, 0 - 1
    assert order["n"] == 3 and order["left_out"] == 0
    assert order["circular"] == pytest.approx(100 / 3) and order["original"] == pytest.approx(200 / 3)
    assert order["rotated"] == pytest.approx(200 / 3) and order["sensitivity"] == pytest.approx(0.0)
    want = bootstrap_mean([1, 0, -1], seed=0)
    assert (order["sensitivity_low"], order["sensitivity_high"]) == pytest.approx((want.low, want.high))
    want = bootstrap_mean([0, 1, 0], seed=0)
    assert (order["circular_low"], order["circular_high"]) == pytest.approx((want.low, want.high))
    assert order["follows_position"] == 1 and order["drops_when_moved"] == 1 and order["fires"] is False
    # two samples carry information (0 and 2: right in some orders, wrong in others); their hits' letters
    # explain the original order (sample 0's hit is at A, sample 2's at A and B): no evidence
    assert order["null"] == "letter_bias" and order["informative"] == 2 and order["p"] == pytest.approx(1.0)
    slots = block["slots"]["t"]
    assert slots["n"] == 4 and slots["rate"] == 50.0 and slots["reproduced"] == 2
    assert slots["by_variant"] == {"option": {"n": 3, "reproduced": 1}, "word": {"n": 1, "reproduced": 1}}
    # no slots-wv here: nothing to compare t with on the same masks, so no test (shown, never fires)
    assert slots["p"] is None and slots["null"] is None and slots["p_adjusted"] is None and slots["fires"] is False
    want = bootstrap_score({"0:option": True, "1:option": False, "2:option": False, "2:word": True}, seed=0)
    assert (slots["rate_low"], slots["rate_high"]) == pytest.approx((want.low, want.high))
    swap = block["swap"]["v"]
    chance = (1 / 4 + 1 / 3 + 1 / 4 + 1 / 4) / 4
    assert swap["n"] == 4 and swap["S_swap"] == 25.0 and swap["chance"] == pytest.approx(100 * chance)
    assert swap["excess"] == pytest.approx(25.0 - 100 * chance) and swap["image_dependence"] == 50.0
    assert swap["same_answer"] == 2 and swap["fires"] is False
    # against the backbone on the samples t answered (0-2): swap right on 1 of 3 with letters B, B, A
    # (chance of its letters: B 2/3 on the B answer, A 1/3 on A -> 1/3 per sample on average);
    # t right on all three answering A everywhere (its letter chance: 1/3): excesses 0 and 2/3
    assert swap["null"] == "backbone" and swap["tested"] == 3 and swap["letter_chance"] == pytest.approx(100 / 3)
    assert swap["backbone_excess"] == pytest.approx(200 / 3) and swap["p"] > 0.5 and swap["right_any_image"] == 0
    backbone = block["backbone"]["t"]
    assert backbone["n"] == 3 and backbone["S_t"] == 100.0 and backbone["gap"] == pytest.approx(-100 / 3)
    assert (backbone["only_t"], backbone["only_wv"], backbone["p"]) == (1, 0, 0.5)  # one discordant pair
    assert backbone["null"] == "wv_vs_t" and backbone["backbone_knows"] == 1 and backbone["fires"] is False
    # Holm over the four figures with a p: the smallest times 4, and so on, never above 1
    ps = sorted(f["p"] for p in ("order", "swap", "backbone") for f in block[p].values())
    assert sorted(f["p_adjusted"] for p in ("order", "swap", "backbone") for f in block[p].values()) == \
        pytest.approx([min(1.0, 3 * ps[0]), *[1.0] * 2])
    want = bootstrap_paired_difference({0: 1, 1: 1, 2: 1, 3: 0}, {0: 0, 1: 1, 2: 0, 3: 0}, seed=0)
    assert (swap["image_dependence_low"], swap["image_dependence_high"]) == pytest.approx((want.low, want.high))
    assert block["fired"] == [] and not {"flags", "more_flags", "rows"} & set(order)


def test_sample_flags_name_each_sample_and_only_the_probes_that_ran(run_dir):
    flags = sample_flags(open_run(run_dir))
    backbone = {"backbone_knows": False, "right_in_t": True}
    assert flags[0] == {"drops_when_moved": True, "follows_position": True, "reproduces_masked": True,
                        "right_any_image": False, "same_answer_any_image": False, **backbone}
    assert flags[1] == {"drops_when_moved": False, "follows_position": False, "reproduces_masked": False,
                        "right_any_image": False, "same_answer_any_image": True, **backbone}
    assert flags[2] == {"drops_when_moved": False, "follows_position": False, "reproduces_masked": True,
                        "right_any_image": False, "same_answer_any_image": False, **backbone, "backbone_knows": True}
    assert flags[3] == {"right_any_image": False, "same_answer_any_image": True}  # asked only by swap (no t)
    (run_dir / "swap-v.jsonl").unlink()
    assert "same_answer_any_image" not in sample_flags(open_run(run_dir))[0]


def _letter_run(run_dir, memorised, answers="ABCD"):
    """30 samples in wv and v whose answers cycle through ``answers``; each reply is the original
    answer's letter in every order (a memorised letter, right only in the original order) on the
    ``memorised`` samples, and "A" in every order on the others (a preference for A)."""
    letter = [answers[i % len(answers)] for i in range(30)]
    lines = [_order_lines(i, ABCD, letter[i], [letter[i] if i in memorised else "A"] * 4) for i in range(30)]
    plain, rotated = zip(*lines)
    for mode in ("wv", "v"):
        write_records(run_dir / f"{mode}.jsonl", [r.__class__.from_dict({**r.to_dict(), "mode": mode}) for r in plain])
        write_records(run_dir / f"order-{mode}.jsonl",
                      [r.__class__.from_dict({**r.to_dict(), "mode": mode}) for rs in rotated for r in rs])
    (run_dir / "swap-v.jsonl").unlink(missing_ok=True)
    return compute_scores(run_dir)["probes"]


def test_order_fires_on_a_memorised_letter_and_not_on_a_letter_preference(run_dir):
    # a model that answers "A" whatever it is asked, on a benchmark whose answers are all A: right in
    # the original order, wrong in every rotation, sensitivity 100 with a tight interval; yet a
    # preference for A explains every hit, so the letter-adjusted test does not fire (the old rule,
    # an interval clear of 0, fired here)
    block = _letter_run(run_dir, memorised=set(), answers="A")
    fig = block["order"]["wv"]
    assert fig["sensitivity_low"] == 100.0 and fig["p"] == pytest.approx(1.0) and fig["fires"] is False
    assert block["fired"] == []
    # the same preference where the answers stand at A, B, C and D: it is right where the answer is A,
    # in every order alike (the rotations bring each answer to A once): no evidence either
    block = _letter_run(run_dir, memorised=set(), answers="ABCD")
    assert block["order"]["wv"]["p"] > 0.05 and block["fired"] == []
    # half the samples memorised (their own letter in every order, right only in the original order):
    # more original-order hits than the letters predict, in v and wv alike
    block = _letter_run(run_dir, memorised=set(range(0, 30, 2)), answers="ABCD")
    for mode in ("wv", "v"):
        fig = block["order"][mode]
        assert fig["p"] < 0.001 and fig["p_adjusted"] < 0.05 and fig["fires"] is True, mode
        assert fig["letter_expected"] < fig["original"]
    assert block["fired"] == ["order"]


def test_a_run_without_probes_has_no_block_and_a_repeated_key_is_one_line(run_dir, tmp_path):
    for f in run_dir.glob("*-*.jsonl"):
        f.unlink()
    assert "probes" not in compute_scores(run_dir)
    rec = _rec(0, "v", "A", "A", ABCD, probe="swap", variant="swap", key="0:swap", image_from=1)
    write_records(run_dir / "swap-v.jsonl", [rec, rec])
    from mmstar.errors import DataError

    with pytest.raises(DataError, match=r"swap-v.jsonl, row 2: key '0:swap' appears more than once"):
        open_run(run_dir)


def test_leaderboard_probe_columns_appear_with_probes_only(run_dir, tmp_path):
    from mmstar.metrics.leaderboard import COLUMNS, PROBE_COLUMNS, build_rows, write_csv

    rows = build_rows([open_run(run_dir)])
    write_csv(rows, tmp_path / "with.csv")
    header = (tmp_path / "with.csv").read_text().splitlines()[0].split(",")
    assert header == COLUMNS + PROBE_COLUMNS
    assert {"order_circular_wv", "order_circular_wv_low", "order_sensitivity_t_high", "slot_rate_t", "swap_S",
            "image_dependence_low", "swap_excess_high", "probes_fired"} <= set(header)
    row = rows[0]
    assert row["order_circular_wv"] == 33.33 and row["slot_rate_t"] == 50.0 and row["swap_S"] == 25.0
    assert row["image_dependence"] == 50.0 and row["order_circular_v"] is None and row["probes_fired"] == ""
    # the verdicts' p's (3 significant digits); None where the verdict did not run or has no test
    block = compute_scores(run_dir)["probes"]
    adjusted = block["backbone"]["t"]["p_adjusted"]
    assert row["backbone_t_p"] == 0.5 and row["backbone_t_p_adjusted"] == float(f"{adjusted:.3g}")
    assert row["swap_v_p"] == float(f"{block['swap']['v']['p']:.3g}") and row["order_wv_p"] == 1.0
    assert row["slots_t_p"] is None and row["order_v_p"] is None and row["backbone_gap"] == pytest.approx(-33.33)
    for f in run_dir.glob("*-*.jsonl"):
        f.unlink()
    write_csv(build_rows([open_run(run_dir)]), tmp_path / "without.csv")
    assert (tmp_path / "without.csv").read_text().splitlines()[0].split(",") == COLUMNS
    assert set(json.loads(json.dumps(build_rows([open_run(run_dir)])))[0]) == set(COLUMNS)  # no probe keys
