"""Answer matching: the official MMStar matcher (kept for comparability) and a robust extractor.

Both are benchmark-agnostic functions of (response, answer/options). The robust extractor returns
the chosen letter or ``None`` ("unparsed") and the rule that decided (``extract_answer``); it never
guesses. It is conservative by construction: it collects every commitment a reply makes (a stated
answer, a correction, a check mark, a box, a letter on its own, an option's text or value; see
``mmstar/extract/``), and returns a letter only when one stands (see ``_settle``).
``tests/data/extraction_cases.json`` pins its behaviour.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from .extract import commitments as cm
from .extract.commitments import Commitment
from .extract.rewrite import rewrite
from .extract.values import option_value, value_letters
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


# markdown, $math$ and <answer> / <|box|> / <|/answer|> / [ANSWER]-style tags
_CLEAN = re.compile(r"[*_`#$]+|</?\w+>|<\|/?\w+\|>|\[/?(?i:answer|final answer|choice)\]")
_ONLY_LETTER = re.compile(r"^[\s(\[]*(?:option|choice)?\s*[(\[]?([A-Ja-j])[)\]]?[\s.:)]*$", re.I)
# "the answer is 4" / "Answer: dark red": an option's text named by a final answer statement
_ANSWER_TAIL = re.compile(r"(?:answer|choice|option)\s*(?:is|would be|should be|:)\s*([^\n]+?)\s*[.!]?\s*$", re.I)
_REFUSAL = re.compile(
    r"\b(?:cannot|can ?not|can't|unable to|not possible to|impossible to|don't|do not)\s+"
    r"(?:be\s+)?(?:determine|determined|answer|tell|see|view|identify|know|provide|access|say)"
    r"|\bI'?m sorry\b|\bno image\b|\bnone of the (?:above|options)\b|\bnot enough information\b"
    r"|无法(?:确定|判断|回答|看到|识别)|不能确定|没有(?:提供)?图片|都不(?:对|正确)|判断できません|わかりません"
    r"|알 수 없|판단할 수 없|не\s+могу\s+(?:определить|ответить)|não\s+é\s+possível|لا\s+يمكن|नहीं\s+कर\s+सकता"
    r"|belirlenemez|không\s+thể\s+xác\s+định",
    re.I,
)
# letters a reply names: any of them conflicts with an option text; only a picked one ("(D) fits",
# "Probably B.") may decide, and only when it is the one letter named ("Option A is red" describes)
_CANDIDATE = re.compile(
    r"\(([A-J])\)|(?<!option )(?<!choice )\b([A-J])\b(?=[ \t]*(?:$|\n|[.,;:!)]|\s\(|\s+(?:is|seems|appears|would)\b))",
    re.I)
_PICKED = re.compile(r"\(([A-J])\)|(?<!option )(?<!choice )\b([A-J])\b(?=[ \t]*(?:$|\n|[.,;:!)]))", re.I)
_NEGATED = re.compile(r"(?:\bnot|n't|\bnever)\s+(?:\w+\s+){0,2}$", re.I)
# a clause that rules a lettered option out, with the option's text: not read for option texts
_WEIGHED_CLAUSE = re.compile(
    r"(?i:option|choice)?\s*\(?\b[A-J]\)?\s*(?:\([^)]*\)|:\s*[^.;\n]*?)?\s*(?i:is|are|was|seems|looks)\s+"
    r"(?i:not|wrong|incorrect|unlikely|implausible|a distractor|ruled out|excluded)\b[^.;\n]*")
# a lower-case connective or article left hanging at the very end (never "A": that is a letter)
_DANGLING = re.compile(r"(?:\b(?:but|and|or|because|since|so|which|that|the|a|an|of|to|with|while|whereas|"
                       r"although|however|then)|,)\s*$")
_CONFLICT = "conflict"  # several options' texts/values appear: the reply is ambiguous
# the rule a deciding commitment is reported as (a letter standing on its own is "letter")
_RULE = {"leading": "letter", "leading_loose": "letter", "trailing": "letter", "own_line": "letter",
         "leaning": "mentioned"}


class _Cleaned:
    """The reply with markdown and tags removed, and a map back to positions in the uncleaned text
    (so commitments found before and after cleaning are ordered on one axis)."""

    def __init__(self, raw: str) -> None:
        kept, starts, origins, at = [], [], [], 0
        for m in _CLEAN.finditer(raw):
            if m.start() > at:
                starts.append(sum(len(k) for k in kept))
                origins.append(at)
                kept.append(raw[at:m.start()])
            at = m.end()
        if at < len(raw):
            starts.append(sum(len(k) for k in kept))
            origins.append(at)
            kept.append(raw[at:])
        joined = "".join(kept)
        self.lead = len(joined) - len(joined.lstrip())
        self.text = joined.strip()
        self._starts, self._origins = starts, origins

    def origin(self, pos: int) -> int:
        pos += self.lead
        i = bisect_right(self._starts, pos) - 1
        return self._origins[i] + pos - self._starts[i] if i >= 0 else pos


def _answer_tail_letter(text: str, options: Mapping[str, str]) -> str | None:
    """"The answer is 4" / "Answer: dark red": the option whose whole text a statement names."""
    tail = _ANSWER_TAIL.search(text)
    if not tail:
        return None
    named_text = _normalise(tail.group(1))
    exact = [k for k, v in options.items() if _normalise(v) == named_text]
    return exact[0] if len(exact) == 1 else None


def _letters(options: Mapping[str, str] | None) -> str:
    return "".join(options) if options else "ABCD"


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
    """What the robust extractor decided: the letter (or ``None``), the rule that decided it (the
    kind of commitment used, or why none stands), and the reply's thinking text (kept, never
    matched)."""

    choice: str | None
    rule: str
    reasoning: str | None = None


# rules that leave a reply unparsed: nothing readable; a refusal; commitments that compete
# ("ambiguous"); thinking that never ended; an answer taken back ("retracted"); a reply cut by the
# token budget before any explicit commitment ("cut_off")
UNPARSED_RULES = ("none", "empty", "refusal", "ambiguous", "truncated_reasoning", "retracted", "cut_off")


def extract_choice(response: str | None, options: Mapping[str, str] | None = None, *,
                   finish_reason: str | None = None) -> str | None:
    """The option letter a free-text reply chose, or ``None`` when it cannot be told."""
    return extract_answer(response, options, finish_reason=finish_reason).choice


def extract_answer(response: str | None, options: Mapping[str, str] | None = None, *,
                   finish_reason: str | None = None) -> Extraction:
    """The robust extractor with its reason.

    The thinking part of the reply is set aside first (a reply ending inside it is
    ``truncated_reasoning``). The answer part is rewritten into plain statements (structure, other
    languages, ordinals; ``extract/rewrite.py``), its commitments are collected
    (``extract/commitments.py``) and settled (``_settle``). ``finish_reason="length"`` (the token
    budget cut the reply) leaves only explicit commitments readable.
    """
    if response is None:
        return Extraction(None, "empty")
    split = split_reasoning(unicodedata.normalize("NFKC", str(response)))
    if split.truncated:
        return Extraction(None, "truncated_reasoning", split.reasoning)
    # unknown reason (an old run, an imported log): a reply that stops on a dangling word was cut
    cut = finish_reason == "length" or (finish_reason is None and _DANGLING.search(split.answer) is not None)
    choice, rule = _decide(split.answer, options, cut=cut)
    return Extraction(choice, rule, split.reasoning)


Decision = tuple[str | None, str]  # (letter or None, rule)


def _decide(answer_text: str, options: Mapping[str, str] | None, nested: bool = False, cut: bool = False) -> Decision:
    """Collect the commitments of one answer text (a reply, or a box's / JSON value's content) and
    settle them."""
    allowed = _letters(options)
    # a reply that is a letter and nothing else ("B", "(B)", "**B.**", "Option B") is decided at once,
    # cut or not: the most common reply of all (all 1,500 of the official reference submission)
    m = _ONLY_LETTER.match(_CLEAN.sub("", answer_text).strip())
    if m:
        letter = m.group(1).upper()
        return (letter, "letter") if letter in allowed else (None, "none")
    numeric = frozenset(str(v).strip() for v in (options or {}).values() if option_value(str(v)))
    raw, by_ordinal = rewrite(answer_text, allowed, numeric)
    whole = raw
    if cut:  # the token budget ended the reply: a lone last letter may begin a word ("the answer is c|orrect")
        raw = re.sub(r"(?<!\w)[A-Za-z]$", "", raw.rstrip())
    cleaned = _Cleaned(raw)
    text = cleaned.text
    if not text or not re.search(r"\w", text):
        return None, "empty"
    m = _ONLY_LETTER.match(text) if raw is whole else None  # "Option A s|eems", cut: no bare letter
    if m:
        letter = m.group(1).upper()
        return (letter, "ordinal" if letter in by_ordinal else "letter") if letter in allowed else (None, "none")
    found: list[Commitment] = []
    whole_json = False
    if not nested:  # boxes and JSON values are decided by the rules below, not searched again
        def inner(content: str) -> Decision:
            return _decide(content, options, nested=True)

        found += cm.boxed(raw, inner) + cm.calls_and_tags(raw, inner)
        from_json, whole_json = cm.json_answers(raw, inner)
        found += from_json
    checked, check_lines = cm.checks(text, allowed)
    spans = cm.cues(text)
    local = (cm.statements(text, allowed) + cm.several(text, allowed) + cm.numbered(text, allowed) + checked
             + cm.positional(text, allowed, options, check_lines) + cm.corrections(text, allowed, spans))
    found += [Commitment(cleaned.origin(c.pos), c.kind, c.letter) for c in local]
    cue_at = [cleaned.origin(a) for a, _b in spans]
    if whole_json and not found:
        return None, "ambiguous"  # a JSON object without an answer key: nothing else in it is read
    choice, rule = _settle(found, cue_at, text, cleaned, allowed, options, cut)
    if choice in by_ordinal and rule in ("statement", "letter", "final_answer", "correction", "mentioned", "cjk"):
        rule = "ordinal"  # "the third option", "the last one", "option 3": the ordinal named it
    return choice, rule


def _settle(found: list[Commitment], cue_at: list[int], text: str, cleaned: _Cleaned, allowed: str,
            options: Mapping[str, str] | None, cut: bool) -> Decision:
    """The precedence (docs/architecture.md, "The robust extractor"):

    1. a correction or retraction cue takes back every commitment made before it (nothing after it:
       "retracted"); "A or B" before a final answer, and "between A and C" before a later pick, are
       deliberation, dropped;
    2. a reply cut by the token budget keeps only explicit commitments ("cut_off" when none);
    3. the commitments that remain of strength 2 or more (anything but an option's text or value
       and a passing mention) must all name the same one letter: then it stands, reported as the
       strongest kind among them; two different letters, or "A or B", give None ("ambiguous");
    4. with none of those: a refusal gives None; else the text or value of exactly one option,
       agreeing with every letter named; else the one letter picked in passing.
    """
    # a cue after anything at all (a letter, an option's text, a value) takes it back
    revoked_at = max((a for a in cue_at if re.search(r"\w", text[:_clean_pos(cleaned, a)])), default=-1)
    if revoked_at >= 0:
        found = [c for c in found if c.pos >= revoked_at]
    finals = [c.pos for c in found if c.kind == "final_answer"]
    if finals:  # "Maybe A or B; the final answer is B": the deliberation before a final answer is over
        found = [c for c in found if c.kind != "several" or c.pos > finals[-1]]
    picks = [c.pos for c in found if c.letter is not None and c.strength >= 2]
    # "between (A) and (C); I'll say (C)": weighing two settles on a later pick, else it stays undecided
    found = [c for c in found if c.kind != "deciding" or not any(p > c.pos for p in picks)]
    if cut:
        found = [c for c in found if c.kind in cm.EXPLICIT]
    strong = [c for c in found if c.strength >= 2]
    if strong:
        letters = {c.letter for c in strong}
        if len(letters) > 1 or None in letters:
            return None, "ambiguous"
        best = max(strong, key=lambda c: (c.strength, c.pos))
        return best.letter, _RULE.get(best.kind, best.kind)
    rest = text if revoked_at < 0 else text[_clean_pos(cleaned, revoked_at):]
    if cut:
        named = _answer_tail_letter(rest, options) if options else None
        return (named, "option_text") if named else (None, "cut_off")
    if _REFUSAL.search(_without_options(rest, options)):
        return None, "refusal"
    choice, rule = _by_content(rest, allowed, options)
    if revoked_at >= 0 and (choice is None or rule == "mentioned"):
        return None, "retracted"  # taken back, and nothing but a passing mention after it
    return choice, rule


def _clean_pos(cleaned: _Cleaned, origin: int) -> int:
    """The cleaned text's position of an uncleaned one (the first at or after it)."""
    lo, hi = 0, len(cleaned.text)
    while lo < hi:
        mid = (lo + hi) // 2
        if cleaned.origin(mid) < origin:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _without_options(text: str, options: Mapping[str, str] | None) -> str:
    """The text less the options' own texts: an option that reads like a refusal ("None of the
    above", "Cannot be determined") is an option, not a refusal, when a reply names it."""
    if not options:
        return text
    low = text.lower()
    for v in options.values():
        v = str(v).strip().lower().rstrip(".")
        if len(v) >= 4:
            low = low.replace(v, " ")
    return low


