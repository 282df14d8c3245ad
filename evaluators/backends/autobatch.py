"""``--batch-size auto``: grow the batch while it fits, settle on the largest size that ran.

Pending samples run longest prompt first, so the first batches are the hardest: a size that ran on
them fits everything after. The probe therefore costs nothing extra: every probe batch is a real
batch whose predictions are kept. Sizes double from ``start`` until a batch does not fit
(``BatchTooLarge`` from the backend), then bisect between the largest size that ran and the
smallest that did not, until the gap is under a quarter of the former. Outputs do not depend on the
batch size, so an auto run predicts what a fixed-size run predicts.
"""

from __future__ import annotations

DEFAULT_START = 8
DEFAULT_CAP = 512  # beyond this a bigger batch buys little, while the prefix-cache copies keep growing


class BatchTooLarge(Exception):
    """A backend could not fit a batch into accelerator memory (raised only when the caller asked
    not to have the batch split, i.e. while probing)."""


class BatchSizer:
    """The batch-size schedule of one mode. ``fixed`` sizes never move; otherwise ``size`` grows
    by doubling, then bisects, and ``settled`` turns true once the largest fitting size is known."""

    def __init__(self, fixed: int | None = None, *, start: int = DEFAULT_START, cap: int = DEFAULT_CAP) -> None:
        self.cap = max(1, cap)
        self.fits = 0  # largest size that ran
        self.too_big: int | None = None  # smallest size that did not
        self.trace: list[tuple[int, bool]] = []  # (size, ran) of every probe, for the manifest
        if fixed is not None:
            self.size, self.settled = max(1, fixed), True
        else:
            self.size, self.settled = min(max(1, start), self.cap), False

    def ran(self, n: int) -> None:
        """A batch of n samples ran. A short last batch (n below the size) proves nothing more."""
        if self.settled or n < self.size:
            return
        self.trace.append((n, True))
        self.fits = max(self.fits, n)
        if self.fits >= self.cap:
            self._settle()
        elif self.too_big is None:
            self.size = min(2 * self.fits, self.cap)
        else:
            self._bisect()

    def failed(self, n: int) -> None:
        """A batch of n did not fit. One sample that does not fit says nothing about batching (the
        caller records its error and goes on), so only n > 1 narrows the search."""
        self.trace.append((n, False))
        if n <= 1:
            return
        if self.settled:  # a fixed or settled size that stopped fitting: halve from here on
            self.size = max(1, min(self.size, n // 2))
            return
        self.too_big = n if self.too_big is None else min(self.too_big, n)
        if self.fits == 0:  # nothing has run at any size yet: the halving fallback
            self.size = max(1, n // 2)
        else:
            self._bisect()

    def _bisect(self) -> None:
        if self.too_big is None:  # an invariant of the probe, kept under python -O too
            raise RuntimeError("batch sizer: no failed size recorded")
        if self.too_big - self.fits <= max(1, self.fits // 4):
            self._settle()
        else:
            self.size = (self.fits + self.too_big) // 2

    def _settle(self) -> None:
        self.size, self.settled = self.fits, True
