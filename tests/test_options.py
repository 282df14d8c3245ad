import pandas as pd
import pytest

from mmstar.options import OptionParseError, options_from_columns, parse_question


def test_inline_options_with_commas():
    q = "Where is this?\nOptions: A: Washington, D.C., B: New York, C: Paris, France, D: nan"
    p = parse_question(q)
    assert p.options == {"A": "Washington, D.C.", "B": "New York", "C": "Paris, France", "D": "nan"}
    assert p.stem == "Where is this?" and p.style == "inline"


def test_choices_style_and_bare_paren_lines():
    q = "Hint: Please answer.\nQuestion: How many?\nChoices:\n(A) 7\n(B) 5\n(C) 9"
    p = parse_question(q)
    assert p.options == {"A": "7", "B": "5", "C": "9"}
    assert p.stem == "Hint: Please answer.\nQuestion: How many?"
    q2 = "Question: What percentage?\n(A) 40\n(B) 50\n(C) 60\n(D) 70"
    assert parse_question(q2).options == {"A": "40", "B": "50", "C": "60", "D": "70"}


def test_no_options_is_an_error():
    with pytest.raises(OptionParseError):
        parse_question("What is this?")
    with pytest.raises(OptionParseError):
        parse_question("Q?\nOptions: A: only one")


def test_columns_stop_at_first_empty_and_keep_literal_nan():
    assert options_from_columns({"A": "x", "B": "nan", "C": float("nan"), "D": "z"}) == {"A": "x", "B": "nan"}
    assert options_from_columns({"A": "1", "B": "2", "C": "3", "D": None}) == {"A": "1", "B": "2", "C": "3"}
    assert options_from_columns({"question": "q"}) == {}


def test_every_reference_question_parses(reference_xlsx):
    df = pd.read_excel(reference_xlsx, dtype=str, keep_default_na=False)
    sizes = {}
    for index, question, answer in zip(df["index"], df["question"], df["answer"]):
        parsed = parse_question(question)
        sizes[int(index)] = len(parsed.options)
        assert answer in parsed.options, index
        assert all(v.strip() for v in parsed.options.values()), index
    assert len(sizes) == 1500
    assert sizes[855] == 3
    # index 1199 ends with "(D)8" (no space): it is a fourth option, and its answer is A
    assert [i for i, n in sizes.items() if n != 4] == [855]
    nan_rows = [i for i, q in zip(df["index"], df["question"]) if ": nan" in q]
    assert nan_rows, "the reference data keeps literal 'nan' options"
    assert parse_question(df.question[df["index"] == "49"].iloc[0]).options["D"] == "nan"
