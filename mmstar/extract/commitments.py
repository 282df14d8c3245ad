"""The commitments a reply makes, each with its position, kind and strength.

A commitment names one letter (``letter``) or several (``letter`` None: "A or B"). Kinds and their
strength (``STRENGTH``): structured answers (a box, a JSON answer key, a tool call, an answer tag),
final-answer statements and corrections are the strongest; answer statements in any language and
check marks next; a letter standing on its own (opening the reply, ending it, alone on a line)
next; an option's text, value or ordinal below those; a letter merely picked in passing last.
Corrections and retractions (``cues``) take back what was said before them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise

from .lexicon import (
    CHECK_NO,
    CHECK_WORDS_NO,
    CHECK_WORDS_YES,
    CHECK_YES,
    CORRECTION_CUES,
    HEDGES,
    OR_WORDS,
    RETRACTIONS,
)

STRENGTH = {
    "letter": 5, "boxed": 5, "json": 5, "tool_call": 5, "tag": 5,
    "final_answer": 4, "correction": 4,
    "statement": 3, "cjk": 3, "check": 3, "several": 3, "deciding": 3,
    "leading": 2, "leading_loose": 2, "trailing": 2, "own_line": 2, "leaning": 2,
    "option_text": 1, "value": 1, "mentioned": 0,
}
# what a reply cut by the token budget may still be read by: commitments made in so many words
EXPLICIT = frozenset({"letter", "boxed", "json", "tool_call", "tag", "final_answer", "correction", "statement", "cjk",
                      "check", "several", "deciding", "leading"})


@dataclass(frozen=True)
class Commitment:
    pos: int
    kind: str
    letter: str | None  # None: several letters at once ("A or B")

    @property
    def strength(self) -> int:
        return STRENGTH[self.kind]


Nested = Callable[[str], tuple[str | None, str]]  # decides a box's / JSON value's / tag's content

# ------------------------------------------------------------------ patterns (from the 0.2 extractor)
_OR = "|".join(re.escape(w) if not w.isascii() else rf"\b{w}\b" for w in sorted(OR_WORDS, key=len, reverse=True))
_SEVERAL = re.compile(rf"\(?(?<![A-Za-z])([A-J])\)?[.…]*\s*(?:{_OR}|,|/|&|、)\s*(?:option\s*)?\(?([A-J])(?![A-Za-z])")
# "A or B is correct" offers both; "A and B are too small" weighs them (and offers neither)
_SEVERAL_OFFERED = re.compile(r"\)?\s*(?:is|are|could be|might be|would be|may be)\s+(?:both\s+|all\s+|equally\s+)?"
                              r"(?:correct|right|possible|plausible|likely|valid|"
                              r"the\s+(?:answer|correct|right|best)|my\s+(?:final\s+)?(?:choice|answer|pick))", re.I)
_WEIGHING = re.compile(r"\b(?:between|among|comparing)\b[^;:]*[;:]", re.I)
_NOT_BEFORE = re.compile(r"(?:\bnot|n't|\bnever)\s+(?:\w+\s+)?$")
_BETWEEN = re.compile(r"\b(?:between|among|of|comparing|compare|leaving|left with|remaining)\s*$", re.I)
_OR_ALSO = re.compile(r"(?:\bor\s+(?:possibly|maybe|perhaps|probably|else)|\b(?:could|might|may)\s+(?:also\s+)?be)"
                      r"\s+(?:option\s+)?\(?([A-J])(?![\w'])", re.I)
_SEVERAL_WEIGHED = re.compile(r"\)?\s*(?:are|were|is|seems?|looks?|both|can|cannot|can't|don't|do not)\b", re.I)
_STATEMENT_CI = re.compile(
    r"(?:final answer|correct answer|correct option|right answer|best answer|"
    r"answer(?:\s+to\s+(?:this\s+|the\s+)?(?:question|Q)(?:\s*#?\d+)?)?|best guess|guess|"
    r"correct choice|choose|select|pick|go(?:ing)? with|opt for|(?:closest|best) (?:match|fit)(?: here)?|"
    r"(?:correct|right|the|my) response|matches|corresponds to|(?:my )?conclusion|"
    r"(?:best|correct|right|most likely) (?:option|choice)(?: here)?|"
    r"(?:option|choice)(?=\s*(?::|=|is\b|would be|should be)))",
    re.I)
_FINAL_CI = re.compile(r"final answer|final choice|final guess|final verdict", re.I)
_NEGATED = re.compile(r"(?:\bnot|n't|\bnever)\s+(?:\w+\s+){0,2}$", re.I)
_HEDGED = re.compile(HEDGES, re.I)
_AFFIRM = re.compile(
    r"(?<![A-Za-z])(?:(?:option|choice)\s*)?\(?([A-J])\)?\s+is\s+(?:the\s+)?(?:"
    r"(?:correct|right|best|most likely|most appropriate)\s+(?:answer|option|choice|one)"
    r"|(?:correct|right)(?=\s*(?:[.,;!]|$|\s+(?:because|since|as|given|here)\b))|answer\b)"
    r"|(?<![A-Za-z])\(?([A-J])\)?\s+(?:it\s+is\b|is\s+my\s+(?:final\s+)?(?:choice|answer|pick)\b"
    r"|best\s+(?:describes|fits|matches)\b)", re.I)
_STATEMENT_TAIL = re.compile(
    r"[\"']?\s*(?i:would be|should be|must be|has to be|can only be|is|are|:|=|->|=>|→|-|—|–)?\s*"
    r"(?i:likely|probably|definitely|clearly|certainly|)\s*(?:[-*•][ \t]*(?=\(?[A-J]\)?(?:[\s.)]|$)))?"
    r"(?i:(?:the )?(?:option|choice|letter)\s*)?:?\s*[\"']?"
    r"(?:\(([A-Ja-j])\)|\[([A-Ja-j])\]|([A-J])(?![A-Za-z0-9_'])|([a-j])(?=[ \t]*(?:$|\n|[.,;:!)\]]|\((?![a-z]))))")
_CJK_HEAD = (r"(?:最终答案|最終答案|最終的な答え|최종\s*답|최종\s*정답|正确答案|正確答案|正确选项|正确的|正確的|"
             r"我认为|我認為|答案|应选|故选|"
             r"选择|選択|选|選|回答|答え|正解|정답|답)")
_CJK_ANSWER = re.compile(
    _CJK_HEAD + r"(?:\s*(?:应该|应|是|为|為|は|은|는|이|:|：)\s*)*(?:选项|選項|option\s*)?\s*[(\[【]?\s*"
    r"([A-J])(?![A-Za-z])")
_CJK_FINAL = re.compile(r"^(?:最终|最終|최종)")
_TAIL_LETTER = re.compile(
    r"(?:^|[.!?:;]\s+|\n\s*)(?:[(\[]([A-Ja-j])[)\]]|(?i:option|choice)\s*([A-Ja-j])[).:!]?|([A-J])[).:!]?)\s*$")
_WEIGHED = re.compile(r"[)\]]?\s*(?:\([^)]*\)\s*)?(?:is|are|seems|looks|was|would|could|might|may|says|said|states|"
                      r"reads|describes|refers|mentions|shows|has|claims|suggests)\b", re.I)
_LINE_LETTER = re.compile(r"(?m)^[ \t]*(?:\(([A-J])\)|([A-J])[).:]?)[ \t]*$")
_LABELLED = re.compile(
    r"(?m)^[ \t>*\-•]*(?:(?i:option|choice)[ \t]*)?[(\[]?([A-J])"
    r"(?:[)\]][ \t]*|[.:][ \t]+|[ \t]+-[ \t]+|[ \t]+(?=[A-Z(]))"
    r"([^\n]{1,80})$")
_VERB = re.compile(r"\b(?:is|are|was|were|has|have|does|do|can|could|would|shows?|appears?|seems?)\b", re.I)
_DENIED = re.compile(r"\b(?:not|no|never|wrong|incorrect|false|absent)\b|n't", re.I)
_NAMED = re.compile(r"(?<![A-Za-z'])\(?([A-J])\)?(?![A-Za-z'])(?!\s+[a-z]+\s)")
_ITS = re.compile(r"(?i:\bit(?:'s|\s+is)\s+(?:option\s+|choice\s+)?)(?:\(([A-J])\)|([A-J]))"
                  r"(?=\s*(?:[.!,;]|$))")
_ARROW = re.compile(r"(?:➡️?|→|=>|->)\s*(?:\(([A-J])\)|([A-J]))(?![\w'])")
_SENTENCE_DASH = re.compile(r"(?:^|[.!?]\s+|\n\s*)(?:\(([A-J])\)|([A-J]))\s*(?:—|–|\s-)\s")
_PAREN_END = re.compile(r"(?m)\w[ \t]+\(([A-J])\)()[.!]?[ \t]*$")  # "... the mitochondrion (A)."
_LINE_END_LETTER = re.compile(r"(?m)(?:[.!?:;,][ \t]+)(?:[(\[]([A-J])[)\]]|([A-J])[).:!]?)[ \t]*$")
_LEANING = re.compile(
    r"(?:^|[.!?,;:]\s+|\n\s*)(?i:probably|maybe|perhaps|likely|most likely|I'd say|I would say|I'll say|I will say|"
    r"I think it is|I think it's|I believe it is|I believe it's|I think|I believe|looks like|seems like|sounds like|"
    r"I'd lean towards?|I lean towards?|leaning towards?|definitely|certainly|clearly|surely|"
    r"in conclusion|to conclude|in summary|overall|"
    r"(?:it's|it has|it)\s+got\s+to\s+be|(?:it\s+)?(?:must|has\s+to)\s+be|"
    r"I'd go with|I'll go with|"
    r"it seems|it's|it is|so|thus|hence|therefore)[,:]?\s*(?i:option\s*|choice\s*)?(?:\(([A-J])\)|([A-J]))"
    r"(?=\s*(?:[.!,;]|$|\n|\s+(?:fits|is (?:best|right|correct)|matches|to me)))")
_LAST_LETTER = re.compile(r"(?<![A-Za-z'])\(?([A-J])\)?[.)\]!]?\s*$")
_LEADING_LETTER = re.compile(
    r"^(?:(?i:option|choice)\s*)?[(\[]?(?:([A-J])(?:[)\]][\s.:]*|[.:]\s*|\s+-\s+|\s+(?=\S))"
    r"|([a-j])(?:[)\]]|[.:]?[ \t]*\n|\s+(?=[^a-z0-9\s])))")
_CUES = re.compile("|".join(f"(?:{c})" for c in CORRECTION_CUES + RETRACTIONS), re.I)
_CORRECTED_TO = re.compile(
    r"[\s,:;.!—–-]*(?:(?:it'?s|it\s+is|the\s+(?:correct\s+|right\s+)?answer\s+is|I\s+meant?|make\s+that|should\s+be|"
    r"hmm+|well|ok(?:ay)?|yes|still|again|indeed|so|"
    r"is|option|choice|then|应该是|应是|应为|是|选)\s*[,:]?\s*)*\(?((?![AI]\s+[a-z])[A-J])(?![\w'])", re.I)
# answers to several questions: "1. B\n2. D", "Q1: A, Q2: C", "Question 2 - (B)"
_NUMBERED = re.compile(r"(?m)(?:^[ \t]*(?:Q(?:uestion)?\s*)?\d+\s*[.):-](?!\d)"
                       r"|(?<![\w])Q(?:uestion)?\s*\d+\s*[.):-])[ \t]*"
                       r"(?:(?i:answer)\s*[:=]?\s*)?\(?([A-J])\)?(?![\w'])")
_INLINE_NUMBERED = re.compile(r"(?<![\w.])\d+\s*[.)]\s*\(?([A-J])\)?(?![\w'])(?!\s+[a-z])")
_SPREAD = re.compile(r"(?<![A-Za-z])\(?([A-J])\)?\s*[:=]\s*\d+(?:\.\d+)?\s*%")
_QUESTION_REF = re.compile(r"\b(?:question|Q)\s*#?(\d+)\b|\b(first|second|third|next|other)\s+question\b", re.I)
_BOXED_HEAD = re.compile(r"\\boxed\s*\{|<\|begin_of_box\|>")
_JSON_OBJECT = re.compile(r"\{[^{}]*\}")
_JSON_KEYS = ("answer", "final_answer", "choice", "option", "correct_answer", "correct_option", "selected_option",
              "prediction", "selection", "letter", "答案")
_FENCE = re.compile(r"```(?:json)?")
_TAG = re.compile(r"<(answer|final_answer|choice|option|selected_option|final|result)\b[^>]*>(.*?)</\1\s*>",
                  re.S | re.I)
_CALL = re.compile(r"\b(?:submit_answer|answer|select_option|choose|final_answer|select)\s*\(\s*(?:\w+\s*=\s*)?"
                   r"[\"']?([^\"')]*)[\"']?\s*\)")
_CHECK_LINE = re.compile(
    r"(?m)^[ \t>*\-•]*(?:(?i:option|choice)\s*)?[(\[]?([A-J])[)\]]?[.:)]?(?![\w'])([^\n]*)$")
_MARK_YES = re.compile(rf"[{CHECK_YES}]|(?<!\w)(?<!not )(?<!in){CHECK_WORDS_YES}(?!\w)", re.I)
_MARK_NO = re.compile(rf"[{CHECK_NO}]|(?<!\w){CHECK_WORDS_NO}(?!\w)", re.I)
_MARK_FIRST = re.compile(rf"[{CHECK_YES}]\ufe0f?[ \t]*\(?([A-J])\)?(?![\w'])")
_INLINE_MARK = re.compile(rf"(?<![A-Za-z])\(?([A-J])\)?[.:)]?[ \t]*(?:[→:\-–][ \t]*)?([{CHECK_YES}{CHECK_NO}])")


_CLAUSES = re.compile(r"[.!?;]\s|\n")


def _free(text: str, at: int) -> bool:
    """Not negated ("not A") and not hedged ("if ..., the answer is A", "at first I thought A")."""
    sentence = _CLAUSES.split(text[max(0, at - 60):at])[-1]  # negation and hedges stay in their clause
    return not _NEGATED.search(sentence[-40:]) and not _HEDGED.search(sentence)


# ------------------------------------------------------------------ structured answers


def boxed(text: str, nested: Nested) -> list[Commitment]:
    out = []
    for head in _BOXED_HEAD.finditer(text):
        if head.group().startswith("<"):
            end = text.find("<|end_of_box|>", head.end())
            content = text[head.end():end if end >= 0 else len(text)]
        else:
            depth, i = 1, head.end()
            while i < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            content = text[head.end():i - 1] if depth == 0 else text[head.end():]
        out.append(Commitment(head.start(), "boxed", nested(content)[0]))
    return out


def _json_values(obj: object) -> list[str]:
    if isinstance(obj, dict):
        keys = {str(k).strip().lower(): v for k, v in obj.items()}
        key = next((k for k in _JSON_KEYS if k in keys), None)
        if key is not None and isinstance(keys[key], (str, int, float)) and not isinstance(keys[key], bool):
            return [str(keys[key])]
    return []


def json_answers(text: str, nested: Nested) -> tuple[list[Commitment], bool]:
    """A JSON object with an answer key (single-quoted Python dicts too); and whether the whole
    reply is one JSON object (then nothing else in it is read)."""
    out = []
    for m in _JSON_OBJECT.finditer(text):
        obj = None
        for candidate in (m.group(), m.group().replace("'", '"')):
            try:
                obj = json.loads(candidate)
                break
            except json.JSONDecodeError:
                continue
        kind = "tool_call" if re.search(r'"(?:name|function|arguments)"', text[max(0, m.start() - 200):m.start()]) \
            else "json"
        out.extend(Commitment(m.start(), kind, nested(v)[0]) for v in _json_values(obj))
    whole = _FENCE.sub("", text).strip()
    return out, whole.startswith("{") and whole.endswith("}")


def calls_and_tags(text: str, nested: Nested) -> list[Commitment]:
    out = [Commitment(m.start(), "tag", nested(m.group(2))[0]) for m in _TAG.finditer(text)]
    out += [Commitment(m.start(), "tool_call", nested(m.group(1))[0]) for m in _CALL.finditer(text)]
    return out


# ------------------------------------------------------------------ statements


def statements(text: str, allowed: str) -> list[Commitment]:
    """"The answer is (B)", "Answer: C", "B is the answer", "Final answer: D" (English, and any
    language the rewrite put in English); CJK answer phrases."""
    out: list[Commitment] = []
    for head in _STATEMENT_CI.finditer(text):
        # the head itself may hedge ("first guess B"): its own clause, head included, is read for hedges
        clause = _CLAUSES.split(text[max(0, head.start() - 20):head.end()])[-1]
        if not _free(text, head.start()) or _HEDGED.search(clause):
            continue
        m = _STATEMENT_TAIL.match(text, head.end())
        if not m:
            continue
        group = next(i for i, g in enumerate(m.groups(), 1) if g)
        letter, at = m.group(group).upper(), m.start(group)
        if "\n" in text[head.end():at] and not _heading(text, head.start(), at):
            continue  # "... is the right answer\n\n(A) red is not shown": the letter opens a new line
        kind = "final_answer" if _FINAL_CI.fullmatch(head.group()) else "statement"
        several = _SEVERAL.match(text, at - 1 if text[at - 1] in "([" else at)
        if several and several.group(1) != several.group(2):
            out.append(Commitment(head.start(), kind, None))
        elif letter in allowed:
            out.append(Commitment(head.start(), kind, letter))
    out += [Commitment(m.start(), "statement", (m.group(1) or m.group(2)).upper()) for m in _AFFIRM.finditer(text)
            if (m.group(1) or m.group(2)).upper() in allowed and _free(text, m.start())]
    for m in _CJK_ANSWER.finditer(text):
        if m.group(1) in allowed:
            out.append(Commitment(m.start(), "final_answer" if _CJK_FINAL.match(m.group()) else "cjk", m.group(1)))
    return out


def several(text: str, allowed: str) -> list[Commitment]:
    """"A or B", "A или B", "B 또는 C": two letters offered at once, unless both are being ruled out."""
    out = []
    for m in _SEVERAL.finditer(text):
        # "not A or B" rules both out; "Not sure between B and D" does not
        if m.group(1) != m.group(2) and {m.group(1), m.group(2)} <= set(allowed) \
                and not _NOT_BEFORE.search(text[max(0, m.start() - 16):m.start()].rsplit("\n", 1)[-1]) \
                and not _HEDGED.search(_CLAUSES.split(text[max(0, m.start() - 60):m.start()])[-1]) \
                and (_SEVERAL_OFFERED.match(text, m.end()) or not _SEVERAL_WEIGHED.match(text, m.end())):
            # "between (A) and (C)", "leaving C and D": still deciding; a later pick settles it (see _settle)
            weighing = _BETWEEN.search(text, max(0, m.start() - 12), m.start())
            out.append(Commitment(m.start(), "deciding" if weighing else "several", None))
    # "B (or possibly C)", "B, or maybe D": a second letter offered beside the first
    out += [Commitment(m.start(), "several", None) for m in _OR_ALSO.finditer(text)
            if m.group(1) in allowed and _free(text, m.start())]
    return out


def numbered(text: str, allowed: str) -> list[Commitment]:
    """Answers to two or more numbered questions commit to no single option."""
    hits = [m.start() for m in _NUMBERED.finditer(text) if m.group(1) in allowed]
    inline = [m.start() for m in _INLINE_NUMBERED.finditer(text) if m.group(1) in allowed]
    # "A: 30%, B: 50%, ...": a spread over the options is no choice of one
    spread = [m.start() for m in _SPREAD.finditer(text) if m.group(1) in allowed]
    hits = hits + spread if len(spread) >= 2 else hits
    hits = hits if len(hits) >= len(inline) else inline
    asked = {(m.group(1) or m.group(2)).lower() for m in _QUESTION_REF.finditer(text)}
    if len(asked) >= 2:  # "for question 1 ... for question 2 ...": which one is this?
        hits += [m.start() for m in _QUESTION_REF.finditer(text)]
    return [Commitment(at, "several", None) for at in hits] if len(hits) >= 2 else []


def _heading(text: str, head_start: int, letter_at: int) -> bool:
    line_start = text.rfind("\n", 0, head_start) + 1
    return not text[line_start:head_start].strip() or ":" in text[head_start:letter_at]


def checks(text: str, allowed: str) -> tuple[list[Commitment], set[int]]:
    """Check-lists that mark options right or wrong (marks or words): the one marked right, when
    at least two options are marked; and the lines they sit on (not read as letters again)."""
    marked, lines = [], set()
    for m in _CHECK_LINE.finditer(text):
        rest = m.group(2)
        if _WEIGHED.match(text, m.end(1)) or _SEVERAL.match(text, m.start(1)):
            continue  # "B is tempting, however A ✅": the mark is not B's
        yes, no = bool(_MARK_YES.search(rest)), bool(_MARK_NO.search(rest))
        if yes != no and m.group(1) in allowed:
            marked.append((m.start(1), m.group(1), yes))
    after, before = _marks(text, allowed)
    for m in after:
        if not any(p == m.start(1) for p, _l, _y in marked):
            marked.append((m.start(1), m.group(1), m.group(2) in CHECK_YES))
    first = [Commitment(m.start(1), "check", m.group(1)) for m in before]
    if len(marked) < 2:  # one mark: only a symbol of approval next to a letter ("B ✅", "✔️ C") answers
        return [Commitment(m.start(1), "check", m.group(1)) for m in after if m.group(2) in CHECK_YES] + first, set()
    for at, _l, _y in marked:
        lines.add(text.rfind("\n", 0, at) + 1)
    return [Commitment(at, "check", letter) for at, letter, yes in marked if yes] + first, lines


def _marks(text: str, allowed: str) -> tuple[list[re.Match[str]], list[re.Match[str]]]:
    """Symbol marks put after a letter ("B ✅") and approval marks put before one ("✔️ C"). A mark
    between two letters is the first one's in a list where every letter has its mark ("(B) ✔ (C) ✘"),
    else the second's ("Not A. ✔️ C")."""
    after = [m for m in _INLINE_MARK.finditer(text) if m.group(1) in allowed]
    with_mark = {m.start(1) for m in after}
    before = [m for m in _MARK_FIRST.finditer(text) if m.group(1) in allowed and m.start(1) not in with_mark
              and not _WEIGHED.match(text, m.start(1) + 1)]  # "✔ (A would be ...)" weighs A
    claimed = {m.start() for m in before}
    return [m for m in after if m.start(2) not in claimed], before


