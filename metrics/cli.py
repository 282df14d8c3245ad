"""CLI command of the metrics: ``mmstar leaderboard`` (and ``--compare``: two models, paired)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmstar.errors import MmstarError


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    if args.compare:
        return _compare(args)
    if args.csv is None:
        raise MmstarError("leaderboard: --csv FILE is required (or --compare with two run directories)")
    from .leaderboard import publish

    publish([Path(p) for p in args.run_dirs], csv=args.csv, radar=args.radar, submission=args.submission,
            leakage=args.leakage, mg_ml=args.mg_ml, json_out=args.json, matcher=args.matcher, seed=args.seed,
            echo=True)
    return 0


def _compare(args: argparse.Namespace) -> int:
    """``--compare``: exactly two run directories, A then B; --csv / --json write the comparison."""
    from mmstar.runs import open_run

    from .compare import compare_runs, format_compare, write_compare_csv, write_compare_json

    extra = [f"--{k.replace('_', '-')}" for k in ("radar", "mg_ml", "submission", "leakage") if getattr(args, k)]
    if extra:
        raise MmstarError(f"leaderboard --compare writes only --csv / --json; drop {', '.join(extra)}")
    if len(args.run_dirs) != 2:
        raise MmstarError(f"leaderboard --compare takes two run directories (A then B), got {len(args.run_dirs)}")
    rows = compare_runs(*(open_run(p) for p in args.run_dirs), matcher=args.matcher, seed=args.seed)
    if args.csv is not None:
        write_compare_csv(rows, args.csv)
    if args.json is not None:
        write_compare_json(rows, args.json)
    print(format_compare(rows))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="leaderboard CSV, radar chart and submission files from run dirs; "
                                           "--compare: two models, paired")
    p.add_argument("run_dirs", nargs="+", help="run directories (OUT/<model>/<benchmark>)")
    p.add_argument("--csv", type=Path, help="the leaderboard CSV (with --compare: the comparison's rows)")
    p.add_argument("--compare", action="store_true",
                   help="compare two runs of one benchmark (A B): per mode the paired difference A - B with its "
                        "95%% bootstrap interval and McNemar's exact p")
    p.add_argument("--radar", type=Path, help="radar chart of the 6 capabilities (PNG)")
    p.add_argument("--mg-ml", type=Path, help="MG-vs-ML chart across models (PNG)")
    p.add_argument("--submission", type=Path, help="folder for the official xlsx submission files")
    p.add_argument("--leakage", type=Path, help="CSV of samples answered without the image (leakage evidence)")
    p.add_argument("--json", type=Path, help="the rows, with intervals, as JSON (with --compare: the comparison)")
    p.add_argument("--matcher", choices=("official", "robust"), default="official")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=_cmd_leaderboard)
