"""``mmstar review CANDIDATES --db DB``, ``mmstar review stats --db DB``, ``mmstar review export``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mmstar.errors import MmstarError
from mmstar.launch import exec_streamlit


def _cmd_review(args: argparse.Namespace) -> int:
    if args.target == "stats":
        from .export import stats_text

        print(stats_text(_need_db(args), args.quorum))
        return 0
    if args.target == "export":
        from .export import export

        if not args.out:
            raise MmstarError("review export needs --out DIR")
        paths, n = export(_need_db(args), Path(args.out), args.candidates, args.quorum, args.format)
        print(f"exported {n} accepted samples to {', '.join(map(str, paths))}")
        return 0
    return _serve(args)


def _need_db(args: argparse.Namespace) -> str:
    if not args.db:
        raise MmstarError("--db is required (a SQLite path or a SQLAlchemy URL)")
    return args.db


def _serve(args: argparse.Namespace) -> int:
    from mmstar.errors import require
    from mmstar.loaders import load_benchmark

    from .store import Store, check_reviewer

    require("streamlit", "review")
    db = _need_db(args)
    load_benchmark(args.target)  # fail here, in one line, rather than in the browser
    if args.reviewer:
        check_reviewer(args.reviewer)
    Store(db).set_setting("candidates", str(Path(args.target).resolve()))
    env = {**os.environ, "MMSTAR_REVIEW_CANDIDATES": str(Path(args.target).resolve()), "MMSTAR_REVIEW_DB": db,
           "MMSTAR_REVIEW_REVIEWER": args.reviewer or "", "MMSTAR_REVIEW_QUORUM": str(args.quorum or 0),
           "MMSTAR_REVIEW_TARGET": str(args.target_per_capability)}
    app = Path(__file__).with_name("app.py")
    options = ["--server.port", str(args.port), "--server.address", args.address, "--server.headless", "true",
               "--browser.gatherUsageStats", "false"]
    print(f"review app on http://{args.address}:{args.port} (Ctrl-C to stop); decisions go to {db}")
    return exec_streamlit(app, options, env)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="human review app (Streamlit); also: review stats, review export")
    p.add_argument("target", help="CANDIDATES file to review, or 'stats' / 'export'")
    p.add_argument("--db", help="decision store: a SQLite path (WAL) or a SQLAlchemy URL (postgresql://...)")
    p.add_argument("--reviewer", help="your reviewer name")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    p.add_argument("--quorum", type=int, help="votes needed (default: all who voted, at least 2)")
    p.add_argument("--target-per-capability", type=int, default=250)
    p.add_argument("--out", help="export: output folder")
    p.add_argument("--candidates", help="export: the candidates file (default: the one the app recorded)")
    p.add_argument("--format", choices=("parquet", "tsv", "hf", "all"), default="all", help="export format")
    p.set_defaults(func=_cmd_review)
