import json
from pathlib import Path

import pytest

from mmstar.matching import extract_choice, official_match

CASES = json.loads((Path(__file__).parent / "data" / "extraction_cases.json").read_text())


def test_case_table_is_large_enough():
    assert len(CASES) >= 80
    assert sum(c["expected"] is None for c in CASES) >= 20  # unparsed is a real outcome


@pytest.mark.parametrize("case", CASES, ids=[f"{i}:{c['response'][:30]!r}" for i, c in enumerate(CASES)])
def test_robust_extraction(case):
    assert extract_choice(case["response"], case["options"]) == case["expected"]


@pytest.mark.parametrize(
    ("prediction", "answer", "hit"),
    [
        ("B", "B", True), ("b", "B", True), (" B\n", "B", True), ("(B) cat", "B", True),
        ("Option B", "B", True), ("option b.", "B", True), ("The answer is B", "B", True),
        ("the answer is (B)", "B", False),  # the official rule only takes the character after "is "
        ("Answer: B", "B", False), ("A man is sitting", "A", True),  # the known fault, kept
        ("", "A", False), ("nan", "N", True), ("(", "A", False), ("option ", "A", False),
        ("\nC", "C", True), ("c) blue", "C", True), ("The answer is", "A", False),
    ],
)
def test_official_matcher(prediction, answer, hit):
    assert official_match(prediction, answer) is hit


def test_extractor_never_guesses_on_ambiguous_input():
    for text in ["A or B", "I don't know", "", "The answer is a cat."]:
        assert extract_choice(text, {"A": "x", "B": "y"}) is None
