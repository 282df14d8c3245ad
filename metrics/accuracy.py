"""Accuracy: micro (official) and macro (18-axis mean), overall, per capability and per axis.

The computation lives in the core (``mmstar.scoring``) so that ``mmstar score``, the runner's
``scores.json`` and the leaderboard share one implementation; this module is its metrics-side name.
"""

from mmstar.scoring import MATCHERS, judge, record_options, score_records

__all__ = ["MATCHERS", "judge", "record_options", "score_records"]
