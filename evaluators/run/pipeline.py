"""The evaluation pipeline as plain functions: resolve a model, settle its decoding, run the modes,
judge, score. ``mmstar.evaluate`` (the Python API), ``mmstar eval``, sweeps, the demo and curation
all come through here, so a notebook run and a command-line run are the same run.

Options are typed (:class:`RunOptions`); a backend's own options (device, base_url, ...) are
declared by the backend registry and checked against the chosen backend. An unknown option is one
line that names the allowed ones, whether it came from Python, a sweep file or the command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmstar.evaluators.backends import registry as backends
from mmstar.evaluators.backends.base import GenerationConfig
from mmstar.evaluators.backends.registry import BackendFactory
from mmstar.evaluators.models.registry import ModelEntry

from mmstar.errors import MmstarError
from mmstar.probes import parse_probes, probe_modes
from mmstar.prompts import PromptConfig
from mmstar.runs import MODES
from mmstar.sample import Benchmark

from .choices import PROMPTS, PROTOCOLS, SHOTS, THINKING
from .judge import JudgeConfig
from .probes import ProbePlan
from .probes import after_modes as probe_hook
from .recall import check_backend as check_recall_backend
from .runner import EvalConfig, parse_modes, resolve_batch_size, run_eval

if TYPE_CHECKING:
    import pandas as pd

# the switch most reasoning chat templates read (Qwen3, GLM-4.1V, InternVL3.5); a registry entry's
# own ``thinking`` table replaces it
DEFAULT_THINKING = {"on": {"enable_thinking": True}, "off": {"enable_thinking": False}}
REASONING_MAX_NEW_TOKENS = 8192  # a reasoning run's budget when the registry gives none
ALIASES = {"no_progress": ("progress", lambda v: not v), "no_prefix_cache": ("prefix_cache", lambda v: not v)}


@dataclass(frozen=True)
class RunOptions:
    """Everything ``mmstar eval`` takes besides the model and the data. ``backend_options`` holds only
    the backend options that were given; the registry supplies the rest."""

    modes: tuple[str, ...] = MODES
    backend: str = "hf"
    batch_size: int | str | None = None  # None: auto on CUDA for a backend that can probe, else 8
    limit: int | None = None
    prompt: str = "official"
    shots: int = 2
    max_new_tokens: int | None = None  # None: 32 (official) or the model's own budget (reasoning)
    protocol: str = "official"
    thinking: str | None = None
    overwrite: bool = False
    progress: bool = True
    probes: tuple[str, ...] = ()  # leakage probes: order, slots, swap (mmstar.probes)
    probe_seed: int = 0  # the seed of the probes' variants (masks, image derangement)
    probe_words: bool = False  # slots also masks a content word of the question
    backend_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        modes = self.modes
        object.__setattr__(self, "modes", parse_modes(modes if isinstance(modes, str) else ",".join(modes)))
        backends.resolve_options(self.backend, self.backend_options)  # unknown backend or foreign option: now
        object.__setattr__(self, "probes", parse_probes(self.probes))
        for probe in self.probes:  # a probe with none of its modes asked: one line now
            probe_modes(probe, self.modes)
        check_recall_backend(self.probes, self.backend)  # recall on a backend that cannot score: one line now
        if isinstance(self.probe_seed, bool) or not isinstance(self.probe_seed, int) or self.probe_seed < 0:
            raise MmstarError(f"probe_seed must be a non-negative integer, not {self.probe_seed!r}")
        for name, value, allowed in (("prompt", self.prompt, PROMPTS), ("shots", self.shots, SHOTS),
                                     ("protocol", self.protocol, PROTOCOLS), ("thinking", self.thinking, THINKING)):
            if value is not None and value not in allowed:
                raise MmstarError(f"{name} {value!r} is not one of {', '.join(map(str, allowed))}")
        for name in ("limit", "max_new_tokens"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise MmstarError(f"{name} must be a positive integer, not {value!r}")
        resolve_batch_size(self.batch_size if self.batch_size is not None else 1)  # a bad value: one line now

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any], origin: str = "options",
                     base: RunOptions | None = None) -> RunOptions:
        """Options by name (``evaluate(**options)``, a sweep file's ``options``), over ``base``."""
        own = {f.name for f in dataclasses.fields(cls)} - {"backend_options"}
        known = own | set(backends.all_options())
        values: dict[str, Any] = {}
        for key, value in options.items():
            key = str(key).replace("-", "_")
            if key in ALIASES:
                key, value = ALIASES[key][0], ALIASES[key][1](value)
            if key not in known:
                raise MmstarError(f"{origin}: unknown option {key!r}; allowed: {', '.join(sorted(known))}")
            values[key] = value
        start = base or cls()
        given = {**start.backend_options, **{k: v for k, v in values.items() if k not in own}}
        return dataclasses.replace(start, **{k: v for k, v in values.items() if k in own}, backend_options=given)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names a sweep file or ``evaluate(**options)`` may use."""
        own = {f.name for f in dataclasses.fields(cls)} - {"backend_options"}
        return tuple(sorted(own | set(backends.all_options()) | set(ALIASES)))


@dataclass
class EvalPlan:
    """One model, ready to run: its registry entry, the run's config and the backend factory."""

    entry: ModelEntry
    config: EvalConfig
    factory: BackendFactory
    backend_options: dict[str, Any]
    probes: ProbePlan | None = None


def resolve_entry(model: str, backbone: str | None, backend: str) -> ModelEntry:
    """The registry entry for a name; a backend that loads weights here needs the family's classes."""
    from mmstar.evaluators.models.modelcheck import require_family
    from mmstar.evaluators.models.registry import resolve_model

    spec = backends.get(backend)
    entry = resolve_model(model, backbone, any_name=not spec.local)  # a server's model names are its own
    if spec.local:
        require_family(entry)
    return entry


def generation_config(entry: ModelEntry, protocol: str, thinking: str | None,
                      max_new_tokens: int | None) -> GenerationConfig:
    """Decoding for a protocol: ``official`` is 32 new tokens, greedy (the paper's); ``reasoning``
    takes the model's recommended budget and turns thinking on. ``max_new_tokens`` and ``thinking``
    override either; the entry's ``chat_template_kwargs`` always apply."""
    if protocol == "reasoning":
        thinking = thinking or "on"
        budget = max_new_tokens or entry.max_new_tokens or REASONING_MAX_NEW_TOKENS
    else:
        budget = max_new_tokens or 32
    if budget < 1:
        raise MmstarError("--max-new-tokens must be at least 1")
    kwargs = dict(entry.chat_template_kwargs)
    if thinking is not None:
        kwargs.update((entry.thinking or DEFAULT_THINKING).get(thinking, {}))
    return GenerationConfig(max_new_tokens=budget, chat_template_kwargs=kwargs)


def plan(entry: ModelEntry, options: RunOptions, gen: GenerationConfig | None = None) -> EvalPlan:
    """The run config and backend factory for one model under ``options`` (nothing is loaded)."""
    gen = gen or generation_config(entry, options.protocol, options.thinking, options.max_new_tokens)
    backend_options = backends.resolve_options(options.backend, options.backend_options,
                                               entry_defaults=entry.defaults)
    config = EvalConfig(
        model=entry.lvlm, backbone=entry.backbone, modes=options.modes,
        prompt=PromptConfig(options.prompt, options.shots), gen=gen,
        batch_size=resolve_batch_size(options.batch_size, options.backend, backend_options),
        backend=options.backend, model_label=entry.alias, limit=options.limit, overwrite=options.overwrite,
        progress=options.progress, protocol=options.protocol,
        dtype=backends.concrete_dtype(options.backend, backend_options),
        request=backends.identity_options(options.backend, backend_options))
    probes = ProbePlan(options.probes, options.probe_seed, options.probe_words) if options.probes else None
    return EvalPlan(entry, config, backends.factory(options.backend, gen, backend_options), backend_options, probes)


def load_data(data: str | Path | Benchmark) -> Benchmark:
    if isinstance(data, Benchmark):
        return data
    from mmstar.loaders import load_benchmark

    return load_benchmark(str(data))


@dataclass
class EvalResult:
    """What one (model, benchmark) run gives back: its scores, its folder and its records."""

    run_dir: Path
    scores: dict[str, Any]
    model: str
    benchmark: str

    def __getitem__(self, key: str) -> Any:  # result["S_v"] reads like result.scores["S_v"]
        return self.scores[key]

    @property
    def records(self) -> pd.DataFrame:
        """Every prediction record of the run, one row per (mode, sample), with a ``mode`` column."""
        import pandas as pd

        from mmstar.runs import open_run

        run = open_run(self.run_dir)
        rows = [{**rec_dict(rec), "mode": mode} for mode, recs in run.records.items() for rec in recs]
        return pd.DataFrame(rows)

    def summary(self) -> str:
        from .runner import summary_line

        return summary_line(self.scores)


def rec_dict(rec: Any) -> dict[str, Any]:
    """A record as a plain mapping, typed or not."""
    if isinstance(rec, Mapping):
        return dict(rec)
    to_dict = getattr(rec, "to_dict", None)
    return dict(to_dict()) if to_dict else dataclasses.asdict(rec)


def run_planned(bench: Benchmark, eval_plan: EvalPlan, out: Path, judge: JudgeConfig | None = None,
                factory: BackendFactory | None = None) -> EvalResult:
    """Run one planned model on one benchmark, then judge it when asked; the result with its scores
    (empty on a non-zero torchrun rank: rank 0 reports)."""
    config, hook = eval_plan.config, None
    if eval_plan.probes is not None:
        eval_plan.probes.jobs(bench.limit(config.limit), config.modes)  # bad input: one line before a model loads
        hook = probe_hook(eval_plan.probes, config, backends.get(config.backend).streams)
    run_dir, scores = run_eval(bench, config, Path(out), factory or eval_plan.factory, after_modes=hook)
    if scores and judge is not None:  # after the model is gone: the judge loads into the freed memory
        from mmstar.runs import compute_scores

        from .judge import judge_run_dir

        judge_run_dir(run_dir, judge)
        scores = compute_scores(run_dir)
    # absolute: a notebook that changes its folder afterwards still finds the run
    return EvalResult(run_dir.resolve(), scores, eval_plan.entry.alias, bench.name)


def evaluate(model: str, data: str | Path | Benchmark = "mmstar", modes: Sequence[str] | str = MODES,
             limit: int | None = None, out: str | Path = "runs", *, backbone: str | None = None,
             label: str | None = None, judge: JudgeConfig | str | None = None, **options: Any) -> EvalResult:
    """Evaluate ``model`` on ``data`` in ``modes`` (v: with the image, wv: without it, t: the LLM
    backbone) and return the scores (``S_v``, ``S_wv``, ``S_t``, ``MG``, ``ML``), the run directory
    and the records. Resumable: the same call again finishes a killed run. ``options`` are
    :class:`RunOptions` fields (backend, batch_size, prompt, shots, protocol, ...) and the backend's
    own options (device, dtype, base_url, ...); an unknown one is refused, naming the allowed ones.
    ``label`` names the model in the run folder and the leaderboard (default: its alias or folder name);
    ``judge`` (a model name or a JudgeConfig) reads the replies the extractor leaves unparsed.
    ``probes`` (``["order", "slots", "swap"]``, with ``probe_seed`` and ``probe_words``) runs the
    leakage probes after the modes, through the same runner: ``result.scores["probes"]``."""
    opts = RunOptions.from_mapping({"modes": modes, "limit": limit, **options}, origin="evaluate()")
    judge_cfg = JudgeConfig(judge) if isinstance(judge, str) else judge
    entry = resolve_entry(model, backbone, opts.backend)
    if label:
        entry = dataclasses.replace(entry, alias=label)
    eval_plan = plan(entry, opts)  # every option is checked before the data is read or a model loads
    return run_planned(load_data(data), eval_plan, Path(out), judge_cfg)