# ------------------------------------------------------------------ letters standing on their own


def positional(text: str, allowed: str, options: Mapping[str, str] | None, skip_lines: set[int]) -> list[Commitment]:
    """A letter ending the reply, alone on a line, or opening it (unless it is being weighed)."""
    out = []
    tail = _TAIL_LETTER.search(text)
    if tail:
        group = next(i for i, g in enumerate(tail.groups(), 1) if g)
        at = tail.start(group)
        if _free(text, at) and tail.group(group).upper() in allowed:
            out.append(Commitment(at, "trailing", tail.group(group).upper()))
    for m in _LINE_LETTER.finditer(text):
        letter = m.group(1) or m.group(2)
        if letter in allowed and _free(text, m.start()):
            out.append(Commitment(m.start(), "own_line", letter))
    lead = _leading(text, allowed, options)
    listed = _restated(text, allowed, options)
    if lead and 0 not in skip_lines and 0 not in listed:
        out.append(lead)
    # "(D) Chloroplast" on a later line of its own: one such line answers (unless weighed, marked wrong or
    # explained after a colon); several restate or discuss the options
    labelled = [m for m in _LABELLED.finditer(text) if m.start() > 0 and m.group(1) in allowed
                and text.rfind("\n", 0, m.start(1)) + 1 not in skip_lines]
    def own_text(m: re.Match[str]) -> bool:
        return m.group(2).strip().lower().rstrip(".*") == str((options or {}).get(m.group(1)) or "").strip().lower()

    def short(m: re.Match[str]) -> bool:
        return len(m.group(2).split()) <= 4 and not _VERB.search(m.group(2))

    def paragraph(m: re.Match[str]) -> bool:  # "C: blue. ..." opening a paragraph, no bullet: an answer
        return text[m.start():m.start(1)].strip() == "" and text[max(0, m.start() - 2):m.start()] == "\n\n"

    # "- C: blue is the sky" explains (a colon after the label); "A: red" (C's text, or a few words) names
    plain = [m for m in labelled if not _WEIGHED.match(text, m.end(1)) and ":" not in m.group(2)
             and (not text.startswith(":", m.end(1)) or own_text(m) or short(m) or paragraph(m))
             and not _MARK_NO.search(m.group(2))
             and not _DENIED.search(m.group(2)) and _free(text, m.start(1))]
    # the lines of an options list restated in their own words answer nothing
    out += [Commitment(m.start(1), "own_line", m.group(1)) for m in plain if m.start() not in listed]
    # a letter ending a line after a sentence ("The sky is clearly visible. D"), and a leaning pick
    # ("Probably B.", "It seems (D) fits best", "..., it is C.")
    for pattern, kind in ((_LINE_END_LETTER, "trailing"), (_LEANING, "leaning"), (_ITS, "leaning"),
                          (_PAREN_END, "leaning"), (_SENTENCE_DASH, "leaning"), (_ARROW, "leaning")):
        for m in pattern.finditer(text):
            letter = (m.group(1) or m.group(2)).upper()
            at = m.start(1) if m.group(1) else m.start(2)
            if letter in allowed and _free(text, m.start()) and _free(text, at - (at > 0 and text[at - 1] in "([")):
                # "I don't think the answer is A; it's C": another letter named in the sentence makes two
                sentence = re.split(r"[.!?]\s|\n", text[max(0, at - 80):at])[-1]
                sentence = _WEIGHING.sub("", sentence)  # "between (A) and (C); I'll say (C)": one pick
                sentence = _CUES.split(sentence)[-1]  # "It's C, no wait, it's D": what was taken back is no rival
                rivals = {x.group(1) for x in _NAMED.finditer(sentence) if not _NEGATED.search(sentence[:x.start()])}
                out.append(Commitment(at, kind, None if rivals - {letter} else letter))
    return out


