"""Prompt presets (the benchmark side of the protocol): sample + mode -> chat messages.

Backends receive only chat messages; they never see a benchmark name or a preset.
Constants come from the official MMStar evaluation code and the paper (docs/architecture.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .options import format_options_block
from .sample import Sample

PRESETS = {
    "official": "\nAnswer the question directly.",
    "letter": "\nAnswer with the option's letter from the given choices directly.",
}
MODES = ("v", "wv", "t")

T_SYSTEM = (
    "You are a helpful assistant. If you can't judge the answer, give your guess as to the most likely "
    "answer. Just give the answer, don't say anything beyond that, no analysis required."
)
_SHOT_TAIL = (
    "\nPlease select the correct answer from the options above.\n"
    "Answer with the option's letter from the given choices directly, such as answer letter 'A' only."
)
T_SHOTS: tuple[tuple[str, str], ...] = (
    (
        "Question: Which one is the correct caption of this image?\nOptions:\nA. The man is waving his hand.\n"
        "B. The man is sitting by the edge of the bathtub, gazing at the woman who is lying in the bathtub "
        "taking a bath.\nC. The boy is carrying the smiling girl on his back.\nD. The two dirty-faced "
        "children turn around and gaze intently." + _SHOT_TAIL,
        "B",
    ),
    (
        "Question: What's the function of the demonstrated object?\nOptions:\nA. oepn the door\n"
        "B. drink water\nC. carry personal belongings\nD. exercise" + _SHOT_TAIL,
        "D",
    ),
)


@dataclass(frozen=True)
class PromptConfig:
    preset: str = "official"
    shots: int = 2  # for mode t: 0 or 2 (the paper's 2-shot context for MMStar)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown prompt preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        if self.shots not in (0, 2):
            raise ValueError(f"shots must be 0 or 2, not {self.shots}")


def question_text(sample: Sample) -> str:
    """The question with its options, as a model should read it.

    Released MMStar questions embed their options; samples with option columns get the
    VLMEvalKit layout (hint, question, ``Options:`` block).
    """
    if sample.options_embedded:
        return sample.question
    parts = []
    if sample.hint:
        parts.append(f"Hint: {sample.hint}")
    parts.append(f"Question: {sample.question}")
    parts.append(format_options_block(sample.options))
    return "\n".join(parts)


def lvlm_prompt(sample: Sample, config: PromptConfig) -> str:
    return question_text(sample) + PRESETS[config.preset]


def llm_prompt(sample: Sample) -> str:
    return "Question: " + question_text(sample) + "\n"


def build_messages(sample: Sample, mode: str, config: PromptConfig) -> list[dict[str, Any]]:
    """Chat messages for one sample in one mode. ``v`` carries the image part; ``wv`` is the same
    prompt without it; ``t`` is the backbone prompt with the optional 2-shot context."""
    if mode == "v":
        content: list[dict[str, Any]] = [{"type": "image", "image": sample.image}]
        content.append({"type": "text", "text": lvlm_prompt(sample, config)})
        return [{"role": "user", "content": content}]
    if mode == "wv":
        return [{"role": "user", "content": [{"type": "text", "text": lvlm_prompt(sample, config)}]}]
    if mode == "t":
        messages: list[dict[str, Any]] = []
        if config.shots:
            messages.append({"role": "system", "content": [{"type": "text", "text": T_SYSTEM}]})
            for user, assistant in T_SHOTS[: config.shots]:
                messages.append({"role": "user", "content": [{"type": "text", "text": user}]})
                messages.append({"role": "assistant", "content": [{"type": "text", "text": assistant}]})
        messages.append({"role": "user", "content": [{"type": "text", "text": llm_prompt(sample)}]})
        return messages
    raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
