"""Answer matching: the official MMStar matcher (kept for comparability) and a robust extractor.

Both are benchmark-agnostic functions of (response, answer/options). The robust extractor returns
the chosen letter or ``None`` ("unparsed") and the rule that decided (``extract_answer``); it never
guesses. It reads replies as current models write them: the thinking block set aside (see
``thinking.py``), ``\boxed{..}``, JSON, CJK answer phrases, "final answer" statements, an option's
text or numeric value in a sentence. ``tests/data/extraction_cases.json`` pins its behaviour.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from .thinking import split_reasoning


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


def official_readable(prediction: object, letters: Iterable[str]) -> bool:
    """Whether the official rule can read a letter at all: the reply's first character, or the one
    after ``(``, ``option `` or ``the answer is `` at the start, is one of the option ``letters``
    (normalised as ``official_match`` does). Format compliance counts these replies: a model that
    answers in prose scores low under the official matcher whatever it knows."""
    pred = str(prediction).lower().strip().replace("\n", " ")
    if not pred:
        return False
    valid = {str(k).lower() for k in letters}
    for prefix in ("", "(", "option ", "the answer is "):
        if pred.startswith(prefix) and len(pred) > len(prefix) and pred[len(prefix)] in valid:
            return True
    return False


_CLEAN = re.compile(r"[*_`#$]+|</?\w+>|<\|\w+\|>")  # markdown, $math$ and <answer> / <|box|>-style tags
_ONLY_LETTER = re.compile(r"^[\s(\[]*(?:option|choice)?\s*[(\[]?([A-Ja-j])[)\]]?[\s.:)]*$", re.I)
_LEADING_LETTER = re.compile(
    r"^(?:(?i:option|choice)\s*)?[(\[]?(?:([A-J])(?:[)\]][\s.:]*|[.:]\s*|\s+-\s+|\s+(?=\S))"
    r"|([a-j])(?:[)\]]|[.:]?[ \t]*\n|\s+(?=[^a-z0-9\s])))")
# answer keywords; a bare "option"/"choice" only with a verb or colon after it: "Option A is wrong"
# in an explanation names a letter, it does not answer
_STATEMENT_CI = re.compile(
    r"(?:final answer|correct answer|correct option|right answer|best answer|answer|best guess|guess|"
    r"correct choice|choose|select|pick|(?:option|choice)(?=\s*(?::|=|is\b|would be|should be)))",
    re.I,
)
# a negated statement is no answer: "I would not choose A", "I don't think the answer is A"
_NEGATED = re.compile(r"(?:\bnot|n't|\bnever)\s+(?:\w+\s+){0,2}$", re.I)
# "B is the answer", "option C is correct", "(D) is the right choice"
_AFFIRM = re.compile(
    r"(?<![A-Za-z])(?:(?:option|choice)\s*)?\(?([A-J])\)?\s+is\s+(?:the\s+)?(?:"
    r"(?:correct|right|best|most likely|most appropriate)\s+(?:answer|option|choice)"
    r"|(?:correct|right)(?=\s*(?:[.,;!]|$))|answer\b)",
    re.I,
)
# what follows an answer keyword: "is (B)", ": C", "would be option d." (a lower-case letter only
# when nothing follows it, so "the answer is a cat" is not option A)
_STATEMENT_TAIL = re.compile(
    r"\s*(?:would be|should be|is|are|:|=|-)?\s*(?:(?:the )?(?:option|choice|letter)\s*)?:?\s*"
    r"(?:\(([A-Ja-j])\)|\[([A-Ja-j])\]|([A-J])(?![\w'])|([a-j])(?=[ \t]*(?:$|\n|[.,;:!)\]]|\((?![a-z]))))"
)
# "the answer is 4" / "Answer: dark red": an option's text named by a final answer statement
_ANSWER_TAIL = re.compile(r"(?:answer|choice|option)\s*(?:is|would be|should be|:)\s*([^\n]+?)\s*[.!]?\s*$", re.I)
_SEVERAL = re.compile(r"\(?\b([A-J])\)?\s*(?:or|and|,|/|&)\s*\(?([A-J])\b")
_REFUSAL = re.compile(
    r"\b(?:cannot|can ?not|can't|unable to|not possible to|impossible to|don't|do not)\s+"
    r"(?:be\s+)?(?:determine|determined|answer|tell|see|view|identify|know|provide|access|say)"
    r"|\bI'?m sorry\b|\bno image\b|\bnone of the (?:above|options)\b|\bnot enough information\b"
    r"|无法(?:确定|判断|回答|看到|识别)|不能确定|没有(?:提供)?图片|都不(?:对|正确)|判断できません|わかりません"
    r"|알 수 없|판단할 수 없",
    re.I,
)
# a letter the reply leans on ("I think C is correct.", "Probably B."); "Option A is red" describes
# a reply that ends on a letter of its own (a new sentence or line): chain-of-thought that concludes "... no.\n[C]"
_TAIL_LETTER = re.compile(
    r"(?:^|[.!?:;]\s+|\n\s*)(?:[(\[]([A-Ja-j])[)\]]|(?i:option|choice)\s*([A-Ja-j])[).:!]?|([A-J])[).:!]?)\s*$")
# "Option A (red) is wrong. ...", "C is tempting, however ...": a leading letter that is being weighed
_WEIGHED = re.compile(r"[)\]]?\s*(?:\([^)]*\)\s*)?(?:is|are|seems|looks|was|would|could|might|may)\b", re.I)
_LINE_LETTER = re.compile(r"(?m)^[ \t]*(?:\(([A-J])\)|([A-J])[).:]?)[ \t]*$")
_LAST_LETTER = re.compile(r"(?<![A-Za-z'])\(?([A-J])\)?[.)\]!]?\s*$")
# letters a reply names: any of them conflicts with an option text; only a picked one ("(D) fits",
# "Probably B.") may decide, and only when it is the one letter named ("Option A is red" describes)
_CANDIDATE = re.compile(
    r"\(([A-J])\)|(?<!option )(?<!choice )\b([A-J])\b(?=[ \t]*(?:$|\n|[.,;:!)]|\s+(?:is|seems|appears|would)\b))",
    re.I)
_PICKED = re.compile(r"\(([A-J])\)|(?<!option )(?<!choice )\b([A-J])\b(?=[ \t]*(?:$|\n|[.,;:!)]))", re.I)

_ABSENT = object()  # a rule that found nothing to look at (as opposed to something it could not resolve)
_CONFLICT = "conflict"  # several options' texts/values appear: the reply is ambiguous
_BOXED_HEAD = re.compile(r"\\boxed\s*\{|<\|begin_of_box\|>")
_TEX_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_FENCE = re.compile(r"```(?:json)?")
_JSON_OBJECT = re.compile(r"\{[^{}]*\}")
_JSON_KEYS = ("answer", "final_answer", "choice", "option", "correct_answer", "correct_option", "selected_option",
              "prediction", "答案")
_FINAL_CI = re.compile(r"final answer|final choice", re.I)
_CJK_HEAD = (r"(?:最终答案|最終答案|最終的な答え|최종\s*답|최종\s*정답|正确答案|正確答案|正确选项|答案|应选|故选|"
             r"选择|選択|选|選|回答|答え|正解|정답|답)")
_CJK_ANSWER = re.compile(
    _CJK_HEAD + r"(?:\s*(?:应该|应|是|为|為|は|은|는|이|:|：)\s*)*(?:选项|選項)?\s*[(\[【]?\s*([A-J])(?![A-Za-z])")
_CJK_FINAL = re.compile(r"^(?:最终|最終|최종)")
_CJK_SEVERAL = re.compile(r"(?<![A-Za-z])([A-J])\s*(?:或者|或|和|与|、|/|または|또는)\s*([A-J])(?![A-Za-z])")
_NUMBER = re.compile(r"(?<![A-Za-z0-9.])(-?\d+(?:\.\d+)?)(?!\.?\d|[A-Za-z])")
_NUMERIC_OPTION = re.compile(r"^[$€£¥]?\s*(-?\d+(?:\.\d+)?)\s*(?:%|°|[a-zA-Z²³]{1,8})?\.?$")


def _boxed(text: str, options: Mapping[str, str] | None) -> object:
    """``\\boxed{..}`` (or GLM's ``<|begin_of_box|>..``): every box must name the same option."""
    contents = []
    for head in _BOXED_HEAD.finditer(text):
        if head.group().startswith("<"):
            end = text.find("<|end_of_box|>", head.end())
            contents.append(text[head.end():end if end >= 0 else len(text)])
            continue
        depth, i = 1, head.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        contents.append(text[head.end():i - 1] if depth == 0 else text[head.end():])
    if not contents:
        return _ABSENT
    choices = {_decide(_TEX_WRAP.sub(r"\1", c), options, nested=True)[0] for c in contents}
    return choices.pop() if len(choices) == 1 else None


def _json_answer(text: str, options: Mapping[str, str] | None) -> object:
    """A JSON object with an answer/choice key (single-quoted Python dicts too)."""
    values = []
    for m in _JSON_OBJECT.finditer(text):
        obj = None
        for candidate in (m.group(), m.group().replace("'", '"')):
            try:
                obj = json.loads(candidate)
                break
            except json.JSONDecodeError:
                continue
        if not isinstance(obj, dict):
            continue
        keys = {str(k).strip().lower(): v for k, v in obj.items()}
        key = next((k for k in _JSON_KEYS if k in keys), None)
        if key is not None and isinstance(keys[key], (str, int, float)):
            values.append(str(keys[key]))
    if not values:
        whole = _FENCE.sub("", text).strip()
        return None if whole.startswith("{") and whole.endswith("}") else _ABSENT
    choices = {_decide(v, options, nested=True)[0] for v in values}
    return choices.pop() if len(choices) == 1 else None


def _final_letters(text: str, allowed: str) -> list[str | None]:
    """Letters named by "final answer" statements (English or CJK), in order."""
    found = _statement_letters(text, allowed, _FINAL_CI)
    found += [m.group(1) for m in _CJK_ANSWER.finditer(text)
              if _CJK_FINAL.match(m.group()) and m.group(1) in allowed]
    return found


def _cjk_letters(text: str, allowed: str) -> list[str]:
    return [m.group(1) for m in _CJK_ANSWER.finditer(text) if m.group(1) in allowed]


def _answer_tail_letter(text: str, options: Mapping[str, str]) -> str | None:
    """"The answer is 4" / "Answer: dark red": the option whose whole text a statement names."""
    tail = _ANSWER_TAIL.search(text)
    if not tail:
        return None
    named_text = _normalise(tail.group(1))
    exact = [k for k, v in options.items() if _normalise(v) == named_text]
    return exact[0] if len(exact) == 1 else None


def _option_value_letter(text: str, options: Mapping[str, str]) -> str | None:
    """Numeric options: "There are 5 apples." chooses the option "5" when no other option's number
    appears in the reply (numbers that are no option's value do not conflict)."""
    values = {}
    for k, v in options.items():
        m = _NUMERIC_OPTION.match(str(v).strip())
        if m:
            values[k] = float(m.group(1))
    if not values:
        return None
    seen = {float(x) for x in _NUMBER.findall(text)}
    hits = [k for k, v in values.items() if v in seen]
    return hits[0] if len(hits) == 1 else _CONFLICT if hits else None


def _letters(options: Mapping[str, str] | None) -> str:
    return "".join(options) if options else "ABCD"


def _statement_letters(text: str, allowed: str, heads: re.Pattern[str] = _STATEMENT_CI) -> list[str | None]:
    """Letters named by explicit answer statements ("the answer is (B)", "Answer: C", "B is the
    answer"), in order; ``None`` for a statement that names several letters ("Final answer: A, C")."""
    found: list[tuple[int, str | None]] = []
    for head in heads.finditer(text):
        if _NEGATED.search(text, max(0, head.start() - 40), head.start()):
            continue
        m = _STATEMENT_TAIL.match(text, head.end())
        if m:
            letter = next(g for g in m.groups() if g).upper()
            at = m.start(next(i for i, g in enumerate(m.groups(), 1) if g))
            if "\n" in text[head.end():at] and not _heading(text, head.start(), at):
                continue  # "... is the right answer\n\n(A) red is not shown": the letter opens a new line
            several = _SEVERAL.match(text, at - 1 if text[at - 1] in "([" else at)
            if several and several.group(1) != several.group(2):
                found.append((head.start(), None))
            elif letter in allowed:
                found.append((head.start(), letter))
    if heads is _STATEMENT_CI:
        found += [(m.start(), m.group(1).upper()) for m in _AFFIRM.finditer(text)
                  if m.group(1).upper() in allowed and not _NEGATED.search(text, max(0, m.start() - 40), m.start())]
    return [letter for _pos, letter in sorted(found, key=lambda f: f[0])]


def _heading(text: str, head_start: int, letter_at: int) -> bool:
    """A statement whose letter sits on a later line counts when it is a heading ("## Answer\nB")
    or ends with a colon ("Final answer:\n\nB")."""
    line_start = text.rfind("\n", 0, head_start) + 1
    return not text[line_start:head_start].strip() or ":" in text[head_start:letter_at]


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
        if len(_normalise(v)) >= 2 and _contains_word(norm, _normalise(v))
    ]
    # prefer the longest match, but only when the shorter ones are part of it ("red" in "dark red")
    if contained:
        longest = max(contained, key=lambda k: len(_normalise(options[k])))
        others = [k for k in contained if k != longest]
        if all(_normalise(options[k]) in _normalise(options[longest]) for k in others):
            return longest
        return _CONFLICT
    return None


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"  # exactly what ``\w`` matches in a str pattern


def _contains_word(haystack: str, needle: str) -> bool:
    r"""``needle`` occurs in ``haystack`` not glued to a word character on either side: the regex
    ``(?<!\w)needle(?!\w)`` without compiling one pattern per option text (the viewer re-judges
    tens of thousands of replies, and Python's regex cache holds only 512 patterns)."""
    start = haystack.find(needle)
    while start != -1:
        end = start + len(needle)
        if (start == 0 or not _is_word_char(haystack[start - 1])) and (
                end == len(haystack) or not _is_word_char(haystack[end])):
            return True
        start = haystack.find(needle, start + 1)
    return False


@lru_cache(maxsize=65536)
def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s%.-]", " ", text.lower())).strip(" .")


