"""``mmstar curate pool|filter|select``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mmstar.errors import MmstarError


def _cmd_pool(args: argparse.Namespace) -> int:
    from mmstar.atomic import atomic_write_text
    from mmstar.writers import write_benchmark

    from .pool import build_pool

    pool, report = build_pool(args.sources, skip_invalid=args.skip_invalid)
    out = write_benchmark(pool, Path(args.out))
    for line in report.problems:
        print(line)
    if report.duplicates:
        dup_path = out.parent / f"{out.stem}.duplicates.csv"
        rows = ["source,index,duplicate_of_source,duplicate_of_index"]
        rows += [f"{a},{b},{c},{d}" for a, b, c, d in report.duplicates]
        atomic_write_text(dup_path, "\n".join(rows) + "\n")
        print(f"dropped {len(report.duplicates)} exact duplicate(s), listed in {dup_path}")
    if report.skipped:
        print(f"left out {report.skipped} invalid row(s)")
    for source, n in sorted(report.per_source.items()):
        print(f"  {n:7d}  {source}")
    print(f"wrote a pool of {len(pool)} samples to {out}")
    return 0


def _backend(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """The chosen backend's options from the flags, and the decoding (checked before any model loads)."""
    from mmstar.evaluators.backends import registry as backends
    from mmstar.evaluators.backends.base import GenerationConfig

    spec = backends.get(args.backend)
    if getattr(args, "scoring", "generate") == "loglik" and not spec.loglik:
        raise MmstarError(f"--scoring loglik needs a backend that ranks letters: "
                          f"{', '.join(backends.names(lambda b: b.loglik))}")
    options = backends.resolve_options(args.backend, backends.given_options(args))
    return options, GenerationConfig(max_new_tokens=args.max_new_tokens)


def _cmd_filter(args: argparse.Namespace) -> int:
    from mmstar.atomic import atomic_path, atomic_write_text
    from mmstar.loaders import load_benchmark

    from .filter import Inspector, hit_matrix, run_inspectors, split_pool
    from .report import write_report

    if not args.llm:
        raise MmstarError("give at least one inspector LLM with --llm ID")
    out = Path(args.out)
    pool = load_benchmark(args.pool)
    inspectors = [Inspector(m, "llm") for m in args.llm] + [Inspector(m, "lvlm") for m in args.lvlm or []]
    columns = [i.column for i in inspectors]
    if len(set(columns)) != len(columns):
        raise MmstarError("the same inspector is named twice")
    from mmstar.evaluators.backends import registry as backends

    options, gen = _backend(args)
    factory = backends.factory(args.backend, gen, options)
    dtype = backends.concrete_dtype(args.backend, options)
    files = run_inspectors(pool, inspectors, out, factory, args.shots, args.batch_size, args.scoring,
                           not args.no_progress, gen, dtype)
    llm_cols = [i.column for i in inspectors if i.kind == "llm"]
    matrix = hit_matrix(pool, files, llm_cols)
    with atomic_path(out / "hits.parquet") as tmp:
        matrix.to_parquet(tmp, index=False)
    kept, dropped = split_pool(pool, matrix, args.max_hits, out)
    meta = {"shots": args.shots, "scoring": args.scoring, "max_hits": args.max_hits, "inspectors": llm_cols,
            "blind_lvlms": [c for c in columns if c not in llm_cols], "pool": str(args.pool), "kept": len(kept),
            "dropped": len(dropped)}
    atomic_write_text(out / "filter.json", json.dumps(meta, indent=2) + "\n")
    report = write_report(matrix, llm_cols, args.max_hits, args.abnormal_fraction, out, meta)
    print(report.read_text())
    print(f"kept {len(kept)}, dropped {len(dropped)} of {len(pool)} -> {out / 'kept.parquet'}")
    return 0


