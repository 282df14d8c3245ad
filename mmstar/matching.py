"""Answer matching: the official MMStar matcher (kept for comparability) and a robust extractor.

Both are benchmark-agnostic functions of (response, answer/options). The robust extractor returns
the chosen letter or ``None`` ("unparsed"); it never guesses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


def official_match(prediction: object, answer: object) -> bool:
    """The official MMStar rule, character for character (``str()`` of both, as the official code).

    Lowercase, strip, newline -> space; a hit if the answer letter is the first character, or
    follows ``(``, ``option `` or ``the answer is `` at the very start. Known fault kept on purpose:
    any reply starting with "a" counts as option A.
    """
    ans = str(answer).lower().strip().replace("\n", " ")
    pred = str(prediction).lower().strip().replace("\n", " ")
    if not pred or not ans:
        return False
    if ans == pred[0]:
        return True
    if pred[0] == "(" and len(pred) > 1 and ans == pred[1]:
        return True
    if pred[:7] == "option " and len(pred) > 7 and ans == pred[7]:
        return True
    return pred[:14] == "the answer is " and len(pred) > 14 and ans == pred[14]


_CLEAN = re.compile(r"[*_`#]+|</?\w+>")  # markdown emphasis and <answer>-style tags
_ONLY_LETTER = re.compile(r"^[\s(\[]*(?:option|choice)?\s*[(\[]?([A-Ja-j])[)\]]?[\s.:)]*$", re.I)
_LEADING_LETTER = re.compile(r"^[(\[]?([A-J])(?:[)\]][\s.:]*|[.:]\s*|\s+-\s+|\s+(?=\S))")
_STATEMENT_CI = re.compile(
    r"(?:final answer|correct answer|correct option|right answer|best answer|answer|best guess|guess|"
    r"correct choice|option|choice|choose|select|pick)",
    re.I,
)
# what follows an answer keyword: "is (B)", ": C", "would be option d." (a lower-case letter only
# when nothing follows it, so "the answer is a cat" is not option A)
_STATEMENT_TAIL = re.compile(
    r"\s*(?:would be|should be|is|are|:|=|-)?\s*(?:(?:the )?(?:option|choice|letter)\s*)?:?\s*"
    r"(?:\(([A-Ja-j])\)|\[([A-Ja-j])\]|([A-J])(?![\w'])|([a-j])(?=\s*(?:$|[.,;:!)\]])))"
)
# "the answer is 4" / "Answer: dark red": an option's text named by a final answer statement
_ANSWER_TAIL = re.compile(r"(?:answer|choice|option)\s*(?:is|would be|should be|:)\s*([^\n]+?)\s*[.!]?\s*$", re.I)
_SEVERAL = re.compile(r"\(?\b([A-J])\)?\s*(?:or|and|,|/|&)\s*\(?([A-J])\b")
_REFUSAL = re.compile(
    r"\b(?:cannot|can ?not|can't|unable to|not possible to|impossible to|don't|do not)\s+"
    r"(?:be\s+)?(?:determine|determined|answer|tell|see|view|identify|know|provide|access|say)"
    r"|\bI'?m sorry\b|\bno image\b|\bnone of the (?:above|options)\b|\bnot enough information\b",
    re.I,
)
_CANDIDATE = re.compile(r"\(([A-J])\)|\b([A-J])\b(?=\s*(?:$|[.,;:!)]|\s+(?:is|seems|appears|would)\b))")


def _letters(options: Mapping[str, str] | None) -> str:
    return "".join(options) if options else "ABCD"


def _statement_letters(text: str, allowed: str) -> list[str]:
    """Letters named by explicit answer statements ("the answer is (B)", "Answer: C"), in order."""
    found = []
    for head in _STATEMENT_CI.finditer(text):
        m = _STATEMENT_TAIL.match(text, head.end())
        if m:
            letter = next(g for g in m.groups() if g).upper()
            if letter in allowed:
                found.append(letter)
    return found


def _option_text_letter(text: str, options: Mapping[str, str]) -> str | None:
    """A reply that is (or contains exactly one of) the options' texts, without a letter."""
    norm = _normalise(text)
    if not norm:
        return None
    exact = [k for k, v in options.items() if _normalise(v) and _normalise(v) == norm]
    if len(exact) == 1:
        return exact[0]
    contained = [
        k for k, v in options.items()
        if len(_normalise(v)) >= 2 and re.search(rf"(?<!\w){re.escape(_normalise(v))}(?!\w)", norm)
    ]
    # prefer the longest match, but only when the shorter ones are part of it ("red" in "dark red")
    if contained:
        longest = max(contained, key=lambda k: len(_normalise(options[k])))
        others = [k for k in contained if k != longest]
        if all(_normalise(options[k]) in _normalise(options[longest]) for k in others):
            return longest
    return None


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s%.-]", " ", text.lower())).strip(" .")


def extract_choice(response: str | None, options: Mapping[str, str] | None = None) -> str | None:
    """The option letter a free-text reply chose, or ``None`` when it cannot be told.

    Order: a bare letter; an explicit answer statement (the last one wins, as chain-of-thought
    replies end with their answer); a leading ``B.`` / ``(B)``; the text of exactly one option;
    a single distinct letter named in the text. Refusals and several different letters without a
    final statement give ``None``.
    """
    if response is None:
        return None
    allowed = _letters(options)
    text = _CLEAN.sub("", str(response)).strip()
    if not text:
        return None
    m = _ONLY_LETTER.match(text)
    if m:
        letter = m.group(1).upper()
        return letter if letter in allowed else None
    stated = _statement_letters(text, allowed)
    if stated:
        return stated[-1]
    several = _SEVERAL.search(text)
    if several and several.group(1) != several.group(2):
        return None
    m = _LEADING_LETTER.match(text)
    if m and m.group(1) in allowed and not _is_article(text, m.group(1)):
        return m.group(1)
    if _REFUSAL.search(text):
        return None
    if options:
        tail = _ANSWER_TAIL.search(text)
        if tail:
            named_text = _normalise(tail.group(1))
            exact = [k for k, v in options.items() if _normalise(v) == named_text]
            if len(exact) == 1:
                return exact[0]
        by_text = _option_text_letter(text, options)
        if by_text:
            return by_text
    named = {a or b for a, b in _CANDIDATE.findall(text)} & set(allowed)
    return named.pop() if len(named) == 1 else None


def _is_article(text: str, letter: str) -> bool:
    """'A man is ...' starts with the article, not option A; 'I think' is the pronoun."""
    if letter not in ("A", "I"):
        return False
    return bool(re.match(rf"^{letter}\s+[a-z]", text))