@dataclass(frozen=True)
class Extraction:
    """What the robust extractor decided: the letter (or ``None``), the rule that decided it, and
    the reply's thinking text (kept, never matched)."""

    choice: str | None
    rule: str
    reasoning: str | None = None


# rules that leave a reply unparsed
UNPARSED_RULES = ("none", "empty", "refusal", "ambiguous", "truncated_reasoning")


def extract_choice(response: str | None, options: Mapping[str, str] | None = None) -> str | None:
    """The option letter a free-text reply chose, or ``None`` when it cannot be told."""
    return extract_answer(response, options).choice


def extract_answer(response: str | None, options: Mapping[str, str] | None = None, *,
                   finish_reason: str | None = None) -> Extraction:
    """The robust extractor with its reason.

    The thinking part of the reply is set aside first (a reply ending inside it is
    ``truncated_reasoning``). On the answer part, in order: a bare letter; ``\\boxed{..}``; a JSON
    object with an answer key; a "final answer" statement; a Chinese/Japanese/Korean answer phrase;
    any other answer statement (the last one wins); a letter standing on its own (ending the reply,
    alone on a line, or opening it unless it is being weighed); the text or value of exactly one
    option; the one letter the reply picks. Refusals and contradictions give ``None``.
    """
    if response is None:
        return Extraction(None, "empty")
    split = split_reasoning(unicodedata.normalize("NFKC", str(response)))
    if split.truncated:
        return Extraction(None, "truncated_reasoning", split.reasoning)
    choice, rule = _decide(split.answer, options)
    return Extraction(choice, rule, split.reasoning)


