"""Shared-prefix KV reuse for batches of text-only prompts.

Mode t and the curation filter send every sample behind the same system prompt and 2-shot context
(hundreds of tokens). Prefilling that context again for every row is most of the prompt work, so
the longest common token prefix of a batch is run once, its KV cache is copied to every row, and
only the per-sample suffixes are prefilled.

The prefix is found on token ids, not strings, so any chat template works. A row then reads
``[prefix][pad ... pad][suffix]``: the suffix's left padding sits between the shared prefix and the
suffix with attention-mask zeros, and position ids come from the mask's cumulative sum, which gives
every real token the position it has in the ordinary left-padded batch. Backends stay blind to
modes: any batch whose rows share enough leading tokens benefits.

The candidate prefix only ever shrinks (common prefix of the previous candidate and the new rows),
so after a batch or two it settles on the context every sample shares and its cache is computed
once per run — batch size 1 included, where a single row has nothing to compare with but the
previous request.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Any

MIN_PREFIX_TOKENS = 16  # below this, the extra forward pass costs more than it saves
ATTENTION_LAYER_TYPES = ("full_attention", "sliding_attention")
# transformers' cache layers whose update is ``torch.cat([self.keys, new])`` (nothing written in place),
# so a row-expanded view of the prefix is safe to hand them; any other layer gets its own copies
CONCATENATING_LAYERS = ("DynamicLayer", "DynamicSlidingWindowLayer")


def common_prefix_len(rows: list[list[int]] | list[tuple[int, ...]]) -> int:
    """Length of the longest token prefix every row shares."""
    if not rows:
        return 0
    first = tuple(rows[0])
    n = min(len(r) for r in rows)
    for row in rows[1:]:
        # slices compare in C; a token-by-token loop in Python cost mode t's parent 0.45 s of CPU per
        # 360 two-shot prompts (~600 shared tokens each); a mismatch is found by halving
        row = tuple(row)
        if row[:n] == first[:n]:
            continue
        same, differ = 0, n  # row[:same] == first[:same], row[:differ] != first[:differ]
        while differ - same > 1:
            mid = (same + differ) // 2
            if row[:mid] == first[:mid]:
                same = mid
            else:
                differ = mid
        n = same
    return n


def attention_window(config: Any) -> int | None:
    """The sliding-attention window when any layer uses one, else None.

    A row with the padding gap in the middle spans more positions than the ordinary left-padded
    row; a sliding window (counted in cache slots, not position ids) would then see fewer real
    tokens, so reuse is only safe while the whole row fits inside the window."""
    window = getattr(config, "sliding_window", None)
    if not window:
        return None
    types = getattr(config, "layer_types", None)
    if types is not None and not any("sliding" in str(t) for t in types):
        return None
    if getattr(config, "use_sliding_window", True) is False:
        return None
    return int(window)


@dataclass
class PrefixSplit:
    """A batch rewritten as shared prefix + left-padded suffixes (CPU tensors)."""

    prefix: tuple[int, ...]
    input_ids: Any  # (B, P + S): the prefix, then each row's left-padded suffix
    attention_mask: Any  # (B, P + S): ones over the prefix, the suffix's own mask after it
    position_ids: Any  # (B, P + S): what the ordinary left-padded batch gives each real token

    @property
    def suffix_len(self) -> int:
        return self.input_ids.shape[1] - len(self.prefix)


class PrefixReuse:
    """Finds a batch's shared prefix (``split``, CPU only) and hands out per-row copies of its KV
    cache (``cache_for``, runs the prefix on the model the first time)."""

    def __init__(self, model: Any, pad_id: int, *, max_new_tokens: int = 32,
                 min_tokens: int = MIN_PREFIX_TOKENS) -> None:
        import torch

        self.torch, self.model, self.pad_id = torch, model, pad_id
        self.min_tokens, self.max_new_tokens = min_tokens, max_new_tokens
        self.window = attention_window(getattr(model, "config", None))
        params = inspect.signature(model.forward).parameters
        # transformers renamed past_key_values to cache during 5.x; accept either
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self._candidate: tuple[int, ...] | None = None
        self._kv: Any = None
        self._kv_ids: tuple[int, ...] | None = None
        self._layers_copyable: bool | None = None
        self.prefills = 0  # how many times a prefix was run (1 per run when reuse settles)
        self.reused_rows = 0

    # ------------------------------------------------------------------ CPU half

    def split(self, encoded: Any) -> PrefixSplit | None:
        """The batch as prefix + suffixes, or None when reuse does not apply (too short a shared
        prefix, inputs other than token ids, or a sliding window the row could outgrow)."""
        if set(encoded.keys()) - {"input_ids", "attention_mask"}:
            return None  # images, token types, ...: the prefix would not be text alone
        if not self.dynamic_cache_ok():
            return None
        torch = self.torch
        ids, mask = encoded["input_ids"], encoded["attention_mask"]
        rows = [r[m.bool()].tolist() for r, m in zip(ids, mask)]
        known = [self._candidate] if self._candidate is not None else []
        length = min(common_prefix_len([*known, *rows]), min(len(r) for r in rows) - 1)
        if length < self.min_tokens:
            # nothing shared with the candidate: start over from this batch's own prefix
            own = common_prefix_len(rows) if len(rows) > 1 else len(rows[0])
            self._candidate = tuple(rows[0][:own])
            return None
        prefix = tuple(rows[0][:length])
        self._candidate = prefix
        suffixes = [r[length:] for r in rows]
        width = max(len(s) for s in suffixes)
        if self.window is not None and length + width + self.max_new_tokens > self.window:
            return None
        s_ids = torch.tensor([[self.pad_id] * (width - len(s)) + s for s in suffixes], dtype=ids.dtype)
        s_mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in suffixes], dtype=mask.dtype)
        full_ids = torch.cat([torch.tensor([prefix] * len(rows), dtype=ids.dtype), s_ids], dim=1)
        full_mask = torch.cat([torch.ones(len(rows), length, dtype=mask.dtype), s_mask], dim=1)
        positions = (full_mask.long().cumsum(-1) - 1).masked_fill(full_mask == 0, 0)
        return PrefixSplit(prefix, full_ids, full_mask, positions)

    def dynamic_cache_ok(self) -> bool:
        """A model whose generation config asks for its own cache (static, hybrid, ...) refuses one
        handed in by the caller, and some architectures (recurrent state) have no dynamic cache."""
        gen_config = getattr(self.model, "generation_config", None)
        if getattr(gen_config, "cache_implementation", None) is not None:
            return False
        # linear-attention / convolution layers (Qwen3.5, LFM2, ...) keep a recurrent state that
        # the padding gap would run through and that has no per-row copy: attention layers only
        types = getattr(getattr(self.model, "config", None), "layer_types", None) or ()
        if any(t not in ATTENTION_LAYER_TYPES for t in types):
            return False
        supports = getattr(self.model, "_supports_default_dynamic_cache", None)
        if callable(supports) and not supports():
            return False
        if self._layers_copyable is None:  # every cache layer must know how to copy itself per row
            from transformers import DynamicCache

            layers = getattr(DynamicCache(config=self.model.config), "layers", [])
            self._layers_copyable = all(hasattr(layer, "batch_repeat_interleave") for layer in layers)
        return self._layers_copyable

    # ------------------------------------------------------------------ model half

    def _prefix_kv(self, prefix: tuple[int, ...]) -> Any:
        if self._kv_ids != prefix:
            from transformers import DynamicCache

            torch = self.torch
            kv = DynamicCache(config=self.model.config)
            ids = torch.tensor([prefix], device=self.model.device)
            with torch.inference_mode():
                self.model(input_ids=ids, use_cache=True, **{self.cache_kw: kv})
            self._kv, self._kv_ids = kv, prefix
            self.prefills += 1
        return self._kv

    def cache_for(self, split: PrefixSplit) -> Any:
        """A fresh cache holding the prefix once per row (generation appends to it in place)."""
        rows = split.input_ids.shape[0]
        kv = copy.deepcopy(self._prefix_kv(split.prefix))
        for layer in kv.layers:
            if type(layer).__name__ in CONCATENATING_LAYERS and getattr(layer, "keys", None) is not None:
                # the prefix row seen ``rows`` times, without a copy: these layers never write into their
                # tensors but concatenate the next step's keys onto them (a new tensor), so the first step
                # makes the one per-row copy that ``batch_repeat_interleave`` would have made beforehand
                # and then thrown away (mode t, 2 shots, batch 32: 12% of its CPU time); same values, same bits
                layer.keys = layer.keys.expand(rows, *layer.keys.shape[1:])
                layer.values = layer.values.expand(rows, *layer.values.shape[1:])
            else:
                layer.batch_repeat_interleave(rows)
        self.reused_rows += rows
        return kv

    def generate_kwargs(self, split: PrefixSplit) -> dict[str, Any]:
        """Inputs for ``model.generate``: the whole rows (generate skips what the cache holds)."""
        device = self.model.device
        return {"input_ids": split.input_ids.to(device), "attention_mask": split.attention_mask.to(device),
                self.cache_kw: self.cache_for(split)}

    def last_logits(self, split: PrefixSplit) -> Any:
        """Next-token logits after each row's last prompt token, with the prefix from the cache."""
        device, p = self.model.device, len(split.prefix)
        kv = self.cache_for(split)
        with self.torch.inference_mode():
            out = self.model(input_ids=split.input_ids[:, p:].to(device),
                             attention_mask=split.attention_mask.to(device),
                             position_ids=split.position_ids[:, p:].to(device), use_cache=True, **{self.cache_kw: kv})
        return out.logits[:, -1, :]

    def close(self) -> None:
        self._kv = self._kv_ids = None
