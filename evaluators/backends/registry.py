"""The backend registry: a backend's name -> its options, its capabilities and its constructor.

This is the one place that knows which backends exist. The run loop, ``mmstar eval``, sweeps,
curation, the judge, ``mmstar serve`` and the scripts ask a :class:`BackendSpec` what a backend can
do (``local``, ``auto_batch``, ``loglik`` ...) instead of testing its name, and build it with
:func:`create`. Adding a backend is one module with a class taking ``(model_id, kind, gen, **options)``
plus one :func:`register` call below; the constructor is named by a string, so nothing heavy is
imported until a backend is built.

Options are declared once, with their default and help text. The CLI turns them into flags
(:func:`add_backend_arguments`), the Python API and sweep files pass them as keywords, and
:func:`resolve_options` refuses in one line an option the chosen backend does not take.
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mmstar.errors import MmstarError

from .base import (
    Backend,
    GenerationConfig,
    PreparesBatches,
    RanksLetters,
    ScoresContinuations,
    Streams,
    protocol_members,
)

BackendFactory = Callable[[str, str], Backend]  # (model id, "vlm" | "llm") -> backend
DtypeRule = Literal["device", "engine", "server"]


@dataclass(frozen=True)
class Option:
    """One constructor keyword of a backend, and how the CLI spells it."""

    name: str  # the constructor's keyword; also the key in evaluate(**options) and sweep files
    default: Any
    help: str
    type: Callable[[str], Any] | None = str  # None: a boolean switch (store_true)
    choices: tuple[Any, ...] | None = None
    required_hint: str | None = None  # set: the option is required; the hint is an example value
    cli: bool = True  # False: the Python API and sweeps take it, the command line does not
    # True: it changes what the model is asked or how it answers, so it joins the run's identity
    # (a resume with another value must not mix into the old files)
    identity: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class BackendSpec:
    name: str
    target: str  # "module:Class"; the class takes (model_id, kind, gen, **options)
    help: str
    options: tuple[Option, ...]
    extra: str  # the pip extra that installs what the backend needs
    requires: str  # the module it cannot run without (its presence says the backend is installed)
    local: bool  # loads the weights in this process: the model family's classes must be installed
    # prepares batches apart from generating them (base.PreparesBatches): the run loop prepares the
    # next batch while this one generates
    prepares: bool = False
    auto_batch: bool = False  # reports a batch that does not fit, so --batch-size auto can probe (needs prepares)
    loglik: bool = False  # can rank option letters by log-likelihood (--scoring loglik)
    continuations: bool = False  # can score given texts after a prompt (score_continuations: the recall probe)
    servable: bool = False  # `mmstar serve` can put it behind its endpoint (takes a per-call gen)
    # takes requests one at a time (``submit(request) -> Future[Response]``, ``window``): the run loop
    # then sends every mode's pending samples as one continuous stream and writes each answer as it arrives
    streams: bool = False
    # how dtype "auto" resolves: "device" (bf16 on CUDA, fp32 on CPU, by the --device rule), "engine"
    # (the same rule on the machine's default device; the engine takes no --device), "server" (unknown
    # here: the server decides)
    dtype_rule: DtypeRule = "device"
    defaults_from_entry: tuple[str, ...] = field(default=())  # options a registry alias may preset

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

    def takes(self, name: str) -> bool:
        return self.option(name) is not None

    def constructor(self) -> Callable[..., Backend]:
        """The backend's class, imported now; a class that lacks what the spec claims is refused (one line)."""
        module, _, cls = self.target.partition(":")
        constructor = getattr(importlib.import_module(module), cls)
        missing = unimplemented(self, constructor)
        if missing:
            raise MmstarError(f"backend {self.name!r} claims {missing} but {self.target} does not implement it")
        return constructor


# the capability a spec claims -> the protocol of evaluators/backends/base.py its class must implement
CAPABILITIES: dict[str, type] = {"prepares": PreparesBatches, "auto_batch": PreparesBatches, "streams": Streams,
                                 "loglik": RanksLetters, "continuations": ScoresContinuations}


