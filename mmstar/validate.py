"""Benchmark validation: every problem, each with its row; used by ``mmstar data validate``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from . import taxonomy
from .errors import DataError
from .loaders import RawTable, iter_problems
from .sample import Sample


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" | "warning"
    row: int | None
    index: int | None
    message: str

    def line(self, origin: str) -> str:
        where = origin + (f", row {self.row}" if self.row is not None else "")
        what = f"index {self.index}: " if self.index is not None else ""
        return f"{self.severity}: {where}: {what}{self.message}"


def validate_table(
    table: RawTable, *, taxonomy_mode: str = "auto", check_images: bool = True
) -> tuple[list[Sample], list[Problem]]:
    """Build every row and check it; returns the samples that built and all problems found.

    ``taxonomy_mode``: "mmstar" checks the 6 x 18 strings, "none" skips, "auto" checks when most
    categories are MMStar capability strings.
    """
    problems: list[Problem] = []
    built: list[tuple[int, Sample]] = []
    for raw, result in iter_problems(table):
        if isinstance(result, DataError):
            problems.append(Problem("error", raw.rownum, None, result.detail))
        else:
            built.append((raw.rownum, result))

    check_taxonomy = taxonomy_mode == "mmstar" or (
        taxonomy_mode == "auto" and taxonomy.looks_like_mmstar((s.category, s.l2_category) for _, s in built)
    )
    counts = Counter(s.index for _, s in built)
    any_image = any(s.image is not None for _, s in built)
    seen_dupes: set[int] = set()
    for row, s in built:
        problems.extend(_sample_problems(row, s, check_taxonomy))
        if counts[s.index] > 1 and s.index not in seen_dupes:
            seen_dupes.add(s.index)
            rows = [r for r, t in built if t.index == s.index]
            problems.append(Problem("error", row, s.index, f"duplicate index (rows {', '.join(map(str, rows))})"))
        if check_images:
            problems.extend(_image_problems(row, s, any_image))
    if built and not any_image:
        problems.append(Problem("warning", None, None, "no sample has an image (text-only file)"))
    return [s for _, s in built], problems


def _sample_problems(row: int, s: Sample, check_taxonomy: bool) -> list[Problem]:
    out = []
    if s.answer not in s.options:
        out.append(Problem("error", row, s.index,
                           f"answer {s.answer!r} is not among the options {', '.join(s.options)}"))
    letters = "".join(s.options)
    if letters != "ABCDEFGHIJ"[: len(letters)]:
        out.append(Problem("error", row, s.index, f"option letters {letters} are not consecutive from A"))
    for letter, text in s.options.items():
        if text.strip().lower() == "nan":
            out.append(Problem("warning", row, s.index,
                               f"option {letter} is the literal text 'nan' (a known fault of the source data)"))
        elif not text.strip():
            out.append(Problem("error", row, s.index, f"option {letter} is empty"))
    if check_taxonomy:
        out.extend(Problem("error", row, s.index, msg) for msg in taxonomy.check_labels(s.category, s.l2_category))
    return out


def _image_problems(row: int, s: Sample, any_image: bool) -> list[Problem]:
    if s.image is None:
        return [Problem("error", row, s.index, "missing image")] if any_image else []
    try:
        s.image.pil()
    except DataError as exc:
        return [Problem("error", row, s.index, exc.detail)]
    return []
