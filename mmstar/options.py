"""Parse multiple-choice options out of question text or option columns.

The released MMStar questions embed their options in three styles:

* ``<q>\\nOptions: A: ..., B: ..., C: ..., D: ...`` (option texts may contain commas),
* ``Hint: ...\\nQuestion: ...\\nChoices:\\n(A) ...\\n(B) ...`` (sometimes ``(D)8`` with no space),
* the same without the ``Choices:`` line.

Literal ``nan`` option texts are a known fault of the released data and are kept as text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

LETTERS = "ABCDEFGHIJ"


class OptionParseError(ValueError):
    pass


@dataclass(frozen=True)
class ParsedQuestion:
    stem: str  # the question without its option list (hint kept)
    options: dict[str, str]
    style: str  # "inline" | "choices" | "columns"


_INLINE_HEAD = re.compile(r"(?:^|\n)Options:\s*(?=A: )")
_PAREN_LINE = re.compile(r"^\(([A-J])\)\s?(.*)$")


def _parse_inline(body: str) -> dict[str, str]:
    """``A: x, B: y, C: z`` -> {A: x, ...}; each next letter is searched as ``, L: `` in order."""
    if not body.startswith("A: "):
        raise OptionParseError("option list does not start with 'A: '")
    starts: list[tuple[str, int, int]] = [("A", 0, 3)]  # letter, marker start, text start
    for letter in LETTERS[1:]:
        marker = f", {letter}: "
        pos = body.find(marker, starts[-1][2])
        if pos < 0:
            break
        starts.append((letter, pos, pos + len(marker)))
    options = {}
    for i, (letter, _marker, text_start) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else len(body)
        options[letter] = body[text_start:end].strip()
    return options


def _parse_paren_lines(lines: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    expected = iter(LETTERS)
    for line in lines:
        m = _PAREN_LINE.match(line.strip())
        if m and m.group(1) == next(expected, None):
            options[m.group(1)] = m.group(2).strip()
        elif options:
            # a continuation line of the previous option's text
            last = list(options)[-1]
            options[last] = (options[last] + "\n" + line).strip()
            expected = iter(LETTERS[LETTERS.index(last) + 1 :])
        else:
            raise OptionParseError(f"unexpected line in choices: {line!r}")
    return options


def parse_question(question: str) -> ParsedQuestion:
    """Split an MMStar-style question into stem and options; raises OptionParseError."""
    # the last "Options:" header wins: a stem could mention the word
    m = next(reversed(list(_INLINE_HEAD.finditer(question))), None)
    if m is not None:
        options = _parse_inline(question[m.end() :])
        return _checked(ParsedQuestion(question[: m.start()].rstrip(), options, "inline"))

    lines = question.split("\n")
    for i, line in enumerate(lines):
        if line.strip() == "Choices:":
            stem = "\n".join(lines[:i]).rstrip()
            return _checked(ParsedQuestion(stem, _parse_paren_lines(lines[i + 1 :]), "choices"))
    for i, line in enumerate(lines):
        if line.startswith("(A)"):
            stem = "\n".join(lines[:i]).rstrip()
            return _checked(ParsedQuestion(stem, _parse_paren_lines(lines[i:]), "choices"))
    raise OptionParseError("no option list found (expected 'Options: A: ...' or '(A) ...' lines)")


def _checked(parsed: ParsedQuestion) -> ParsedQuestion:
    if len(parsed.options) < 2:
        raise OptionParseError(f"found {len(parsed.options)} option(s); a multiple-choice question needs 2+")
    return parsed


def options_from_columns(row: Mapping[str, object]) -> dict[str, str]:
    """Options from ``A``..``J`` columns; an absent or empty cell ends the list (3-option rows).

    pandas turns empty cells into NaN floats, which are dropped; the *string* ``"nan"`` is kept.
    """
    options: dict[str, str] = {}
    for letter in LETTERS:
        value = row.get(letter)
        if value is None or (isinstance(value, float) and value != value) or str(value).strip() == "":
            break
        options[letter] = str(value)
    return options


def format_options_block(options: Mapping[str, str]) -> str:
    """``Options:\\nA. x\\nB. y`` as VLMEvalKit and the official 2-shot examples lay them out."""
    return "Options:\n" + "\n".join(f"{k}. {v}" for k, v in options.items())
