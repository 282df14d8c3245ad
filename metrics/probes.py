"""Figures of the leakage probes and the paired comparison of two models: computed in core
(``mmstar.probe_figures``, ``mmstar.probe_nulls``, so the run layer can score what it ran),
re-exported here beside the other consumers' figures."""

from mmstar.probe_figures import (
    compare,
    drops_when_moved,
    follows_position,
    mcnemar_exact,
    order_figures,
    rate_figures,
    swap_figures,
)
from mmstar.probe_nulls import apply_holm, excess_test, holm, mcnemar_upper, order_test

__all__ = [
    "apply_holm",
    "compare",
    "drops_when_moved",
    "excess_test",
    "follows_position",
    "holm",
    "mcnemar_exact",
    "mcnemar_upper",
    "order_figures",
    "order_test",
    "rate_figures",
    "swap_figures",
]
