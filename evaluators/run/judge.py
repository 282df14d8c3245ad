"""An LLM judge for replies the robust extractor leaves unparsed.

The judge reads the question's options and the reply's answer part (never the thinking text) and
names the option letter the reply chose, or "none". Its raw reply goes in a record's ``judge`` and
the letter it names in ``judge_choice``; neither ever overwrites the extractor's ``choice``. The
prompt is fixed and versioned (``JUDGE_PROMPT_VERSION``, recorded in the manifest) so that a
robust+judge figure can be reproduced.

By default only unparsed replies go to the judge; ``judge_all`` sends every reply, and ``audit``
sends a seeded random sample of already-parsed replies too, so the judge's agreement with the
extractor can be reported. Replies that ended inside their thinking block (``truncated_reasoning``),
replies with nothing after their thinking (``empty``) and failed requests are never sent: they hold
no answer to read, and the thinking is not an answer.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmstar.evaluators.backends.base import Backend, GenerationConfig, Request

from mmstar.errors import MmstarError
from mmstar.matching import extract_answer
from mmstar.records import PredictionRecord
from mmstar.scoring import record_options
from mmstar.thinking import split_reasoning

from .judge_config import JUDGE_PROMPT_VERSION, JudgeConfig, add_judge_args, judge_config

__all__ = ["JUDGE_PROMPT_VERSION", "JudgeConfig", "add_judge_args", "judge_config"]  # re-exported

JUDGE_TEMPLATE = (
    "You check which option a model's reply to a multiple-choice question chose.\n"
    "Options:\n{options}\n"
    "Reply:\n\"\"\"\n{reply}\n\"\"\"\n"
    "Which option did the reply choose? Answer with one letter ({letters}), or with none if the reply "
    "chooses no option or several.\nChoice:"
)
MAX_REPLY_CHARS = 2000  # the reply's end is kept: that is where answers are
_SKIP_RULES = ("truncated_reasoning", "empty", "error")  # nothing after the thinking to read


def judge_prompt(options: Mapping[str, str], reply: str) -> str:
    answer = split_reasoning(reply).answer
    if len(answer) > MAX_REPLY_CHARS:
        answer = "..." + answer[-MAX_REPLY_CHARS:]
    lines = "\n".join(f"{k}. {v}" for k, v in options.items())
    return JUDGE_TEMPLATE.format(options=lines, reply=answer.replace('"""', "'''"), letters=", ".join(options))


def parse_judge_reply(text: str, options: Mapping[str, str]) -> str | None:
    """The letter the judge named, or None ("none", no option, or several): the robust extractor
    reads the judge's reply as it reads any reply."""
    if text.strip().lower().startswith("none"):
        return None
    return extract_answer(text, options).choice


def select(records: Sequence[PredictionRecord], config: JudgeConfig) -> tuple[list[int], set[int]]:
    """Positions of the records to send, and which of them are audit picks (parsed replies)."""
    eligible, parsed = [], []
    for i, rec in enumerate(records):
        if rec.error or not record_options(rec) or rec.judge_seen:  # judged already: kept
            continue
        extraction = extract_answer(rec.prediction, record_options(rec), finish_reason=rec.finish_reason)
        if extraction.rule in _SKIP_RULES:
            continue
        if extraction.choice is None or config.judge_all:
            eligible.append(i)
        else:
            parsed.append(i)
    # a seeded audit sample: reproducible, not a secret
    audit = set(random.Random(config.seed).sample(  # noqa: S311
        parsed, min(config.audit, len(parsed)))) if config.audit else set()
    return sorted(set(eligible) | audit), audit


def make_judge_backend(config: JudgeConfig) -> Backend:
    """The judge model through any registered backend; text only (a VLM judge is driven without images)."""
    from mmstar.evaluators.backends import registry as backends

    spec = backends.get(config.backend)
    gen = GenerationConfig(max_new_tokens=config.max_new_tokens)
    # a judge request that fails stops the judging, so it retries less and sooner than a run does
    defaults = {"api_key_env": config.api_key_env, "device": config.device, "dtype": config.dtype,
                "max_retries": 2, "backoff": 0.5}
    given = {"base_url": config.base_url, **{k: v for k, v in defaults.items() if spec.takes(k)},
             **dict(config.options)}  # what the --judge-* flags set wins
    options = backends.resolve_options(config.backend, given, flag_prefix="--judge-")
    if not spec.local:  # a served judge: the server knows its own model names
        return backends.create(config.backend, config.model, "llm", gen, options)
    if not Path(config.model).exists() and "/" not in config.model:
        raise MmstarError(f"unknown judge model {config.model!r}: give a local folder or a hub id like org/name")
    from mmstar.evaluators.models.modelcheck import model_kind

    return backends.create(config.backend, config.model, model_kind(config.model), gen, options)


def run_judge(records: list[PredictionRecord], backend: Backend, config: JudgeConfig,
              batch_size: int = 16) -> dict[str, int]:
    """Ask the judge about the selected records; fills ``judge``/``judge_choice`` in place.

    A failed judge request (a server that refuses, a model it does not know) stops with one line:
    a judge figure with holes would not be comparable. A reply naming no option is not a failure:
    its ``judge_choice`` is null and it is counted."""
    todo, audit = select(records, config)
    stats = {"sent": len(todo), "audit": len(audit), "decided": 0, "no_option": 0}
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        requests = [Request([{"role": "user", "content": [
            {"type": "text", "text": judge_prompt(record_options(records[i]) or {}, records[i].prediction)}]}],
            key=records[i].index) for i in chunk]
        for i, resp in zip(chunk, backend.generate(requests)):
            if resp.error:
                raise MmstarError(f"judge {config.model} ({config.backend}) failed on sample "
                                  f"{records[i].index}: {resp.error.splitlines()[0][:200]}")
            choice = parse_judge_reply(resp.text, record_options(records[i]) or {})
            records[i].set_judge(resp.text, choice, audit=i in audit)
            stats["no_option" if choice is None else "decided"] += 1
    return stats


def clear_judge(records: list[PredictionRecord]) -> None:
    """Drop an earlier judge's fields (a new judge identity re-judges from scratch)."""
    for rec in records:
        rec.clear_judge()


def judge_run_dir(run_dir: Path, config: JudgeConfig, backend: Backend | None = None) -> dict[str, Any]:
    """Judge every mode file of a run directory, rewrite the files atomically, record the judge in
    the manifest and refresh ``scores.json``. Returns per-mode stats."""
    from mmstar.records import write_records
    from mmstar.runs import open_run, prediction_path, write_manifest, write_scores

    run = open_run(run_dir)
    owned = backend is None
    per_mode: dict[str, Any] = {}
    judged: dict[str, list[PredictionRecord]] = {}
    old = run.manifest.judge or {}
    same_judge = {k: v for k, v in old.items() if k != "modes"} == config.identity()
    try:
        for mode, records in run.records.items():
            if not same_judge:
                clear_judge(records)
            if backend is None and select(records, config)[0]:
                backend = make_judge_backend(config)  # loaded only when there is something to judge
            per_mode[mode] = run_judge(records, backend, config) if backend is not None else {
                "sent": 0, "audit": 0, "decided": 0, "no_option": 0}
            judged[mode] = records
    finally:
        if owned and backend is not None:
            backend.close()
    # written only once every mode is judged: a judge that fails half-way leaves the run as it was
    for mode, records in judged.items():
        write_records(prediction_path(run_dir, mode), records)
    run.manifest.judge = {**config.identity(), "modes": per_mode}
    write_manifest(run_dir, run.manifest)
    write_scores(run_dir)
    return per_mode