def _restated(text: str, allowed: str, options: Mapping[str, str] | None) -> frozenset[int]:
    """Where the reply lists every option in its own words, in order, one per line ("A) red\nB) green
    ..."): the starts of those lines (empty when it does not)."""
    if not options:
        return frozenset()
    own = [(m.start(), m.group(1)) for m in _LABELLED.finditer(text)
           if m.group(2).strip().lower().rstrip(".*") == str(options.get(m.group(1)) or "").strip().lower()]
    for i in range(len(own) - len(allowed) + 1):
        run = own[i:i + len(allowed)]
        gaps = [text[a:b] for (a, _x), (b, _y) in pairwise(run)]
        if "".join(x for _p, x in run) == allowed and all(g.count("\n") == 1 for g in gaps):
            return frozenset(text.rfind("\n", 0, p + 1) + 1 if p else 0 for p, _x in run)
    return frozenset()


def _leading(text: str, allowed: str, options: Mapping[str, str] | None) -> Commitment | None:
    m = _LEADING_LETTER.match(text)
    letter = m and (m.group(1) or m.group(2).upper())
    if not letter or letter not in allowed or (m.group(1) and _is_article(text, letter)):
        return None
    at = m.start(1 if m.group(1) else 2)
    first_line = text[:text.find("\n")] if "\n" in text else text
    if _WEIGHED.match(text, at + 1) or (_MARK_NO.search(first_line) and not _MARK_YES.search(first_line)):
        return None  # "Option A (red) is wrong. ...", "A. red ❌": weighed, not chosen
    # "B. ...", "(B) ...", "B: ..." open with the answer; "B the ..." (a bare space) may be a cut word
    return Commitment(at, "leading" if re.match(r"[)\].:\n]|\s+-\s", text[at + 1:at + 4]) else "leading_loose", letter)


def _is_article(text: str, letter: str) -> bool:
    """'A man is ...' starts with the article, not option A; 'I think' is the pronoun."""
    return letter in ("A", "I") and re.match(rf"^{letter}\s+[a-z]", text) is not None


def cues(text: str) -> list[tuple[int, int]]:
    """(start, end) of each correction or retraction cue."""
    return [(m.start(), m.end()) for m in _CUES.finditer(text)]


def corrections(text: str, allowed: str, spans: list[tuple[int, int]]) -> list[Commitment]:
    """The letter a correction lands on: "wait, no, C", "Sorry, I mean C", "Actually the answer is C"."""
    out = []
    for _start, end in spans:
        m = _CORRECTED_TO.match(text, end)
        if m and m.group(1).upper() in allowed:
            out.append(Commitment(m.start(1), "correction", m.group(1).upper()))
    return out
