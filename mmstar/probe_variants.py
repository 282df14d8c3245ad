"""Leakage probes as data: seeded, deterministic variants of a benchmark's samples (``mmstar.probes``
is the public face: these and the scoring).

Each probe asks a question that ML = max(0, S_wv - S_t) cannot: does the model follow the answer's
position rather than its option (``order``), can it reproduce a masked option's text it never saw
(``slots``, TS-Guessing's question-multichoice form), does its answer move when the image does
(``swap``)? This module builds the variants and the work items (one request each, with the fields
its record carries); ``mmstar.evaluators.run.probes`` runs them through the same runner as v/wv/t,
and ``mmstar.probe_scores`` scores their records (``mmstar.probe_figures`` holds the arithmetic).
Same samples and seed, same variants, on every machine: the choices come from a keyed hash of
(seed, sample index), never from a global random state.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import DataError, MmstarError
from .options import OptionParseError, ParsedQuestion, parse_question
from .sample import Benchmark, Sample

PROBES = ("order", "slots", "swap", "recall")  # recall: mmstar/probe_recall.py
# recorded in the manifest: a figure is comparable under one version. v2: a mask never hides a text
# that another option or the question still shows (v1 did, 13 times in 4 seeds on MMStar)
PROBE_PROMPT_VERSION = "mmstar-probes-v2"
MASK = "[MASK]"
SLOT_PROMPT = (
    "One option of this multiple-choice question has been hidden and replaced by {mask}.\n"
    "Question: {stem}\nOptions:\n{options}\n"
    "Fill in the {mask} in option {letter}. Reply with the hidden option's text only."
)
SLOT_WORD_PROMPT = (
    "One word of this multiple-choice question has been hidden and replaced by {mask}.\n"
    "Question: {stem}\nOptions:\n{options}\n"
    "Fill in the {mask} in the question. Reply with the hidden word only."
)
# where each probe runs: order in every mode asked; slots without the image (a model that saw the
# image could read the text off it); swap with an image, by construction
PROBE_MODES = {"order": ("v", "wv", "t"), "slots": ("wv", "t"), "swap": ("v",), "recall": ("wv", "t")}
# words that carry no content: masking one tests grammar, not memory
_STOPWORDS = frozenset(
    "about above after again also among answer based been before being below between both could does each "
    "following from given have here image into most other picture question shown shows should some such "
    "than that their them then there these they this those through what when where which while whose with "
    "would your".split())


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
    letter: str | None  # the masked option's letter; None when a question word is masked
    target: str
    prompt: str


def _maskable(text: str) -> bool:
    """Texts worth hiding: a bare number or a single letter is guessed, not remembered."""
    words = re.findall(r"[A-Za-z]{2,}", text)
    return len(words) >= 2 and text.strip().lower() != "nan"


def _contains(outer: str, inner: str) -> bool:
    """Whether the normalised ``inner`` is ``outer`` or a run of its words."""
    return bool(inner) and f" {inner} " in f" {outer} "


def shown_elsewhere(sample: Sample, letter: str, stem: str) -> bool:
    """Whether the text of option ``letter`` can be read off what the slot prompt still shows:
    another option's text or the question, compared normalised (case, punctuation, articles and so
    a sign gone: "-3 m" and "3 m" count as the same text), either containing the other (a shorter
    other option only when it has two words or more). Copying such a text is no memory."""
    hidden = normalise(sample.options[letter])
    if _contains(normalise(stem), hidden):
        return True
    for other, text in sample.options.items():
        seen = normalise(text)
        if other != letter and (_contains(seen, hidden) or (len(seen.split()) >= 2 and _contains(hidden, seen))):
            return True
    return False


def slot_question(sample: Sample, seed: int = 0) -> SlotQuestion | None:
    """Hide one wrong option (chosen by a keyed hash), or None when no wrong option is long enough
    to be remembered rather than guessed and hidden for real (``shown_elsewhere``)."""
    parsed = _parsed(sample)
    wrong = [k for k, v in sample.options.items() if k != sample.answer and _maskable(v)
             and not shown_elsewhere(sample, k, parsed.stem)]
    if not wrong:
        return None
    letter = wrong[_draw(seed, "slots", sample.index) % len(wrong)]
    lines = "\n".join(f"{k}: {MASK if k == letter else v}" for k, v in sample.options.items())
    prompt = SLOT_PROMPT.format(mask=MASK, stem=parsed.stem.strip(), options=lines, letter=letter)
    return SlotQuestion(sample.index, letter, sample.options[letter], prompt)


def word_question(sample: Sample, seed: int = 0) -> SlotQuestion | None:
    """Hide one content word of the question (4+ letters, not a stop word, not a word of the answer's
    text, chosen by a keyed hash), or None when the question has no such word."""
    parsed = _parsed(sample)
    answer_words = set(normalise(sample.options.get(sample.answer, "")).split())
    words = [m for m in re.finditer(r"[A-Za-z]{4,}", parsed.stem)
             if m.group().lower() not in _STOPWORDS and normalise(m.group()) not in answer_words]
    if not words:
        return None
    pick = words[_draw(seed, "slots-word", sample.index) % len(words)]
    stem = (parsed.stem[:pick.start()] + MASK + parsed.stem[pick.end():]).strip()
    lines = "\n".join(f"{k}: {v}" for k, v in sample.options.items())
    return SlotQuestion(sample.index, None, pick.group(), SLOT_WORD_PROMPT.format(mask=MASK, stem=stem, options=lines))


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


# ------------------------------------------------------------------------------------ the work items


@dataclass(frozen=True)
class ProbeItem:
    """One probe request: the variant as asked, the record's ``key`` and the fields its line carries.
    ``prompt`` (slots) is the fixed slot prompt, asked instead of the benchmark's own."""

    probe: str
    mode: str
    key: str
    sample: Sample
    fields: dict[str, Any] = field(default_factory=dict)
    prompt: str | None = None

    @property
    def options(self) -> dict[str, str]:  # the batched loop's letter ranking reads a work item's options
        return self.sample.options


