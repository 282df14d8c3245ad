"""The demo benchmark generator: the bundled data is what ``generate()`` makes, and ``vary_order``
gives each sample its own option order (the answer moved with its text), so no position names a value."""

from mmstar.demo_data import canonical, generate


def _letters_per_value(bench) -> dict[tuple[str, str], set[str]]:
    seen: dict[tuple[str, str], set[str]] = {}
    for s in bench:
        seen.setdefault((s.l2_category, s.options[s.answer]), set()).add(s.answer)
    return seen


def test_fixed_order_names_each_value_by_one_letter():
    assert all(len(v) == 1 for v in _letters_per_value(generate(per_axis=8, seed=4)).values())


def test_varied_order_moves_answers_and_keeps_everything_else():
    fixed, varied = generate(per_axis=30, seed=4), generate(per_axis=30, seed=4, vary_order=True)
    assert len(fixed) == len(varied) == 30 * 18
    letters = _letters_per_value(varied)
    assert sum(len(v) >= 2 for v in letters.values()) >= 0.9 * len(letters)
    for s in varied:
        # the question embeds the options in the loader's style and agrees with the parsed options
        body = s.question.split("\nOptions: ")[1]
        assert body == ", ".join(f"{k}: {v}" for k, v in s.options.items())
        assert s.answer in s.options and len(set(s.options.values())) == 4
        back = canonical(s)  # the question type's fixed order again, the answer moved with its text
        assert back.options[back.answer] == s.options[s.answer]
    twice = [generate(per_axis=2, seed=9, vary_order=True).fingerprint() for _ in range(2)]
    assert twice[0] == twice[1]  # seeded
    # answer letters spread over A-D within each axis
    for axis in {s.l2_category for s in varied}:
        answers = [s.answer for s in varied if s.l2_category == axis]
        assert len(set(answers)) >= 3, (axis, answers)
