"""The leakage probes (issues 21, 30), one import: the variants and work items (``probe_variants``),
the figures (``probe_figures``), the nulls, p-values and Holm (``probe_nulls``) and their scoring
from a run's records (``probe_scores``), e.g. ``mmstar.probes.sample_flags(run)``.
docs/architecture.md, "Leakage probes", says what each probe asks, its null and when it fires."""

from .probe_figures import (
    compare,
    drops_when_moved,
    follows_position,
    mcnemar_exact,
    order_figures,
    rate_figures,
    swap_figures,
)
from .probe_nulls import apply_holm, excess_test, holm, mcnemar_upper, order_test
from .probe_recall import RECALL_PROMPT, recall_items
from .probe_scores import (
    EVIDENCE_FLAGS,
    SIGNALS,
    backbone_mode,
    figures,
    order_mode,
    probe_block,
    probe_table,
    sample_flags,
    slots_mode,
    swap_mode,
)
from .probe_variants import (
    MASK,
    PROBE_MODES,
    PROBE_PROMPT_VERSION,
    PROBES,
    SLOT_PROMPT,
    SLOT_WORD_PROMPT,
    ProbeItem,
    SlotQuestion,
    check_probe_input,
    derangement,
    max_options,
    normalise,
    parse_probes,
    probe_file,
    probe_files,
    probe_modes,
    render_question,
    rotate,
    rotations,
    shown_elsewhere,
    slot_question,
    slot_reply_matches,
    swap_images,
    word_question,
)
from .probe_variants import probe_items as _generated_items
from .probe_variants import probe_prompts as _generated_prompts
from .sample import Benchmark


def probe_items(bench: Benchmark, probe: str, mode: str, seed: int = 0, words: bool = False) -> list[ProbeItem]:
    """Every request of ``probe`` in ``mode``, in sample order: the recall probe's from its own module
    (stems without options, each option's text scored), the others' from ``probe_variants``."""
    if probe == "recall":
        return recall_items(bench, mode, seed)
    return _generated_items(bench, probe, mode, seed, words)


def probe_prompts() -> dict[str, str]:
    """The fixed prompt texts, for the manifest: a figure is comparable under one text."""
    return {**_generated_prompts(), "recall": RECALL_PROMPT}

__all__ = [
    "EVIDENCE_FLAGS",
    "MASK",
    "PROBES",
    "PROBE_MODES",
    "PROBE_PROMPT_VERSION",
    "SIGNALS",
    "SLOT_PROMPT",
    "SLOT_WORD_PROMPT",
    "ProbeItem",
    "SlotQuestion",
    "apply_holm",
    "backbone_mode",
    "check_probe_input",
    "compare",
    "derangement",
    "drops_when_moved",
    "excess_test",
    "figures",
    "follows_position",
    "holm",
    "max_options",
    "mcnemar_exact",
    "mcnemar_upper",
    "normalise",
    "order_figures",
    "order_mode",
    "order_test",
    "parse_probes",
    "probe_block",
    "probe_file",
    "probe_files",
    "probe_items",
    "probe_modes",
    "probe_prompts",
    "probe_table",
    "rate_figures",
    "render_question",
    "rotate",
    "rotations",
    "sample_flags",
    "shown_elsewhere",
    "slot_question",
    "slot_reply_matches",
    "slots_mode",
    "swap_figures",
    "swap_images",
    "swap_mode",
    "word_question",
]
