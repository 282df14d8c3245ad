"""Figures of the leakage probes and the paired comparison of two models: computed in core
(``mmstar.probe_figures``, so the run layer can score what it ran), re-exported here beside the
other consumers' figures."""

from mmstar.probe_figures import (
    compare,
    follows_position,
    mcnemar_exact,
    order_figures,
    rate_figures,
    swap_figures,
)

__all__ = ["compare", "follows_position", "mcnemar_exact", "order_figures", "rate_figures", "swap_figures"]
