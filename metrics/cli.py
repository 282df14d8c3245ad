"""CLI command of the metrics: ``mmstar leaderboard``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from .leaderboard import publish

    publish([Path(p) for p in args.run_dirs], csv=args.csv, radar=args.radar, submission=args.submission,
            leakage=args.leakage, mg_ml=args.mg_ml, json_out=args.json, matcher=args.matcher, seed=args.seed,
            echo=True)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="leaderboard CSV, radar chart and submission files from run dirs")
    p.add_argument("run_dirs", nargs="+", help="run directories (OUT/<model>/<benchmark>)")
    p.add_argument("--csv", type=Path, required=True)
    p.add_argument("--radar", type=Path, help="radar chart of the 6 capabilities (PNG)")
    p.add_argument("--mg-ml", type=Path, help="MG-vs-ML chart across models (PNG)")
    p.add_argument("--submission", type=Path, help="folder for the official xlsx submission files")
    p.add_argument("--leakage", type=Path, help="CSV of samples answered without the image (leakage evidence)")
    p.add_argument("--json", type=Path, help="the rows, with intervals, as JSON")
    p.add_argument("--matcher", choices=("official", "robust"), default="official")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=_cmd_leaderboard)
