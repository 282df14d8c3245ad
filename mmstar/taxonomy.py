"""MMStar's 6 core capabilities x 18 axes, with the exact strings of the released data.

The data strings are what appears in ``category`` / ``l2_category``; the display names are what
the paper prints (e.g. "attribute & celebrity recognition" for ``recognition``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Axis:
    name: str  # data string in ``l2_category``
    display: str


@dataclass(frozen=True)
class Capability:
    code: str
    name: str  # data string in ``category``
    display: str
    axes: tuple[Axis, Axis, Axis]

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)


CAPABILITIES: tuple[Capability, ...] = (
    Capability("CP", "coarse perception", "Coarse Perception", (
        Axis("image scene and topic", "image scene & topic"),
        Axis("image style & quality", "image style & quality"),
        Axis("image emotion", "image emotion"),
    )),
    Capability("FP", "fine-grained perception", "Fine-grained Perception", (
        Axis("object counting", "object counting"),
        Axis("recognition", "attribute & celebrity recognition"),
        Axis("localization", "object location"),
    )),
    Capability("IR", "instance reasoning", "Instance Reasoning", (
        Axis("single-instance reasoning", "single-instance attribute reasoning"),
        Axis("cross-instance attribute reasoning", "cross-instance attribute comparison"),
        Axis("cross-instance relation reasoning", "cross-instance relation reasoning"),
    )),
    Capability("LR", "logical reasoning", "Logical Reasoning", (
        Axis("code & sequence reasoning", "code & sequence reasoning"),
        Axis("diagram reasoning", "diagram reasoning"),
        Axis("common reasoning", "common reasoning"),
    )),
    Capability("ST", "science & technology", "Science & Technology", (
        Axis("biology & chemistry & physics", "natural science"),
        Axis("electronics & energy & mechanical eng.", "engineering"),
        Axis("geography & earth science & agriculture", "geography & earth science"),
    )),
    Capability("MA", "math", "Mathematics", (
        Axis("geometry", "geometry"),
        Axis("numeric commonsense and calculation", "numeric commonsense & calculation"),
        Axis("statistical reasoning", "statistical analysis"),
    )),
)

CODES: tuple[str, ...] = tuple(c.code for c in CAPABILITIES)
CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in CAPABILITIES)
AXIS_NAMES: tuple[str, ...] = tuple(a.name for c in CAPABILITIES for a in c.axes)

_BY_NAME = {c.name: c for c in CAPABILITIES}
_BY_CODE = {c.code: c for c in CAPABILITIES}
_AXIS_TO_CAPABILITY = {a.name: c for c in CAPABILITIES for a in c.axes}
_AXIS_DISPLAY = {a.name: a.display for c in CAPABILITIES for a in c.axes}


def capability(name_or_code: str) -> Capability:
    """Look a capability up by data string or code; KeyError names the valid choices."""
    found = _BY_NAME.get(name_or_code) or _BY_CODE.get(name_or_code)
    if found is None:
        raise KeyError(f"unknown capability {name_or_code!r}; expected one of {', '.join(CATEGORY_NAMES)}")
    return found


def capability_of_axis(axis: str) -> Capability | None:
    return _AXIS_TO_CAPABILITY.get(axis)


def code_of(category: str) -> str | None:
    found = _BY_NAME.get(category)
    return found.code if found else None


def display_name(data_string: str) -> str:
    """Paper's display name of a capability or axis data string (the string itself if unknown)."""
    if data_string in _BY_NAME:
        return _BY_NAME[data_string].display
    return _AXIS_DISPLAY.get(data_string, data_string)


def check_labels(category: str, l2_category: str) -> list[str]:
    """Problems with one (category, axis) pair under the MMStar taxonomy; empty when valid."""
    problems = []
    cap = _BY_NAME.get(category)
    if cap is None:
        problems.append(f"unknown category {category!r}")
    axis_cap = _AXIS_TO_CAPABILITY.get(l2_category)
    if axis_cap is None:
        problems.append(f"unknown l2_category {l2_category!r}")
    if cap is not None and axis_cap is not None and axis_cap is not cap:
        problems.append(
            f"l2_category {l2_category!r} belongs to {axis_cap.name!r}, not to category {category!r}"
        )
    return problems


def looks_like_mmstar(pairs: Iterable[tuple[str, str]], threshold: float = 0.5) -> bool:
    """Whether data uses the MMStar taxonomy: most of its categories are MMStar capability strings.

    Used to decide whether to check the 6 x 18 strings; other benchmarks keep free-form categories.
    """
    total = known = 0
    for category, _axis in pairs:
        total += 1
        known += category in _BY_NAME
    return total > 0 and known / total >= threshold
