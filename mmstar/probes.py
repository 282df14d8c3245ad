"""The leakage probes (issue 21), one import: the variants and work items (``probe_variants``), the
figures (``probe_figures``) and their scoring from a run's records (``probe_scores``), e.g.
``mmstar.probes.sample_flags(run)``. docs/architecture.md, "Leakage probes", says what each probe
asks and when it fires."""

from .probe_figures import compare, follows_position, mcnemar_exact, order_figures, rate_figures, swap_figures
from .probe_scores import order_mode, probe_block, probe_table, sample_flags, slots_mode, swap_mode
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
    probe_items,
    probe_modes,
    probe_prompts,
    render_question,
    rotate,
    rotations,
    slot_question,
    slot_reply_matches,
    swap_images,
    word_question,
)

__all__ = [
    "MASK", "PROBES", "PROBE_MODES", "PROBE_PROMPT_VERSION", "SLOT_PROMPT", "SLOT_WORD_PROMPT", "ProbeItem",
    "SlotQuestion", "check_probe_input", "compare", "derangement", "follows_position", "max_options", "mcnemar_exact",
    "normalise", "order_figures", "order_mode", "parse_probes", "probe_block", "probe_file", "probe_files",
    "probe_items", "probe_modes", "probe_prompts", "probe_table", "rate_figures", "render_question", "rotate",
    "rotations", "sample_flags", "slot_question", "slot_reply_matches", "slots_mode", "swap_figures", "swap_images",
    "swap_mode", "word_question",
]