Decision = tuple[str | None, str]  # (letter or None, rule)


def _decide(answer_text: str, options: Mapping[str, str] | None, nested: bool = False) -> Decision:
    """The rules in order; the first that decides (a letter, or a definite "unparsed") wins."""
    allowed = _letters(options)
    text = _CLEAN.sub("", answer_text).strip()
    if not text or not re.search(r"\w", text):
        return None, "empty"
    m = _ONLY_LETTER.match(text)
    if m:
        letter = m.group(1).upper()
        return (letter, "letter") if letter in allowed else (None, "none")
    if not nested:  # boxes and JSON values are decided by the rules below, not searched again
        for rule, finder in (("boxed", _boxed), ("json", _json_answer)):
            found = finder(answer_text, options)
            if found is not _ABSENT:
                return found, rule if found else "ambiguous"
    for step in (_by_statement, _by_position):
        decision = step(text, allowed, options)
        if decision is not None:
            return decision
    if _REFUSAL.search(text):
        return None, "refusal"
    return _by_content(text, allowed, options)


def _by_statement(text: str, allowed: str, options: Mapping[str, str] | None) -> Decision | None:
    """"Final answer: B" (beats everything said before), CJK answer phrases, other statements."""
    final = _final_letters(text, allowed)
    if final:
        return final[-1], "final_answer" if final[-1] else "ambiguous"
    several = _CJK_SEVERAL.search(text)
    if several and several.group(1) != several.group(2):
        return None, "ambiguous"
    cjk = _cjk_letters(text, allowed)
    if cjk:
        return (cjk[0], "cjk") if len(set(cjk)) == 1 else (None, "ambiguous")
    stated = _statement_letters(text, allowed)
    if stated:
        return stated[-1], "statement" if stated[-1] else "ambiguous"
    several = _SEVERAL.search(text)
    if several and several.group(1) != several.group(2):
        return None, "ambiguous"
    return None


