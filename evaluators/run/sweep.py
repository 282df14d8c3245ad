"""Sweeps: several models x several benchmarks, each pair into its own run directory.

``mmstar eval --model a,b,c --data x,y`` or ``mmstar eval --config sweep.yaml``. Models loaded in
this process run one at a time: its LVLM over every benchmark (v, wv), then its backbone (t), each
loaded once; GPU memory is given back between models. Models behind a server (``--backend openai``)
run all at once, the runs on one server through one shared request window (``sweep_pool.py``). A
model that fails is reported at the end and the sweep goes on with the others, and the Table-4 layout
is printed and written to ``OUT/leaderboard.csv`` (by ``mmstar.app.publishing.report``: the run
layer does not import the leaderboard). Every pair resumes as a single run does, so
re-running a killed sweep finishes it without duplicating a prediction.

A config file (YAML, or JSON) lists models x benchmarks x options::

    models:                      # aliases, hub ids or folders; a mapping gives a model its backbone
      - qwen2.5-vl-7b
      - {model: ./my-vlm, backbone: ./my-llm}
    data: [mmstar, ./other.parquet]
    out: runs                    # optional; the other keys are `mmstar eval` options
    options: {modes: "v,wv,t", batch_size: 8, limit: 100}
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mmstar.evaluators.backends import registry as backends
from mmstar.evaluators.models.registry import ModelEntry

from mmstar.errors import DataError, MmstarError
from mmstar.sample import Benchmark

from .judge import JudgeConfig
from .kept import KeptBackends
from .pipeline import RunOptions, load_data, plan, resolve_entry
from .probes import ProbePlan
from .probes import after_modes as probe_hook
from .runner import EvalConfig, run_eval, summary_line

# options a config file may set: the pipeline's RunOptions and every backend's options, by name
OPTION_KEYS = RunOptions.names()


@dataclass(frozen=True)
class ModelSpec:
    name: str
    backbone: str | None = None


@dataclass(frozen=True)
class SweepSpec:
    models: tuple[ModelSpec, ...]
    data: tuple[str, ...]
    out: str | None = None
    options: tuple[tuple[str, Any], ...] = ()


@dataclass
class PairResult:
    model: str
    benchmark: str
    run_dir: Path | None = None
    error: str | None = None
    skipped: bool = False  # not attempted: the model had already failed


def split_list(text: str) -> list[str]:
    """A comma list, unless the whole text names an existing path (folders may contain commas)."""
    if Path(text).exists() or "," not in text:
        return [text]
    return [x.strip() for x in text.split(",") if x.strip()]


def _read_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(path, "no such sweep config file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"invalid JSON ({exc.msg})", exc.lineno) from None
    else:
        try:
            import yaml
        except ImportError:
            raise DataError(path, "YAML needs pyyaml (pip install pyyaml); or write the config as .json") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise DataError(path, f"invalid YAML ({getattr(exc, 'problem', None) or exc})",
                            mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise DataError(path, "the sweep config must be a mapping with 'models' and 'data'")
    return data


def _model_spec(path: Path, item: Any, i: int) -> ModelSpec:
    if isinstance(item, str) and item.strip():
        return ModelSpec(item.strip())
    if isinstance(item, dict) and isinstance(item.get("model"), str) and set(item) <= {"model", "backbone"}:
        backbone = item.get("backbone")
        if backbone is not None and not isinstance(backbone, str):
            raise DataError(path, f"models[{i}].backbone must be a string")
        return ModelSpec(item["model"], backbone)
    raise DataError(path, f"models[{i}] must be a name or a mapping {{model: ..., backbone: ...}}, not {item!r}")


def load_sweep_config(path: Path) -> SweepSpec:
    data = _read_mapping(path)
    unknown = set(data) - {"models", "data", "out", "options"}
    if unknown:
        raise DataError(path, f"unknown key(s) {', '.join(sorted(unknown))}; use models, data, out, options")
    models, benches = data.get("models"), data.get("data")
    if not isinstance(models, list) or not models:
        raise DataError(path, "'models' must be a non-empty list")
    if isinstance(benches, str):
        benches = [benches]
    if not isinstance(benches, list) or not benches or not all(isinstance(b, str) and b for b in benches):
        raise DataError(path, "'data' must be a non-empty list of benchmark specs")
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise DataError(path, "'options' must be a mapping of `mmstar eval` options")
    options = {str(k).replace("-", "_"): v for k, v in options.items()}
    bad = sorted(set(options) - set(OPTION_KEYS))
    if bad:
        raise DataError(path, f"unknown option(s) {', '.join(bad)}; allowed: {', '.join(OPTION_KEYS)}")
    out = data.get("out")
    if out is not None and not isinstance(out, str):
        raise DataError(path, "'out' must be a folder path")
    try:  # the values' types and ranges, checked now, in one line naming the file
        RunOptions.from_mapping(options)
    except MmstarError as exc:
        raise DataError(path, f"options: {exc}") from None
    return SweepSpec(tuple(_model_spec(path, m, i) for i, m in enumerate(models)), tuple(benches), out,
                     tuple(options.items()))


def sweep_from_flags(model: str, backbone: str | None, data: str) -> SweepSpec:
    """``--model a,b,c [--backbone x,y,z] --data p,q``: one backbone for all, or one per model."""
    models = split_list(model)
    backbones: list[str | None] = [None] * len(models)
    if backbone:
        given = split_list(backbone)
        if len(given) == 1:
            backbones = given * len(models)
        elif len(given) == len(models):
            backbones = list(given)
        else:
            raise MmstarError(f"--backbone lists {len(given)} backbones for {len(models)} models; give one, "
                              "or one per model in the same order")
    return SweepSpec(tuple(ModelSpec(m, b) for m, b in zip(models, backbones)), tuple(split_list(data)))


def free_memory() -> None:
    """Give memory back between models (backends close themselves; this sweeps what is left)."""
    gc.collect()
    torch = sys.modules.get("torch")  # never import torch just for this (API backends)
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def _phases(modes: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The LVLM's modes, then the backbone's: one model in memory at a time, each loaded once."""
    return [p for p in (tuple(m for m in modes if m != "t"), tuple(m for m in modes if m == "t")) if p]


