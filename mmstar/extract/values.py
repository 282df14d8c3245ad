"""Values written in many ways: "12", "twelve", "a dozen", "1/2", "50%", "1.5 m" = "150 cm",
"fifteen dollars" = "$15". An option whose text is one value is chosen by a reply that states
that value and no other option's value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from .lexicon import NUMBER_WORDS, NUMBER_WORDS_LATIN_AMBIGUOUS, UNITS

Value = tuple[float, str]  # (amount in the unit's base, dimension; "" for a bare number)

_WORDS = sorted((w for w in NUMBER_WORDS if w not in NUMBER_WORDS_LATIN_AMBIGUOUS and len(w) > 1),
                key=len, reverse=True)
_CJK_DIGITS = "".join(w for w in NUMBER_WORDS if len(w) == 1)
_UNIT_NAMES = sorted(UNITS, key=len, reverse=True)
_UNIT_RE = "|".join(re.escape(u) for u in _UNIT_NAMES)
_NUM = r"-?\d+(?:[.,]\d+)?(?:\s*/\s*\d+)?"
_AMOUNT = rf"(?:{_NUM}|{'|'.join(re.escape(w) for w in _WORDS)})"
# [currency] amount [unit]; the unit must end the word ("5 m" yes, "5 apples" no unit)
_VALUE = re.compile(
    rf"(?<![A-Za-z0-9_.])(?P<cur>[$€£¥])?\s*(?P<amt>{_AMOUNT})(?:\s*(?P<unit>{_UNIT_RE})(?!\w)|(?![A-Za-z0-9_]))", re.I)
# Chinese / Japanese numerals count only before a counter word ("五个苹果"), never inside words ("一样")
_CJK_VALUE = re.compile(rf"([{_CJK_DIGITS}])(?=[个只張张辆輛名人本条條棵座块塊头頭匹把件位次台枚匹個つ])")


def _amount(text: str) -> float | None:
    text = text.strip().lower()
    if text in NUMBER_WORDS:
        return float(NUMBER_WORDS[text])
    text = text.replace(" ", "")
    if "/" in text:
        num, _, den = text.partition("/")
        try:
            return float(num.replace(",", ".")) / float(den) if float(den) else None
        except ValueError:
            return None
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+", text):  # 1,000 is a thousand; 0,5 is a half
        text = text.replace(",", "")
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None


def values_in(text: str) -> list[tuple[int, Value]]:
    """Every value the text states, with its position."""
    found: list[tuple[int, Value]] = []
    for m in _VALUE.finditer(text):
        amount = _amount(m.group("amt"))
        if amount is None:
            continue
        unit = (m.group("unit") or m.group("cur") or "").lower()
        dim, factor = UNITS.get(unit, ("", 1.0))
        found.append((m.start(), (round(amount * factor, 9), dim)))
    for m in _CJK_VALUE.finditer(text):
        found.append((m.start(), (float(NUMBER_WORDS[m.group(1)]), "")))
    return found


@lru_cache(maxsize=65536)
def option_value(text: str) -> Value | None:
    """The one value an option's text is ("12", "$15", "1.5 m", "50%", "twelve"), else None."""
    text = text.strip().rstrip(".")
    found = values_in(text)
    if len(found) != 1:
        return None
    at, value = found[0]
    m = _VALUE.match(text, at)
    return value if m and not text[:at].strip() and not text[m.end():].strip() else None


def same(a: Value, b: Value) -> bool:
    """Equal amounts in the same dimension; a bare number matches a unit-bearing one ("5" vs "5 cm"),
    and a percent matches its fraction ("50%" vs "0.5", "1/2")."""
    (x, dx), (y, dy) = a, b
    if dx and dy and dx != dy:
        return False
    if abs(x - y) <= 1e-9 * max(1.0, abs(x)):
        return True
    if {dx, dy} == {"%", ""}:  # "50%" and "0.5" / "1/2"
        pct, frac = (x, y) if dx == "%" else (y, x)
        return abs(pct / 100 - frac) <= 1e-9
    return False


def value_letters(text: str, options: Mapping[str, str]) -> list[tuple[int, str]]:
    """(position, letter) for each value in the text that is exactly one option's value."""
    values = {k: v for k, v in ((k, option_value(str(t))) for k, t in options.items()) if v is not None}
    if not values:
        return []
    out = []
    for at, value in values_in(text):
        hits = [k for k, v in values.items() if same(value, v)]
        if len(hits) == 1:
            out.append((at, hits[0]))
    return out