def _by_position(text: str, allowed: str, options: Mapping[str, str] | None) -> Decision | None:
    """A letter standing on its own: ending the reply, alone on a line, or opening it."""
    tail = _TAIL_LETTER.search(text)
    at = tail and tail.start(next(i for i, g in enumerate(tail.groups(), 1) if g))
    if tail and not _NEGATED.search(text, max(0, at - 40), at):
        letter = tail.group(tail.lastindex or 0).upper()
        return (letter, "letter") if letter in allowed else (None, "none")
    own_lines = _letters_in(_LINE_LETTER, text, allowed)
    if len(own_lines) == 1:  # "...is not it.\n\nB\n\nExplanation: ...": a line that holds only a letter
        return own_lines.pop(), "letter"
    m = _LEADING_LETTER.match(text)
    lead = m and (m.group(1) or m.group(2).upper())
    if not lead or lead not in allowed or (m.group(1) and _is_article(text, lead)):
        return None
    if _WEIGHED.match(text, m.start(1 if m.group(1) else 2) + 1):
        return None  # "Option A (red) is wrong. ...": weighed, not chosen
    own_text = _normalise(str((options or {}).get(lead) or ""))
    if own_text and _normalise(text[m.end():]).startswith(own_text):
        return lead, "letter"  # "B: Bird C" where option B's text is "Bird C"
    last = _LAST_LETTER.search(text)
    if (last and last.group(1) != lead and last.start() > m.end()
            and not _NEGATED.search(text, max(0, last.start(1) - 40), last.start(1))):
        return None, "ambiguous"  # "B. Though D.": which one?
    return lead, "letter"