def unimplemented(spec: BackendSpec, cls: type) -> str | None:
    """What ``cls`` lacks of the protocols ``spec`` claims (``Backend`` always), as one phrase; None if nothing.
    Members are looked up on the class: declare them as methods or properties, not instance attributes."""
    claims = [("a backend", Backend), *((name, p) for name, p in CAPABILITIES.items() if getattr(spec, name))]
    gaps = []
    for claim, protocol in claims:
        lacking = [m for m in protocol_members(protocol) if not hasattr(cls, m)]
        if lacking:
            gaps.append(f"{claim} ({protocol.__name__}: no {', '.join(lacking)})")
    return "; ".join(gaps) or None


# options shared by several backends are declared once
DEVICE = Option("device", "auto", "auto (CUDA if present), cpu, cuda, cuda:1 ...")
DTYPE = Option("dtype", "auto", "auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16")
TRUST = Option("trust_remote_code", False, "run code shipped with the checkpoint", type=None)
PREFIX = Option("prefix_cache", True, "reuse the shared system prompt + shots' prefill (--no-prefix-cache: "
                "prefill them for every sample, to A/B the reuse)", type=None)

def json_object(text: str) -> dict[str, Any]:
    """A flag whose value is a JSON object (``--extra-body``), checked when the command line is read."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object such as '{\"top_k\": 1}'")
    return value


def worker_count(text: str) -> int | str:
    """``--workers``: "auto" or a count of 0 or more, checked when the command line is read."""
    if str(text).strip().lower() == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be auto or a whole number of 0 or more, not {text!r}")
    return n


REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")  # OpenAI's names

BACKENDS: dict[str, BackendSpec] = {}


def register(spec: BackendSpec, *, check: bool = True) -> BackendSpec:
    """Add a backend. ``check`` (the default) imports its class now and refuses, in one line, a spec
    that claims a capability the class does not implement. The built-in backends below register
    unchecked, because importing hf, vllm and openai here would load ~110 modules into every
    ``mmstar --help``: they are checked when first built (:meth:`BackendSpec.constructor`) and by
    tests/test_backend_registry.py."""
    if spec.name in BACKENDS:
        raise ValueError(f"backend {spec.name!r} is registered twice")
    if spec.auto_batch and not spec.prepares:
        raise MmstarError(f"backend {spec.name!r} claims auto_batch without prepares: --batch-size auto probes "
                          "through prepare / generate_prepared")
    if check:
        spec.constructor()
    BACKENDS[spec.name] = spec
    return spec


register(BackendSpec(
    "hf", "mmstar.evaluators.backends.hf:HFBackend", "Hugging Face transformers, in this process",
    (DEVICE, DTYPE, Option("device_map", None, "e.g. auto: spread a model larger than one GPU over several"),
     TRUST, Option("allow_pickle", False, "accept .bin (pickle) weights, not just safetensors", type=None), PREFIX,
     # auto by default: a worker that generates reports a batch that does not fit back unsplit, so
     # --batch-size auto probes through workers too (tests/test_autobatch.py)
     Option("workers", "auto", "hf backend: processes for LVLM batches, within the cores this process may use. "
            "auto: on CPU with a model under 2 GiB one per core, each preparing and generating whole batches on "
            "one torch thread; otherwise a quarter of the cores prepare (decode, image processing, tokenising) "
            "while torch generates on the rest (none on CUDA when the image processor runs on the device). "
            "0: a thread of this process prepares, torch threads untouched (the path before workers)",
            type=worker_count),
     Option("image_backend", "auto", "hf backend: image processor implementation: auto (transformers' choice: "
            "torchvision where installed), torchvision, pil (the slow reference path)",
            choices=("auto", "torchvision", "pil"))),
    extra="hf", requires="transformers", local=True, prepares=True, auto_batch=True, loglik=True, servable=True,
    continuations=True, defaults_from_entry=("device_map",)), check=False)
register(BackendSpec(
    "vllm", "mmstar.evaluators.backends.vllm_backend:VLLMBackend", "vLLM's offline engine, in this process",
    (Option("tensor_parallel_size", 1, "vllm backend: GPUs per model", type=int),
     Option("max_model_len", None, "vllm backend: context length to reserve", type=int),
     Option("gpu_memory_utilization", 0.9, "vllm backend: GPU memory fraction", type=float),
     Option("images_per_prompt", 1, "vllm backend: images per prompt", type=int), DTYPE, TRUST, PREFIX),
    extra="vllm", requires="vllm", local=True, dtype_rule="engine", continuations=True), check=False)
register(BackendSpec(
    "openai", "mmstar.evaluators.backends.openai_api:OpenAIBackend",
    "any OpenAI-compatible server (vLLM, SGLang, TGI, LMDeploy, mmstar serve) or provider API",
    (Option("base_url", None, "openai backend: the API root, e.g. http://127.0.0.1:8000/v1",
            required_hint="https://api.openai.com/v1 or http://HOST:8000/v1"),
     Option("backbone_base_url", None, "openai backend: the LLM backbone's server (mode t), when it is not "
            "--base-url: e.g. a second `vllm serve`"),
     Option("api_key_env", "OPENAI_API_KEY", "openai backend: env var holding the key"),
     Option("concurrency", 8, "openai backend: the most requests in flight (the pool halves it on 429, 503 "
            "and timeouts and grows back)", type=int),
     Option("rpm", None, "openai backend: requests-per-minute ceiling, as the provider states it", type=float),
     Option("tpm", None, "openai backend: tokens-per-minute ceiling (prompt + completion), as the provider "
            "states it", type=float),
     Option("extra_body", None, "openai backend: JSON object merged into every request, for provider switches, "
            "e.g. '{\"top_k\": 1}' (a null value removes that key)", type=json_object, identity=True),
     Option("max_completion_tokens", False, "openai backend: send the budget as max_completion_tokens (OpenAI's "
            "newer models) instead of max_tokens", type=None, identity=True),
     Option("reasoning_effort", None, "openai backend: reasoning models' effort (OpenAI o-series, gpt-5); sends "
            "max_completion_tokens and no temperature (they refuse any but their default)",
            choices=REASONING_EFFORTS, identity=True),
     Option("max_retries", 6, "openai backend: retries of a failed request", type=int, cli=False),
     Option("backoff", 1.0, "openai backend: first retry delay in seconds (doubles)", type=float, cli=False),
     Option("timeout", 120.0, "openai backend: seconds per request", type=float, cli=False)),
    extra="openai", requires="httpx", local=False, dtype_rule="server", streams=True), check=False)


def get(name: str) -> BackendSpec:
    try:
        return BACKENDS[name]
    except KeyError:
        raise MmstarError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}") from None


def names(where: Callable[[BackendSpec], bool] = lambda spec: True) -> tuple[str, ...]:
    return tuple(n for n, spec in BACKENDS.items() if where(spec))


def available(name: str) -> bool:
    """Whether the backend's engine is installed (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec(get(name).requires) is not None