def _run_model(entry: ModelEntry, benches: Sequence[Benchmark], out: Path, config: EvalConfig,
               factory: Callable[[str, str], Any], echo: Callable[[str], None],
               probes: ProbePlan | None = None) -> list[PairResult]:
    results = {b.name: PairResult(entry.alias, b.name) for b in benches}
    scores: dict[str, dict[str, Any]] = {}
    failed: str | None = None
    if "t" in config.modes and not config.backbone:  # fail before the LVLM spends its time
        failed = (f"MmstarError: mode t needs the LLM backbone of {config.model}: give it a backbone "
                  "(--backbone, or {model, backbone} in the config) or leave t out")
    for phase in _phases(config.modes) if failed is None else []:
        make = KeptBackends(factory)  # each model loaded once over its benchmarks
        try:
            for bench in benches:
                try:
                    phased = replace(config, modes=phase)  # the probes of this phase's modes run in it
                    hook = None if probes is None else probe_hook(probes, phased, backends.get(config.backend).streams,
                                                                  strict=False)
                    run_dir, scores[bench.name] = run_eval(bench, phased, out, make, after_modes=hook)
                except Exception as exc:  # any failure of one model must not end the sweep
                    failed = _first_line(exc)
                    results[bench.name].error = failed
                    echo(f"FAILED {entry.alias} on {bench.name}: {failed}")
                    break
                results[bench.name].run_dir = run_dir
        finally:
            make.release()
            free_memory()
        if failed is not None:
            break
    for r in results.values():
        if failed is not None:  # the same error would repeat: the model's other pairs are skipped
            r.skipped, r.error, r.run_dir = r.error is None, r.error or failed, None
        elif scores.get(r.benchmark):
            echo(f"{entry.alias} / {r.benchmark} -> {r.run_dir}: {summary_line(scores[r.benchmark])}")
    return list(results.values())


def run_sweep(entries: Sequence[ModelEntry], benches: Sequence[Benchmark], out: Path,
              make_config: Callable[[ModelEntry], EvalConfig],
              make_factory: Callable[[ModelEntry], Callable[[str, str], Any]],
              echo: Callable[[str], None] = print, probes: ProbePlan | None = None) -> list[PairResult]:
    """Run every (model, benchmark) pair; a model that fails is recorded and the sweep moves on.
    Models loaded here: one after another, each model's LVLM over all benchmarks, then its backbone,
    each loaded once. Models on servers: all at once, the runs on one server sharing one request
    window (``sweep_pool.py``)."""
    from .sweep_pool import run_pooled, streams

    on_servers = [i for i, e in enumerate(entries) if streams(make_config(e))]
    results: dict[int, list[PairResult]] = {}
    pooled = run_pooled([entries[i] for i in on_servers], benches, out, make_config, make_factory,
                        _first_line, probes) if on_servers else []
    for k, (entry, bench, run_dir, scores, error) in enumerate(pooled):  # in sweep order: model-major
        results.setdefault(on_servers[k // len(benches)], []).append(PairResult(entry.alias, bench.name, run_dir,
                                                                                error))
        if error is not None:
            echo(f"FAILED {entry.alias} on {bench.name}: {error}")
        elif scores:
            echo(f"{entry.alias} / {bench.name} -> {run_dir}: {summary_line(scores)}")
    for i, entry in enumerate(entries):
        if i not in results:
            results[i] = _run_model(entry, benches, out, make_config(entry), make_factory(entry), echo, probes)
    return [r for i in range(len(entries)) for r in results[i]]


def evaluate_sweep(models: Sequence[tuple[str, str | None]], data: Sequence[str | Path | Benchmark],
                   options: RunOptions, out: Path, judge: JudgeConfig | None = None,
                   echo: Any = print) -> list[Any]:
    """Every model x every benchmark, one run directory each; a model that fails is recorded and the
    sweep goes on. Every alias, family and benchmark is checked before any model loads."""
    from .judge import judge_run_dir

    entries = [resolve_entry(name, backbone, options.backend) for name, backbone in models]
    plans = {id(e): plan(e, options) for e in entries}  # every option is checked before any load
    benches = [load_data(d) for d in data]
    probes = next(iter(plans.values())).probes if plans else None  # the same options for every model
    if probes is not None:
        for bench in benches:  # bad input: one line before a model loads
            probes.jobs(bench.limit(options.limit), options.modes)
    results = run_sweep(entries, benches, out, lambda e: plans[id(e)].config, lambda e: plans[id(e)].factory,
                        echo=echo, probes=probes)
    if judge is not None:  # after every model is gone: the judge loads into the freed memory
        for r in results:
            if r.run_dir is not None and r.error is None:
                judge_run_dir(r.run_dir, judge)
    return results