def _by_content(text: str, allowed: str, options: Mapping[str, str] | None) -> Decision:
    """The text or value of exactly one option, agreeing with any letter named; else the one
    letter the reply picks ("Probably B.")."""
    named = _named_letters(text, allowed)
    if options:
        by_text = _answer_tail_letter(text, options) or _option_text_letter(text, options)
        by_text = by_text or _option_value_letter(text, options)
        if by_text is _CONFLICT or (by_text and named - {by_text}):
            return None, "ambiguous"  # two options' texts, or a text and another letter named
        if by_text:
            return by_text, "option_text"
    picked = _letters_in(_PICKED, text, allowed)
    if len(named | picked) == 1 and picked:
        return picked.pop(), "mentioned"
    return None, "ambiguous" if len(named | picked) > 1 else "none"


def _named_letters(text: str, allowed: str) -> set[str]:
    """Letters the reply names ("C is correct", "(D)", "B."), less negated ones ("not A")."""
    return _letters_in(_CANDIDATE, text, allowed)


def _letters_in(pattern: re.Pattern[str], text: str, allowed: str) -> set[str]:
    return {(m.group(1) or m.group(2)).upper() for m in pattern.finditer(text)
            if not _NEGATED.search(text, max(0, m.start() - 40), m.start())} & set(allowed)


def _is_article(text: str, letter: str) -> bool:
    """'A man is ...' starts with the article, not option A; 'I think' is the pronoun."""
    if letter not in ("A", "I"):
        return False
    return bool(re.match(rf"^{letter}\s+[a-z]", text))