def all_options() -> dict[str, Option]:
    """Every backend option by name (a shared option once)."""
    out: dict[str, Option] = {}
    for spec in BACKENDS.values():
        for opt in spec.options:
            out.setdefault(opt.name, opt)
    return out


def resolve_options(name: str, given: Mapping[str, Any], *, flag_prefix: str = "--",
                    entry_defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The backend's full keyword set: ``given`` (None = not given) over an alias's presets over the
    declared defaults. An option this backend does not take, or a required one missing, is one line."""
    spec = get(name)
    given = {k: v for k, v in given.items() if v is not None}
    foreign = sorted(set(given) - {o.name for o in spec.options})
    if foreign:
        takers = {k: [n for n, s in BACKENDS.items() if s.takes(k)] for k in foreign}
        detail = "; ".join(f"{_flag(k, flag_prefix)} is for {' / '.join(v) or 'no'} backend" for k, v in takers.items())
        refused = ", ".join(_flag(k, flag_prefix) for k in foreign)
        accepted = ", ".join(_flag(o.name, flag_prefix) for o in spec.options)
        raise MmstarError(f"{flag_prefix}backend {name} does not take {refused} ({detail}); it takes {accepted}")
    presets = {k: v for k, v in (entry_defaults or {}).items() if k in spec.defaults_from_entry}
    out = {o.name: given.get(o.name, presets.get(o.name, o.default)) for o in spec.options}
    for o in spec.options:
        if o.required_hint and not out[o.name]:
            raise MmstarError(f"{flag_prefix}backend {name} needs {_flag(o.name, flag_prefix)} "
                              f"(e.g. {o.required_hint})")
    return out


def identity_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a run that join its identity: those marked ``identity`` and set away from
    their default (so a run that never set one keeps the identity it always had)."""
    spec = get(name)
    return {o.name: options[o.name] for o in spec.options
            if o.identity and o.name in options and options[o.name] != o.default}


def _flag(name: str, prefix: str) -> str:
    return prefix + name.replace("_", "-")


def create(name: str, model_id: str, kind: str, gen: GenerationConfig | None = None,
           options: Mapping[str, Any] | None = None) -> Backend:
    """Build one backend; ``options`` as :func:`resolve_options` returns them (or any subset)."""
    spec = get(name)
    return spec.constructor()(model_id, kind, gen or GenerationConfig(), **dict(options or {}))


def factory(name: str, gen: GenerationConfig | None = None,
            options: Mapping[str, Any] | None = None) -> BackendFactory:
    """A ``(model_id, kind) -> Backend`` callable for the run loop (it loads models when it needs them)."""
    get(name)  # an unknown name fails now, not at the first load
    frozen = dict(options or {})

    def make(model_id: str, kind: str) -> Backend:
        return create(name, model_id, kind, gen, frozen)

    return make


def concrete_dtype(name: str, options: Mapping[str, Any]) -> str | None:
    """The dtype a run will compute in ("auto" resolved as the backend resolves it), or None where the
    server decides. It is part of a run's identity: fp32 and bf16 runs must not mix on resume."""
    spec = get(name)
    if spec.dtype_rule == "server":
        return None
    from mmstar.evaluators.models.loading import resolve_device_dtype  # the one "auto" rule; imports torch

    device = options.get("device", "auto") if spec.dtype_rule == "device" else "auto"
    return str(resolve_device_dtype(device, options.get("dtype", "auto"))[1]).removeprefix("torch.")


def on_accelerator(name: str, options: Mapping[str, Any]) -> bool:
    """Whether a local backend will run on CUDA (the default batch size is then "auto")."""
    spec = get(name)
    if not spec.auto_batch:
        return False
    from mmstar.evaluators.models.loading import resolve_device_dtype

    return resolve_device_dtype(options.get("device", "auto"), "auto")[0].startswith("cuda")


def add_backend_arguments(parser: argparse.ArgumentParser | Any, *, backends: Iterable[str] | None = None,
                          flag_prefix: str = "--", with_backend: bool = True, default: str = "hf") -> None:
    """``--backend`` and every option of the given backends as flags, each once. Flags default to
    None ("not given"), so :func:`resolve_options` can tell a choice from a default. ``flag_prefix``
    ``--judge-`` gives the judge's set (``--judge-backend``, ``--judge-base-url`` ...), stored under
    ``judge_<option>`` so both sets live in one command line (:func:`given_options` with ``prefix``)."""
    chosen = [get(n) for n in (backends or BACKENDS)]
    dest_prefix = flag_prefix.removeprefix("--").replace("-", "_")
    if with_backend:
        parser.add_argument(f"{flag_prefix}backend", choices=[s.name for s in chosen], default=default,
                            help="; ".join(f"{s.name}: {s.help}" for s in chosen))
    seen: set[str] = set()
    for spec in chosen:
        for opt in spec.options:
            if opt.name in seen or not opt.cli:
                continue
            seen.add(opt.name)
            dest = dest_prefix + opt.name
            if opt.type is None and opt.default is True:  # a switch that is on by default: --no-X turns it off
                parser.add_argument(_flag("no_" + opt.name, flag_prefix), dest=dest, action="store_const",
                                    const=False, default=None, help=opt.help)
            elif opt.type is None:
                parser.add_argument(_flag(opt.name, flag_prefix), dest=dest, action="store_const", const=True,
                                    default=None, help=opt.help)
            else:
                parser.add_argument(_flag(opt.name, flag_prefix), dest=dest, type=opt.type, choices=opt.choices,
                                    default=None, help=f"{opt.help} (default {opt.default})")


def given_options(namespace: argparse.Namespace | Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The backend options a parsed command line (or a mapping) sets; unset ones are None. ``prefix``:
    the set stored under ``<prefix><option>`` (``judge_`` for the judge's flags)."""
    values = vars(namespace) if isinstance(namespace, argparse.Namespace) else dict(namespace)
    return {k: values.get(prefix + k) for k in all_options() if prefix + k in values}
