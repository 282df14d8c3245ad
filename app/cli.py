"""The ``mmstar`` command. Every subcommand exits non-zero with one clear line on bad input."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from mmstar.errors import MmstarError


def _cmd_score(args: argparse.Namespace) -> int:
    from mmstar.evaluators.run.judge_config import judge_config

    from mmstar.predictions import check_unique, read_predictions
    from mmstar.report import score_table
    from mmstar.scoring import score_records

    config = judge_config(args)  # flags are checked before anything is read
    records = check_unique(read_predictions(args.file), args.file)
    if config is not None:
        from mmstar.evaluators.run.judge import make_judge_backend, run_judge

        backend = make_judge_backend(config)  # judges the typed records in place (the file is not written)
        try:
            run_judge(records, backend, config)
        finally:
            backend.close()
    summary = score_records(records, args.matcher, with_judge=config is not None or None)
    if config is not None:
        other = score_records(records, "robust" if args.matcher == "official" else "official")
        summary.update({f"{args.matcher}_overall": summary["overall"], f"{other['matcher']}_overall": other["overall"]})
    if args.json:
        keys = ("overall", "macro", "n", "hits", "unparsed", "categories", "l2_categories", "rules",
                "format_compliance")
        out = {k: summary[k] for k in keys}
        if config is not None:
            judge_keys = ("official_overall", "robust_overall", "robust_judge_overall", "robust_judge_macro",
                          "judge_seen", "judge_decided", "judge_no_option", "judge_agreement")
            out.update({k: summary[k] for k in judge_keys}, judge=config.identity())
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        print(score_table(summary, title=str(args.file), rules=True))
    return 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    from mmstar.loaders import load_benchmark

    bench = load_benchmark(args.spec)
    with_image = sum(s.image is not None for s in bench)
    print(f"{bench.origin}: {len(bench)} samples, {with_image} with images, fingerprint {bench.fingerprint()[:16]}")
    for title, key in (("category", "category"), ("l2_category", "l2_category"), ("source", "source")):
        counts = Counter(getattr(s, key) or "(none)" for s in bench)
        print(f"\nper {title}:")
        for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"  {n:6d}  {name}")
    return 0


def _cmd_data_validate(args: argparse.Namespace) -> int:
    from mmstar.loaders import read_table
    from mmstar.validate import validate_table

    table = read_table(args.spec)
    samples, problems = validate_table(table, taxonomy_mode=args.taxonomy, check_images=not args.no_images)
    for p in problems:
        print(p.line(table.origin))
    n_err = sum(p.severity == "error" for p in problems)
    n_warn = len(problems) - n_err
    verdict = "INVALID" if n_err else "valid"
    print(f"{table.origin}: {len(table.rows)} rows, {len(samples)} samples built, "
          f"{n_err} error(s), {n_warn} warning(s): {verdict}")
    return 1 if n_err else 0


def _cmd_data_convert(args: argparse.Namespace) -> int:
    from mmstar.loaders import load_benchmark
    from mmstar.writers import write_benchmark

    bench = load_benchmark(args.src)
    out = write_benchmark(bench, args.dst)
    print(f"wrote {len(bench)} samples to {out}")
    return 0


def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score a prediction file (our JSONL or the official xlsx)")
    p.add_argument("file", type=Path)
    p.add_argument("--matcher", choices=("official", "robust"), default="official")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    from mmstar.evaluators.run.judge_config import add_judge_args

    add_judge_args(p)
    p.set_defaults(func=_cmd_score)


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect, validate and convert benchmark files")
    dsub = p.add_subparsers(dest="data_cmd", required=True)
    info = dsub.add_parser("info", help="counts per capability, axis and source")
    info.add_argument("spec")
    info.set_defaults(func=_cmd_data_info)
    val = dsub.add_parser("validate", help="report every problem with its row; non-zero exit if any error")
    val.add_argument("spec")
    val.add_argument("--taxonomy", choices=("auto", "mmstar", "none"), default="auto",
                     help="check the MMStar 6 x 18 category strings (auto: when the data uses them)")
    val.add_argument("--no-images", action="store_true", help="skip decoding images")
    val.set_defaults(func=_cmd_data_validate)
    conv = dsub.add_parser("convert", help="convert between formats (by the output's extension)")
    conv.add_argument("src")
    conv.add_argument("dst", help=".parquet, .tsv, .jsonl (+ images folder), .xlsx, or a folder (save_to_disk)")
    conv.set_defaults(func=_cmd_data_convert)


def _lazy(module: str, adder: str) -> Callable[[argparse._SubParsersAction], None]:
    def add(sub: argparse._SubParsersAction) -> None:
        import importlib

        getattr(importlib.import_module(module), adder)(sub)

    return add


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_score,
    _add_data,
    _lazy("mmstar.app.eval_cli", "add_commands"),
    _lazy("mmstar.app.eval_cli", "add_more_commands"),
    _lazy("mmstar.metrics.cli", "add_commands"),
    _lazy("mmstar.curation.cli", "add_commands"),
    _lazy("mmstar.review_app.cli", "add_commands"),
    _lazy("mmstar.viewer.cli", "add_commands"),
]


def build_parser() -> argparse.ArgumentParser:
    from mmstar import __version__

    parser = argparse.ArgumentParser(
        prog="mmstar",
        description="Vision-indispensable multimodal benchmarks: S_v, S_wv, S_t, multi-modal gain and leakage.",
    )
    parser.add_argument("--version", action="version", version=f"mmstar {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from mmstar.images import pixel_cap

        pixel_cap()  # a bad MMSTAR_MAX_IMAGE_PIXELS is one line now, not an error on every image later
        return int(args.func(args) or 0)
    except MmstarError as exc:
        print(f"mmstar: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmstar: interrupted; finished predictions are kept, re-run to resume", file=sys.stderr)
        return 130
    except (OSError, ValueError) as exc:
        if os.environ.get("MMSTAR_DEBUG"):
            raise
        print(f"mmstar: error: {exc}", file=sys.stderr)
        return 2


def entry() -> None:
    """The ``mmstar`` command (console script and ``python -m mmstar``): :func:`main`, then out of
    the process without the interpreter's teardown. With torch and transformers loaded that
    teardown (freeing thousands of modules and their objects) took 1.5-6 s on a loaded 2-core
    machine after every file was written (benchmarks/cpu_pipeline.py, README Performance). Exit
    handlers still run and threads are joined, as at a normal exit; only the teardown is skipped."""
    import atexit
    import threading

    code = main()
    for thread in threading.enumerate():  # what a normal exit waits for
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # logging, multiprocessing, tqdm: their exit work happens as before
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (mmstar ... | head): nothing left to say
            pass
    os._exit(code)
