"""Leakage probes as data: seeded, deterministic variants of a benchmark's samples.

Each probe asks a question that ML = max(0, S_wv - S_t) cannot: does the model follow the answer's
position rather than its option (``order``), can it reproduce a masked option's text it never saw
(``slots``, TS-Guessing's question-multichoice form), does its answer move when the image does
(``swap``)? This module only builds the variants; they run through the same runner as v/wv/t, and
``mmstar.metrics.probes`` scores them. Same samples and seed, same variants, on every machine: the
choices come from a keyed hash of (seed, sample index), never from a global random state.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .options import OptionParseError, ParsedQuestion, parse_question
from .sample import Benchmark, Sample

PROBES = ("order", "slots", "swap")
PROBE_PROMPT_VERSION = "mmstar-probes-v1"  # recorded in the manifest: a figure is comparable under one version
MASK = "[MASK]"
SLOT_PROMPT = (
    "One option of this multiple-choice question has been hidden and replaced by {mask}.\n"
    "Question: {stem}\nOptions:\n{options}\n"
    "Fill in the {mask} in option {letter}. Reply with the hidden option's text only."
)


def _draw(seed: int, *key: object) -> int:
    """A deterministic 64-bit draw for (seed, key): the same on every machine and Python version."""
    text = "\x1f".join(map(str, (seed, *key))).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def _parsed(sample: Sample) -> ParsedQuestion:
    """The question's stem and option list (options kept in columns are rendered inline)."""
    if not sample.options_embedded:
        return ParsedQuestion(sample.question, dict(sample.options), "columns")
    try:
        return parse_question(sample.question)
    except OptionParseError:  # the loader had options from elsewhere: keep the question as the stem
        return ParsedQuestion(sample.question, dict(sample.options), "columns")


def render_question(stem: str, options: dict[str, str], style: str) -> str:
    """The question text with ``options`` laid out in the style the data used."""
    if style == "choices":
        return stem + "\nChoices:\n" + "\n".join(f"({k}) {v}" for k, v in options.items())
    return stem + "\nOptions: " + ", ".join(f"{k}: {v}" for k, v in options.items())


# ---------------------------------------------------------------------------------------------- order


def rotate(sample: Sample, shift: int) -> Sample:
    """The options moved ``shift`` places cyclically (letter i now holds the text of letter i+shift),
    the answer moved with its text. ``shift`` 0 is the sample itself."""
    letters = list(sample.options)
    n = len(letters)
    shift %= n
    if shift == 0:
        return sample
    parsed = _parsed(sample)
    texts = [sample.options[k] for k in letters]
    options = {letters[i]: texts[(i + shift) % n] for i in range(n)}
    answer = letters[(letters.index(sample.answer) - shift) % n] if sample.answer in letters else sample.answer
    question = render_question(parsed.stem, options, parsed.style) if sample.options_embedded else sample.question
    meta = {**sample.meta, "probe": {"name": "order", "shift": shift, "answer_was": sample.answer}}
    return sample.with_(question=question, options=options, answer=answer, meta=meta)


def rotations(bench: Benchmark, shift: int) -> Benchmark:
    """Every sample rotated by ``shift`` (samples with fewer options wrap around sooner)."""
    return Benchmark(f"{bench.name}", [rotate(s, shift) for s in bench], bench.origin)


def max_options(bench: Iterable[Sample]) -> int:
    return max((len(s.options) for s in bench), default=0)


# ---------------------------------------------------------------------------------------------- slots


@dataclass(frozen=True)
class SlotQuestion:
    """A sample with one wrong option's text hidden; ``target`` is what the model should not know."""

    index: int
    letter: str
    target: str
    prompt: str


def _maskable(text: str) -> bool:
    """Texts worth hiding: a bare number or a single letter is guessed, not remembered."""
    words = re.findall(r"[A-Za-z]{2,}", text)
    return len(words) >= 2 and text.strip().lower() != "nan"


def slot_question(sample: Sample, seed: int = 0) -> SlotQuestion | None:
    """Hide one wrong option (chosen by a keyed hash), or None when no wrong option is long enough
    to be remembered rather than guessed."""
    wrong = [k for k, v in sample.options.items() if k != sample.answer and _maskable(v)]
    if not wrong:
        return None
    letter = wrong[_draw(seed, "slots", sample.index) % len(wrong)]
    parsed = _parsed(sample)
    lines = "\n".join(f"{k}: {MASK if k == letter else v}" for k, v in sample.options.items())
    prompt = SLOT_PROMPT.format(mask=MASK, stem=parsed.stem.strip(), options=lines, letter=letter)
    return SlotQuestion(sample.index, letter, sample.options[letter], prompt)


def normalise(text: str) -> str:
    """Lowercase, punctuation and articles gone, spaces collapsed (SQuAD's normalisation)."""
    text = text.lower()
    text = re.sub(r"[^\w\s]", " ", text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def slot_reply_matches(reply: str, target: str) -> bool:
    """Whether the reply reproduces the hidden text: the normalised first line equals the target's,
    or contains it when the model restated the option (``B: the text``)."""
    first = next((ln for ln in reply.strip().splitlines() if ln.strip()), "")
    first = re.sub(r"^\s*(option\s+)?[A-J]\s*[:.)]\s*", "", first, flags=re.I)
    got, want = normalise(first), normalise(target)
    return bool(want) and (got == want or (len(want.split()) >= 2 and f" {want} " in f" {got} "))


# ----------------------------------------------------------------------------------------------- swap


def derangement(indices: Sequence[int], seed: int, salt: object = "") -> dict[int, int]:
    """A seeded permutation of ``indices`` with no fixed point (Sattolo's cycle): index -> donor.
    Fewer than two indices have no derangement: an empty mapping."""
    if len(indices) < 2:
        return {}
    order = sorted(indices, key=lambda i: _draw(seed, "swap-order", salt, i))
    cycle = list(order)
    for i in range(len(cycle) - 1, 0, -1):  # Sattolo: j < i, so the permutation is one n-cycle
        j = _draw(seed, "swap", salt, i) % i
        cycle[i], cycle[j] = cycle[j], cycle[i]
    return dict(zip(order, cycle))


def swap_images(bench: Benchmark, seed: int = 0) -> tuple[Benchmark, dict[int, int]]:
    """Each sample with an image gets the image of another sample of the same capability; the
    samples of a capability with a single image are left out. Returns the variant and index -> donor."""
    by_capability: dict[str, list[int]] = defaultdict(list)
    samples = {s.index: s for s in bench}
    for s in bench:
        if s.image is not None:
            by_capability[s.category].append(s.index)
    donors: dict[int, int] = {}
    for capability, indices in sorted(by_capability.items()):
        donors.update(derangement(indices, seed, capability))
    swapped = [samples[i].with_(image=samples[d].image, meta={**samples[i].meta, "probe": {
        "name": "swap", "image_of": d}}) for i, d in sorted(donors.items())]
    return Benchmark(bench.name, swapped, bench.origin), donors