def probe_file(probe: str, mode: str) -> str:
    """The record file's stem in the run directory: ``order-v``, ``slots-t``, ``swap-v``."""
    return f"{probe}-{mode}"


def probe_files() -> tuple[str, ...]:
    return tuple(probe_file(p, m) for p in PROBES for m in PROBE_MODES[p])


def parse_probes(names: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"order,slots"`` or a list -> the probes in PROBES order; an unknown name is one line."""
    if not names:
        return ()
    items = names.split(",") if isinstance(names, str) else [str(n) for n in names]
    wanted = {n.strip() for n in items if n.strip()}
    bad = sorted(wanted - set(PROBES))
    if bad:
        raise MmstarError(f"unknown probe(s) {', '.join(map(repr, bad))}; use a comma list of {', '.join(PROBES)}")
    return tuple(p for p in PROBES if p in wanted)


def probe_modes(probe: str, modes: Sequence[str]) -> tuple[str, ...]:
    """The run's modes this probe runs in; none is one line saying which it needs."""
    chosen = tuple(m for m in PROBE_MODES[probe] if m in modes)
    if not chosen:
        raise MmstarError(f"probe {probe} runs in mode {' or '.join(PROBE_MODES[probe])}; --modes "
                          f"{','.join(modes)} has none of them")
    return chosen


def check_probe_input(bench: Benchmark, probes: Sequence[str]) -> None:
    """Bad input for the probes asked, as one line naming the data, the sample and what is wrong."""
    if not probes:
        return
    if not any(s.options for s in bench):
        raise DataError(bench.origin, f"no sample has options; probes ({', '.join(probes)}) need multiple-choice "
                                      "questions")
    if "order" in probes:
        for s in bench:
            if len(s.options) < 2:
                raise DataError(bench.origin, f"sample {s.index} has {len(s.options)} option(s); the order probe "
                                              "rotates options and needs at least two")
    if "swap" in probes:
        by_capability: dict[str, list[int]] = defaultdict(list)
        for s in bench:
            if s.image is not None:
                by_capability[s.category].append(s.index)
        for capability, indices in sorted(by_capability.items()):
            if len(indices) == 1:
                raise DataError(bench.origin, f"capability {capability!r} has a single sample with an image "
                                              f"({indices[0]}); the swap probe exchanges images within a "
                                              "capability and needs two (a larger --limit, or leave swap out)")


def probe_items(bench: Benchmark, probe: str, mode: str, seed: int = 0, words: bool = False) -> list[ProbeItem]:
    """Every request of ``probe`` in ``mode``, in sample order (rotations of a sample adjacent). The
    recall probe's items come from its own module (``mmstar.probes.probe_items`` joins them): it imports
    this one, so this one must not import it."""
    if probe == "order":
        return [_order_item(s, shift, mode) for s in bench for shift in range(1, len(s.options))]
    if probe == "slots":
        items = []
        for s in bench:
            for variant, q in (("option", slot_question(s, seed)), ("word", word_question(s, seed) if words else None)):
                if q is not None:
                    items.append(ProbeItem("slots", mode, f"{s.index}:{variant}", s, {
                        "probe": "slots", "variant": variant, "key": f"{s.index}:{variant}",
                        "masked_letter": q.letter, "target": q.target}, q.prompt))
        return items
    if probe == "swap":
        swapped, donors = swap_images(bench, seed)
        return [ProbeItem("swap", mode, f"{s.index}:swap", s, {"probe": "swap", "variant": "swap",
                          "key": f"{s.index}:swap", "image_from": donors[s.index]}) for s in swapped]
    raise ValueError(f"unknown probe {probe!r}")


def _order_item(sample: Sample, shift: int, mode: str) -> ProbeItem:
    r = rotate(sample, shift)
    key = f"{sample.index}:r{shift}"
    return ProbeItem("order", mode, key, r, {"probe": "order", "variant": f"r{shift}", "key": key, "shift": shift})


def probe_prompts() -> dict[str, str]:
    """The fixed prompt texts of the generated probes (``mmstar.probes.probe_prompts`` adds recall's)."""
    return {"slots-option": SLOT_PROMPT, "slots-word": SLOT_WORD_PROMPT}

