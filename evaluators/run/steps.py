"""The per-sample steps both run loops share (the batched loop in ``runner``, the streamed one in
``stream``): the run's config and identity, a sample's requests in a mode, and its prediction record.
Kept apart so that neither loop imports the other."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from mmstar.evaluators.backends.base import GenerationConfig, Request, Response

from mmstar.prompts import PromptConfig, build_messages
from mmstar.records import PredictionRecord
from mmstar.runs import MODES
from mmstar.sample import Sample
from mmstar.scoring import graded

DEFAULT_BATCH = 8  # on CPU, and for backends that cannot report a batch that does not fit


@dataclass
class EvalConfig:
    model: str  # the LVLM id / path
    backbone: str | None
    modes: tuple[str, ...] = MODES
    prompt: PromptConfig = field(default_factory=PromptConfig)
    gen: GenerationConfig = field(default_factory=GenerationConfig)
    batch_size: int | str = DEFAULT_BATCH  # or "auto": the largest that fits (HF backend), see autobatch.py
    backend: str = "hf"
    model_label: str | None = None  # registry alias, for display
    limit: int | None = None
    overwrite: bool = False
    progress: bool = True
    scoring: str = "generate"  # or "loglik": rank the option letters by next-token log-likelihood
    retry_errors: bool = True  # on resume, re-run samples whose line recorded an error
    protocol: str = "official"  # or "reasoning": the model's own budget, thinking on (leaderboard column)
    # the concrete precision ("float32", "bfloat16", ...; never "auto"), None where the backend does
    # not say (a remote API): fp32 vs bf16 moves scores, so a resume must not mix them
    dtype: str | None = None
    # backend options that change what the model is asked (provider switches, a reasoning effort),
    # only those set away from their default: absent means default, so earlier identities hold
    request: dict[str, Any] = field(default_factory=dict)

    def identity(self, fingerprint: str) -> dict[str, Any]:
        """What must not change between a run and its resumption."""
        identity = {"model": self.model, "backbone": self.backbone, "backend": self.backend,
                    "prompt": self.prompt.preset, "shots": self.prompt.shots, "decoding": self.gen.to_dict(),
                    "dtype": self.dtype, "dataset_fingerprint": fingerprint}
        if self.scoring != "generate":
            identity["scoring"] = self.scoring
        if self.protocol != "official":  # absent means official: earlier manifests stay comparable
            identity["protocol"] = self.protocol
        if self.request:
            identity["request"] = dict(self.request)
        return identity



def prediction_record(sample: Sample, mode: str, resp: Response) -> PredictionRecord:
    rec = PredictionRecord(
        index=sample.index, mode=mode, prediction=resp.text, answer=sample.answer, category=sample.category,
        l2_category=sample.l2_category, source=sample.source, question=sample.question, options=sample.options,
        error=resp.error, prompt_tokens=resp.prompt_tokens, completion_tokens=resp.completion_tokens,
        finish_reason=resp.finish_reason, logprobs=resp.extra.get("logprobs"))
    return graded(rec)  # the extractor's verdict (and any thinking text) go on the line


def _progress(total: int, desc: str, enabled: bool):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with transformers
        return None
    return tqdm(total=total, desc=desc, unit="sample", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def _requests(batch: list[Sample], mode: str, config: EvalConfig) -> tuple[list[Request], list[int]]:
    """Requests for the samples that can run in this mode, and their positions in the batch."""
    requests, slots = [], []
    for j, s in enumerate(batch):
        if mode == "v" and s.image is None:
            continue
        requests.append(Request(build_messages(s, mode, config.prompt), key=s.index))
        slots.append(j)
    return requests, slots


