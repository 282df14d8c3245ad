"""Rewrites that turn a reply's structure and language into the plain statements the commitment
rules read: struck-out text dropped, escaped tool-call arguments decoded, display math and LaTeX
wrappers unwrapped, markdown tables turned into "Header: cell" lines, quoted letters unquoted,
look-alike letters mapped, answer phrases of other languages put in English, ordinals named as
letters. Each is a table-driven pass; none guesses."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from .lexicon import ANSWER_PHRASES, LETTER_SUFFIXES, LOOKALIKES, ORDINALS

_STRUCK = re.compile(r"~~.*?~~|<(del|s|strike)>.*?</\1>", re.S)
# "arguments": "{\"answer\": \"B\"}" -> "arguments": {"answer": "B"}
_ESCAPED_ARGS = re.compile(r'"(?:arguments|parameters|input|args)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_DISPLAY = re.compile(r"\\\[|\\\]|\$\$|\\\(|\\\)|\\(?:quad|qquad|;|,|!)")
_TEX_WRAP = re.compile(
    r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox|boldsymbol|mathit|textit|operatorname)\s*\{([^{}]*)\}")
_TABLE_ROW = re.compile(r"^[ \t]*\|(.+)\|([^|\n]*)$")  # the row, and any text after its last bar
_TABLE_RULE = re.compile(r"^[\s|:\-]+$")
_HEADERS = re.compile(r"answer|choice|option|prediction|selected|final|result|ответ|resposta|cevap|đáp án|答案|정답",
                      re.I)
# a quoted letter ('B', “B”, «B», 「B」); ASCII-quoted JSON values ("answer": "B") are left to the JSON rule
_QUOTED = re.compile(r"[“”‘’«»「」『』]([A-J])[“”‘’«»「」『』]|(?<![:\[{,]\s)(?<![:\[{,])[\"']([A-J])[\"']")
_LOOKALIKE = re.compile(rf"(?<![^\W\d_])([{''.join(LOOKALIKES)}])(?![^\W\d_])")


def _phrase_pattern(pattern: str) -> str:
    lead = r"(?<!\w)" if pattern[0].isalpha() or pattern[0] == "(" else ""
    tail = r"(?!\w)" if pattern[-1].isalpha() else ""
    return lead + "(?:" + pattern + ")" + tail


_PHRASES = re.compile("|".join(f"(?P<p{i}>{_phrase_pattern(p)})" for i, (_l, p, _r) in enumerate(ANSWER_PHRASES)),
                      re.I)
_PHRASE_OUT = {f"p{i}": out for i, (_l, _p, out) in enumerate(ANSWER_PHRASES)}
# (the non-ASCII class without IGNORECASE: under it Turkish "ı" folds to an ASCII "I")
_NON_ENGLISH = re.compile(r"[^\x00-\x7f]|(?i:resp|cevap|antwort|r[ée]ponse|alternativa|letra|yan[ıi]t|se[çc]enek)")
_SUFFIX = re.compile(rf"(?<![A-Za-z])([A-J]){LETTER_SUFFIXES}")
_ORDINAL = re.compile(
    rf"(?:\bthe\s+)?(?<![A-Za-z])({'|'.join(sorted(ORDINALS, key=len, reverse=True))})(?:\s*(?:个|個))?\s*"
    r"(?:option|choice|one|alternative|item|选项|選項|项|項)(?!\w)", re.I)
_OPTION_NUMBER = re.compile(r"\b(?:option|choice|alternative)\s*(?:number\s*|no\.?\s*|#\s*)?"
                            r"([1-9]|one|two|three|four|five|six)(?![\w.,]*\d)", re.I)
_CARDINAL = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6"}


def _decode_args(m: re.Match[str]) -> str:
    try:
        decoded = json.loads(f'"{m.group(1)}"')
    except json.JSONDecodeError:
        return m.group()
    return m.group().split(":", 1)[0] + ": " + decoded


def _unwrap_tex(text: str) -> str:
    for _ in range(3):  # \text{\textbf{B}} nests
        new = _TEX_WRAP.sub(r"\1", text)
        if new == text:
            break
        text = new
    return _DISPLAY.sub(" ", text)


def _tables(text: str) -> str:
    """A markdown table as lines: "Header: cell" for an answer-like column, else "cell: cell"."""
    if "|" not in text:
        return text
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        if not _TABLE_ROW.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        block = []
        while i < len(lines) and _TABLE_ROW.match(lines[i]):
            block.append(lines[i])
            i += 1
        rows, after = [], []
        for r in block:
            m = _TABLE_ROW.match(r)
            if not _TABLE_RULE.match(r):
                rows.append([c.strip() for c in m.group(1).split("|")])
            if m.group(2).strip():
                after.append(m.group(2).strip())
        has_header = len(block) > 1 and _TABLE_RULE.match(block[1]) is not None
        header = rows[0] if has_header else None
        body = rows[1:] if has_header else rows
        cols = [j for j, h in enumerate(header or []) if _HEADERS.search(h)]
        for row in body:
            if header and cols and len(body) == 1:
                out.extend(f"{header[j]}: {row[j]}" for j in cols if j < len(row))
            else:
                out.append(": ".join(c for c in row if c))
        out.extend(after)
    return "\n".join(out)


def _ordinals(text: str, letters: str, numeric_texts: frozenset[str]) -> str:
    def named(m: re.Match[str]) -> str:
        n = ORDINALS[m.group(1).lower()]
        index = len(letters) if n == -1 else n
        return f"option {letters[index - 1]}" if 1 <= index <= len(letters) else m.group()

    def numbered(m: re.Match[str]) -> str:
        digit = _CARDINAL.get(m.group(1).lower(), m.group(1))
        if digit in numeric_texts or m.group(1) in numeric_texts:  # "option 3" where an option's text is 3: which one?
            return "option ?"
        n = int(digit)
        return f"option {letters[n - 1]}" if n <= len(letters) else m.group()

    return _OPTION_NUMBER.sub(numbered, _ORDINAL.sub(named, text))


PASSES: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("struck", lambda t: _STRUCK.sub(" ", t) if ("~~" in t or "</" in t) else t),
    ("tool_args", lambda t: _ESCAPED_ARGS.sub(_decode_args, t) if '\\"' in t else t),
    ("tex", lambda t: _unwrap_tex(t) if "\\" in t or "$$" in t else t),
    ("table", _tables),
    ("quoted", lambda t: _QUOTED.sub(lambda m: m.group(1) or m.group(2), t)),
    ("lookalike", lambda t: _LOOKALIKE.sub(lambda m: LOOKALIKES[m.group(1)], t)),
    ("language", lambda t: _SUFFIX.sub(r"\1", _PHRASES.sub(lambda m: _PHRASE_OUT[m.lastgroup or ""], t))
     if _NON_ENGLISH.search(t) else t),
)


def rewrite(text: str, letters: str, numeric_texts: frozenset[str] = frozenset()) -> tuple[str, frozenset[str]]:
    """All passes, in order; then ordinals against the offered ``letters``. Also the letters that only
    an ordinal named (the rule that decides on one of them is reported as ``ordinal``)."""
    for _name, step in PASSES:
        text = step(text)
    named = _ordinals(text, letters, numeric_texts)
    if named == text:
        return text, frozenset()
    before = {m.group() for m in re.finditer(r"(?<![A-Za-z])[A-J](?![A-Za-z])", text)}
    return named, frozenset(re.findall(r"option ([A-J])", named)) - before
