"""Split a reply into its thinking text and its answer text.

Reasoning models write their chain of thought between delimiters before the answer. The thinking is
kept (a record's ``reasoning``) but never matched: letters it mentions while weighing options are
not the model's answer. A reply that opens a thinking block and never closes it ran out of tokens
mid-thought: it has no answer (``truncated``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# (opening, closing) delimiters as current families emit them; the opening may be missing when the
# chat template already put it in the prompt (Qwen3 / QwQ / DeepSeek-R1 templates end with "<think>")
THINK_DELIMITERS: tuple[tuple[str, str], ...] = (
    ("<think>", "</think>"),  # Qwen3(-VL) Thinking, QwQ, DeepSeek-R1, GLM-4.1V-Thinking, InternVL3.5, MiMo-VL
    ("<thinking>", "</thinking>"),
    ("<reasoning>", "</reasoning>"),
    ("◁think▷", "◁/think▷"),  # Kimi-VL-Thinking
    ("<|begin_of_thought|>", "<|end_of_thought|>"),  # Skywork-R1V / OpenThoughts style
    ("[THINK]", "[/THINK]"),  # Magistral / Mistral reasoning
)
# wrappers around the answer part that carry no meaning of their own
_SOLUTION = re.compile(r"<\|begin_of_solution\|>(.*?)(?:<\|end_of_solution\|>|$)", re.S)
_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S | re.I)
# plain-text reasoning headers followed by a final-answer heading ("Thinking Process: ... Final Answer: B")
_PLAIN_HEAD = re.compile(r"^\s*(?:\*\*)?(?:thinking process|thought process|reasoning|analysis)(?:\*\*)?\s*:", re.I)
_PLAIN_FINAL = re.compile(r"(?:^|\n)\s*(?:#+\s*|\*\*)?final answer\b", re.I)


@dataclass(frozen=True)
class Split:
    answer: str  # the text to match
    reasoning: str | None  # the thinking text (None when the reply had no thinking part)
    truncated: bool = False  # ended inside an unfinished thinking block


def split_reasoning(text: str) -> Split:
    """The answer part and the thinking part of a reply (see the module doc)."""
    for opening, closing in THINK_DELIMITERS:
        close_at = text.rfind(closing)
        open_at = text.find(opening)
        if close_at >= 0:
            start = open_at + len(opening) if 0 <= open_at < close_at else 0
            return Split(_unwrap(text[close_at + len(closing):]), text[start:close_at].strip())
        if open_at >= 0:
            return Split("", text[open_at + len(opening):].strip(), truncated=True)
    m = _PLAIN_FINAL.search(text) if _PLAIN_HEAD.match(text) else None
    if m:
        # keep the heading in the answer part: "Final Answer: B" is what names the letter
        return Split(text[m.start():].strip(), text[:m.start()].strip())
    return Split(_unwrap(text), None)


def _unwrap(text: str) -> str:
    for pattern in (_SOLUTION, _ANSWER_TAG):
        m = pattern.search(text)
        # a wrapper only when it is all there is ("B. <answer>C</answer>" is two answers; text after a
        # solution block is read too)
        if m and not (text[:m.start()] + text[m.end():]).strip():
            text = m.group(1)
    return text.strip()