def _cmd_select(args: argparse.Namespace) -> int:
    from mmstar.loaders import load_benchmark
    from mmstar.runs import prediction_hits
    from mmstar.writers import write_benchmark

    from .select import as_benchmark, select_balanced

    bench = load_benchmark(args.kept)
    prediction_files: list[Path] = [Path(p) for p in args.runs or []]
    if args.lvlm:
        from mmstar.evaluators.backends.registry import given_options
        from mmstar.evaluators.run.pipeline import evaluate

        _backend(args)  # flags checked before any model loads
        for model in args.lvlm:  # the LVLMs with the image, through the same pipeline as `mmstar eval`
            result = evaluate(model, data=bench, modes=("v",), out=Path(args.out).parent / "select-runs",
                              backend=args.backend, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                              progress=not args.no_progress, **{k: v for k, v in given_options(args).items()
                                                                  if v is not None})
            prediction_files.append(result.run_dir / "v.jsonl")
    if not prediction_files:
        raise MmstarError("difficulty needs LVLM results with the image: pass --lvlm ID or --runs V_JSONL")
    hits: dict[int, int] = {}
    for path in prediction_files:  # a run directory or a v.jsonl; hits re-judged (official matcher)
        for index, hit in prediction_hits(path, "v").items():
            hits[index] = hits.get(index, 0) + hit
    chosen, summary = select_balanced(list(bench), hits, len(prediction_files), args.per_capability, args.seed)
    out = write_benchmark(as_benchmark(chosen), Path(args.out))
    for cap, axes in summary.items():
        print(f"  {cap:<28} {sum(axes.values()):5d}  " + ", ".join(f"{a}: {n}" for a, n in axes.items()))
    print(f"wrote {len(chosen)} candidates to {out}")
    return 0


def _backend_args(p: argparse.ArgumentParser) -> None:
    from mmstar.evaluators.backends.registry import add_backend_arguments

    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--no-progress", action="store_true")
    add_backend_arguments(p)  # --backend and each backend's own options, from the backend registry


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curate", help="build a vision-indispensable benchmark: pool -> filter -> select")
    csub = p.add_subparsers(dest="curate_cmd", required=True)
    pool = csub.add_parser("pool", help="merge candidate samples, tag source/split, drop exact duplicates")
    pool.add_argument("sources", nargs="+", help="benchmark files, each as PATH[=SOURCE[:SPLIT]]")
    pool.add_argument("--out", required=True, help="pool file (.parquet, .tsv, .jsonl) or folder")
    pool.add_argument("--skip-invalid", action="store_true", help="leave invalid rows out instead of failing")
    pool.set_defaults(func=_cmd_pool)

    f = csub.add_parser("filter", help="inspector LLMs answer text-only; drop samples too many of them answer")
    f.add_argument("pool")
    f.add_argument("--llm", action="append", help="inspector LLM id or folder (repeat; the paper used 8)")
    f.add_argument("--lvlm", action="append", help="also record this LVLM's blind (no-image) hits")
    f.add_argument("--shots", type=int, choices=(0, 2), default=2)
    f.add_argument("--max-hits", type=int, default=2, help="keep samples hit by at most K inspectors (paper: 2)")
    f.add_argument("--abnormal-fraction", type=float, default=0.75, help="report: hit by >= this share (6/8)")
    f.add_argument("--scoring", choices=("generate", "loglik"), default="generate",
                   help="loglik: rank option letters by next-token log-likelihood, no generation (fast)")
    f.add_argument("--out", required=True)
    _backend_args(f)
    f.set_defaults(func=_cmd_filter)

    s = csub.add_parser("select", help="difficulty bins from LVLMs with the image, balanced seeded selection")
    s.add_argument("kept", help="the filter's kept set (or any benchmark file)")
    s.add_argument("--lvlm", action="append", help="LVLM to run with the image (repeat)")
    s.add_argument("--runs", action="append", help="existing v.jsonl (or run dir) of an LVLM on these samples")
    s.add_argument("--per-capability", type=int, default=250)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="the candidates file the review app reads")
    _backend_args(s)
    s.set_defaults(func=_cmd_select)
