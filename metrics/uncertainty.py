"""Seeded bootstrap intervals: they live in core (``mmstar.intervals``) so the run layer can use them;
re-exported here, where the leaderboard and notebooks have always imported them."""

from mmstar.intervals import (
    LEVEL,
    N_BOOT,
    Interval,
    bootstrap_mean,
    bootstrap_paired_difference,
    bootstrap_score,
)

__all__ = ["LEVEL", "N_BOOT", "Interval", "bootstrap_mean", "bootstrap_paired_difference", "bootstrap_score"]