def _by_content(text: str, allowed: str, options: Mapping[str, str] | None) -> Decision:
    """The text or value of exactly one option, agreeing with any letter named; else the one
    letter the reply picks ("Probably B.")."""
    text = _WEIGHED_CLAUSE.sub(" ", text)  # "Option A (red) is wrong": red is not the answer
    named = _letters_in(_CANDIDATE, text, allowed)
    if options:
        by_text, rule = _answer_tail_letter(text, options) or _option_text_letter(text, options), "option_text"
        valued = {letter for _at, letter in value_letters(text, options)}
        if by_text and by_text is not _CONFLICT:
            valued.discard(by_text)
        if valued:  # a value ("twelve", "150 cm", "fifteen dollars") names an option too
            by_text, rule = (valued.pop() if len(valued) == 1 and not by_text else _CONFLICT), "value"
        if by_text is _CONFLICT or (by_text and named - {by_text}):
            return None, "ambiguous"  # two options' texts, or a text and another letter named
        if by_text:
            return by_text, rule
    picked = _letters_in(_PICKED, text, allowed)
    if len(named | picked) == 1 and picked:
        return picked.pop(), "mentioned"
    return None, "ambiguous" if len(named | picked) > 1 else "none"


def _letters_in(pattern: re.Pattern[str], text: str, allowed: str) -> set[str]:
    return {(m.group(1) or m.group(2)).upper() for m in pattern.finditer(text)
            if not _NEGATED.search(text, max(0, m.start() - 40), m.start())} & set(allowed)
