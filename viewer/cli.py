"""``mmstar view RUN_DIR...`` (Streamlit app) and ``mmstar report RUN_DIR... --html FILE``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mmstar.errors import MmstarError
from mmstar.launch import exec_streamlit, is_loopback, streamlit_options

from .access import TOKEN_ENV_VAR


def _check(paths: list[str], seed: int = 0):
    """Load once here so the problems print as lines and a hopeless call fails before any server
    starts; the app loads again (in its own process) and shows the same lines."""
    from .data import load

    view = load(paths, seed)
    if not view.runs:
        raise MmstarError("no runs to show: " + "; ".join(view.problems))
    for line in view.problems:
        print(f"note: {line}", file=sys.stderr)
    return view


def _cmd_view(args: argparse.Namespace) -> int:
    from mmstar.errors import require

    require("streamlit", "review")
    require("matplotlib", "plots")
    check_access(args.address, args.token_env)
    view = _check(args.run_dirs, args.seed)
    env = {**os.environ, "MMSTAR_VIEW_PATHS": json.dumps([str(Path(p).resolve()) for p in args.run_dirs]),
           "MMSTAR_VIEW_DATA": args.data or "", "MMSTAR_VIEW_SEED": str(args.seed),
           TOKEN_ENV_VAR: args.token_env or ""}
    app = Path(__file__).with_name("app.py")
    options = streamlit_options(args.address, args.port, args.allowed_host)
    gate = f"; access token from ${args.token_env}" if args.token_env else ""
    print(f"viewer on http://{args.address}:{args.port} (Ctrl-C to stop): {len(view.runs)} run(s){gate}")
    return exec_streamlit(app, options, env)


def check_access(address: str, token_env: str | None) -> None:
    """Beyond loopback anyone who reaches the port would read every run: refuse that without a token."""
    from .access import token_from_env

    if token_env:
        token_from_env(token_env)
    elif not is_loopback(address):
        raise MmstarError(f"refusing --address {address}: the viewer would show every run to anyone who reaches "
                          "the port; put a token in an environment variable and pass --token-env NAME (README, "
                          "Security), or keep 127.0.0.1")


def _cmd_report(args: argparse.Namespace) -> int:
    from mmstar.errors import require

    from .report import write_report

    require("matplotlib", "plots")
    view = write_report(args.run_dirs, args.html, args.data, args.matcher, args.max_leaked, args.seed)
    for line in view.problems:
        print(f"note: {line}", file=sys.stderr)
    print(f"wrote {args.html}: {len(view.runs)} run(s), {len(view.problems)} problem(s)")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    view = sub.add_parser("view", help="browse runs: leaderboard, radar charts, MG vs ML, samples, diff, probes "
                                       "(Streamlit)")
    view.add_argument("run_dirs", nargs="+", help="run directories (OUT/<model>/<benchmark>) or folders above them")
    view.add_argument("--data", help="data spec to take images from (default: the one each run's manifest records)")
    view.add_argument("--port", type=int, default=8502)
    view.add_argument("--address", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    view.add_argument("--token-env", metavar="NAME",
                      help="the environment variable holding an access token (at least 24 characters) that every "
                           "browser session must give before any data is shown; required beyond loopback")
    view.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                      help="a host name browsers use to reach the viewer (repeatable); on a loopback bind the Host "
                           "header must be one of these or a loopback name")
    view.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    view.set_defaults(func=_cmd_view)
    rep = sub.add_parser("report", help="one self-contained HTML report: leaderboard, charts, leaked samples, "
                                        "leakage evidence")
    rep.add_argument("run_dirs", nargs="+", help="run directories (OUT/<model>/<benchmark>) or folders above them")
    rep.add_argument("--html", type=Path, required=True, help="the HTML file to write")
    rep.add_argument("--data", help="data spec to take thumbnails from (default: each run's manifest)")
    rep.add_argument("--matcher", choices=("official", "robust", "judge"), default="official")
    rep.add_argument("--max-leaked", type=int, default=100, help="leaked samples listed per run")
    rep.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    rep.set_defaults(func=_cmd_report)
