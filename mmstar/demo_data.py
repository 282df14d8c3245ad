"""A seeded generator of vision-indispensable demo samples in the MMStar schema.

Every question is about a procedurally drawn 64x64 image and covers one of the 18 axes. The answer
value is drawn uniformly, so the text alone carries no cue: a text-only model is at chance by
construction. Options come in a fixed order per question type (the bundled data), so a position
names a value and a model can score without reading its options (the order probe shows it); with
``vary_order`` each sample has its own seeded option order and a model must read them.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from dataclasses import dataclass

from .sample import Benchmark, ImageRef, Sample
from .taxonomy import capability_of_axis

SIZE = 64
COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 200, 30)}
BG = (245, 245, 245)


@dataclass(frozen=True)
class Item:
    axis: str
    question: str
    options: tuple[str, ...]
    answer: int  # position in options
    draw: Callable  # (ImageDraw, rng) -> None


def _shape(d, kind: str, cx: int, cy: int, r: int, fill) -> None:
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    else:  # cross
        w = max(2, r // 2)
        d.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fill)
        d.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fill)


def _spots(n: int, rng: random.Random, r: int = 6) -> list[tuple[int, int]]:
    cells = [(x, y) for x in (12, 32, 52) for y in (12, 32, 52)]
    return rng.sample(cells, n)


# -------------------------------------------------------------- one builder per axis


def _scene(rng):
    k = rng.randrange(4)
    col = list(COLOURS.values())[k]
    return ("What is the main colour of the background of the image?", tuple(COLOURS), k,
            lambda d, r: d.rectangle([0, 0, SIZE, SIZE], fill=col))


def _style(rng):
    k = rng.randrange(4)
    opts = ("bright", "dark", "striped", "dotted")

    def draw(d, r):
        if k == 0:
            d.rectangle([0, 0, SIZE, SIZE], fill=(250, 250, 235))
        elif k == 1:
            d.rectangle([0, 0, SIZE, SIZE], fill=(20, 20, 30))
        elif k == 2:
            for y in range(0, SIZE, 8):
                d.rectangle([0, y, SIZE, y + 3], fill=(60, 60, 60))
        else:
            for x in range(4, SIZE, 10):
                for y in range(4, SIZE, 10):
                    d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(60, 60, 60))
    return "What is the style of the image?", opts, k, draw


def _emotion(rng):
    k = rng.randrange(4)

    def draw(d, r):
        d.ellipse([8, 8, 56, 56], fill=COLOURS["yellow"])
        d.ellipse([20, 22, 26, 28], fill=(0, 0, 0))
        d.ellipse([38, 22, 44, 28], fill=(0, 0, 0))
        if k == 0:
            d.arc([20, 28, 44, 48], 20, 160, fill=(0, 0, 0), width=3)
        elif k == 1:
            d.arc([20, 38, 44, 56], 200, 340, fill=(0, 0, 0), width=3)
        elif k == 2:
            d.ellipse([27, 36, 37, 48], outline=(0, 0, 0), width=3)
        else:
            d.line([22, 42, 42, 42], fill=(0, 0, 0), width=3)
    return "What emotion does the face in the image show?", ("happy", "sad", "surprised", "neutral"), k, draw


def _counting(rng):
    k = rng.randrange(4)
    kind = rng.choice(["circle", "square"])

    def draw(d, r):
        for x, y in _spots(k + 1, r):
            _shape(d, kind, x, y, 6, COLOURS["blue"])
    return "How many objects are in the image?", ("1", "2", "3", "4"), k, draw


def _recognition(rng):
    kinds = ("circle", "square", "triangle", "cross")
    k = rng.randrange(4)
    return ("Which shape is shown in the image?", kinds, k,
            lambda d, r: _shape(d, kinds[k], 32, 32, 18, COLOURS[r.choice(list(COLOURS))]))


def _localization(rng):
    k = rng.randrange(4)
    pos = [(16, 16), (48, 16), (16, 48), (48, 48)][k]
    return ("Where is the object located in the image?", ("top left", "top right", "bottom left", "bottom right"),
            k, lambda d, r: _shape(d, "circle", *pos, 10, COLOURS["red"]))


def _single(rng):
    k = rng.randrange(4)
    col = list(COLOURS.values())[k]
    return ("What colour is the object in the image?", tuple(COLOURS), k,
            lambda d, r: _shape(d, r.choice(["circle", "square", "triangle"]), 32, 32, 16, col))


def _cross_attr(rng):
    k = rng.randrange(4)
    big = list(COLOURS.values())[k]

    def draw(d, r):
        small = r.choice([c for c in COLOURS.values() if c != big])
        left_big = r.random() < 0.5
        _shape(d, "circle", 18 if left_big else 46, 32, 14 if True else 0, big)
        _shape(d, "circle", 46 if left_big else 18, 32, 6, small)
    return "What colour is the larger of the two objects?", tuple(COLOURS), k, draw


def _cross_rel(rng):
    k = rng.randrange(4)
    offsets = [(-20, 0), (20, 0), (0, -20), (0, 20)]

    def draw(d, r):
        _shape(d, "square", 32, 32, 8, COLOURS["blue"])
        dx, dy = offsets[k]
        _shape(d, "circle", 32 + dx, 32 + dy, 7, COLOURS["red"])
    return ("Where is the circle relative to the square?", ("left of it", "right of it", "above it", "below it"),
            k, draw)


def _sequence(rng):
    k = rng.randrange(4)

    def draw(d, r):
        for i in range(4):  # bars growing by one step; the last bar's height is asked
            h = 8 + 10 * (k + i) // 2 if i < 3 else 8 + 10 * (k + 3) // 2
            d.rectangle([6 + i * 15, SIZE - 4 - h, 16 + i * 15, SIZE - 4], fill=COLOURS["green"])
    return ("The bars grow from left to right. How tall is the last bar, in steps of the first?",
            ("short", "medium", "tall", "very tall"), k, draw)


def _diagram(rng):
    k = rng.randrange(4)

    def draw(d, r):
        pts = {0: [(32, 8), (18, 30), (46, 30)], 1: [(32, 56), (18, 34), (46, 34)],
               2: [(8, 32), (30, 18), (30, 46)], 3: [(56, 32), (34, 18), (34, 46)]}[k]
        line = {0: [29, 30, 35, 56], 1: [29, 8, 35, 34], 2: [30, 29, 56, 35], 3: [8, 29, 34, 35]}[k]
        d.rectangle(line, fill=(0, 0, 0))
        d.polygon(pts, fill=(0, 0, 0))
    return "In which direction does the arrow point?", ("up", "down", "left", "right"), k, draw


def _common(rng):
    k = rng.randrange(4)

    def draw(d, r):
        d.rectangle([22, 4, 42, 60], fill=(40, 40, 40))
        lit = {0: 0, 1: 2, 2: 1}.get(k)
        for i, col in enumerate([(220, 40, 40), (230, 200, 30), (40, 170, 60)]):
            dim = tuple(c // 4 for c in col)
            d.ellipse([26, 8 + i * 17, 38, 20 + i * 17], fill=col if lit == i else dim)
    return ("What should a driver do at this traffic light?",
            ("stop", "go", "get ready to stop", "nothing, it is switched off"), k, draw)


def _science(rng):
    k = rng.randrange(4)

    def draw(d, r):
        d.rectangle([28, 6, 36, 52], outline=(0, 0, 0))
        d.ellipse([24, 48, 40, 62], fill=COLOURS["red"])
        top = 50 - 11 * (k + 1)
        d.rectangle([29, top, 35, 52], fill=COLOURS["red"])
    return "What does the thermometer show?", ("freezing", "cool", "warm", "hot"), k, draw


def _engineering(rng):
    k = rng.randrange(4)

    def draw(d, r):
        d.rectangle([8, 20, 52, 44], outline=(0, 0, 0), width=2)
        d.rectangle([52, 27, 57, 37], fill=(0, 0, 0))
        for i in range(k + 1):
            d.rectangle([11 + i * 10, 23, 19 + i * 10, 41], fill=COLOURS["green"])
    return "How charged is the battery?", ("25%", "50%", "75%", "100%"), k, draw


def _geography(rng):
    k = rng.randrange(4)
    box = [(16, 2, 48, 22), (16, 42, 48, 62), (42, 16, 62, 48), (2, 16, 22, 48)][k]

    def draw(d, r):
        d.rectangle([0, 0, SIZE, SIZE], fill=(150, 200, 120))
        d.ellipse(list(box), fill=COLOURS["blue"])
        d.text((29, 26), "N", fill=(0, 0, 0))
    return "On this map (north is up), where is the lake?", ("north", "south", "east", "west"), k, draw


def _geometry(rng):
    import math

    k = rng.randrange(4)

    def draw(d, r):
        n = k + 3
        pts = [(32 + 22 * math.cos(2 * math.pi * i / n - math.pi / 2), 32 + 22 * math.sin(2 * math.pi * i / n
                - math.pi / 2)) for i in range(n)]
        d.polygon(pts, fill=COLOURS["blue"])
    return "How many sides does the polygon have?", ("3", "4", "5", "6"), k, draw


def _calculation(rng):
    k = rng.randrange(4)
    total = k + 3

    def draw(d, r):
        left = r.randint(1, total - 1)
        for i in range(left):
            _shape(d, "circle", 12, 8 + i * 11, 4, COLOURS["red"])
        for i in range(total - left):
            _shape(d, "circle", 50, 8 + i * 11, 4, COLOURS["blue"])
    return "How many dots are there in total, red and blue together?", ("3", "4", "5", "6"), k, draw


def _statistics(rng):
    k = rng.randrange(4)

    def draw(d, r):
        heights = r.sample([14, 24, 34], 3)
        heights.insert(k, 52)
        for i, h in enumerate(heights):
            d.rectangle([6 + i * 14, SIZE - 4 - h, 16 + i * 14, SIZE - 4], fill=COLOURS["blue"])
    return "Which bar in the chart is the tallest?", ("the first", "the second", "the third", "the fourth"), k, draw


BUILDERS: dict[str, Callable] = {
    "image scene and topic": _scene, "image style & quality": _style, "image emotion": _emotion,
    "object counting": _counting, "recognition": _recognition, "localization": _localization,
    "single-instance reasoning": _single, "cross-instance attribute reasoning": _cross_attr,
    "cross-instance relation reasoning": _cross_rel, "code & sequence reasoning": _sequence,
    "diagram reasoning": _diagram, "common reasoning": _common,
    "biology & chemistry & physics": _science, "electronics & energy & mechanical eng.": _engineering,
    "geography & earth science & agriculture": _geography, "geometry": _geometry,
    "numeric commonsense and calculation": _calculation, "statistical reasoning": _statistics,
}


def _png(draw: Callable, rng: random.Random) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (SIZE, SIZE), BG)
    draw(ImageDraw.Draw(img), rng)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


_CODE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def make_sample(index: int, axis: str, rng: random.Random, split: str, vary_order: bool = False) -> Sample:
    """Each question carries a random picture code, as real benchmark questions are distinct strings;
    the code says nothing about the answer, but it lets a model memorise leaked test items."""
    question, options, k, draw = BUILDERS[axis](rng)
    code = "".join(rng.choice(_CODE_CHARS) for _ in range(4))
    question = f"Picture {code}. {question}"
    if vary_order:  # this sample's own option order (drawn only then: fixed-order data stays as shipped)
        order = rng.sample(range(len(options)), len(options))
        options, k = tuple(options[i] for i in order), order.index(k)
    letters = "ABCD"
    body = ", ".join(f"{letters[i]}: {text}" for i, text in enumerate(options))
    cap = capability_of_axis(axis)
    if cap is None:  # every demo axis belongs to a capability; kept under python -O too
        raise RuntimeError(f"demo axis {axis!r} has no capability")
    return Sample(
        index=index, question=f"{question}\nOptions: {body}", options=dict(zip(letters, options)),
        answer=letters[k], category=cap.name, l2_category=axis, source="mmstar-demo",
        image=ImageRef(data=_png(draw, rng)), meta={"split": split, "image_path": f"{index}.png"},
    )


def generate(per_axis: int = 10, seed: int = 0, split: str = "test", start_index: int = 0,
             vary_order: bool = False) -> Benchmark:
    """``per_axis`` samples for each of the 18 axes, interleaved, deterministic for a seed (and
    ``vary_order``: each sample's options in their own seeded order)."""
    rng = random.Random(f"{seed}-{split}")  # noqa: S311  seeded synthetic data, not a secret
    samples = []
    index = start_index
    for _ in range(per_axis):
        for axis in BUILDERS:
            samples.append(make_sample(index, axis, rng, split, vary_order))
            index += 1
    return Benchmark(f"mmstar-demo-{split}", samples)


def canonical(sample: Sample) -> Sample:
    """``sample`` with its options in its question type's fixed order (the answer moved with its
    text): the first stage of the demo models' curriculum, where a position still names a value."""
    fixed = BUILDERS[sample.l2_category](random.Random(0))[1]  # noqa: S311  only the option tuple is read
    if set(fixed) != set(sample.options.values()):
        return sample
    letters = list(sample.options)
    value = sample.options.get(sample.answer)
    options = dict(zip(letters, fixed))
    stem = sample.question.split("\nOptions:")[0]
    body = ", ".join(f"{k}: {v}" for k, v in options.items())
    return sample.with_(question=f"{stem}\nOptions: {body}", options=options,
                        answer=letters[fixed.index(value)] if value in fixed else sample.answer)
