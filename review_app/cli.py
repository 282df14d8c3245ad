"""``mmstar review CANDIDATES --db DB``, ``review stats``, ``review export``, ``review audit`` and
``review users add|list|disable|reset NAME --db DB [--role reviewer|lead]``."""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from mmstar.errors import MmstarError
from mmstar.launch import exec_streamlit, streamlit_options

USER_ACTIONS = ("add", "list", "disable", "reset")


def _cmd_review(args: argparse.Namespace) -> int:
    if args.target == "users":
        return _cmd_users(args)
    if args.rest:
        raise MmstarError(f"unexpected argument {args.rest[0]!r} after {args.target!r}")
    if args.target == "stats":
        from .export import stats_text

        print(stats_text(_need_db(args), args.quorum))
        return 0
    if args.target == "export":
        from .export import export

        if not args.out:
            raise MmstarError("review export needs --out DIR")
        paths, n = export(_need_db(args), Path(args.out), args.candidates, args.quorum, args.format)
        print(f"exported {n} accepted samples to {', '.join(map(str, paths))}; every decision with its reviewer "
              f"in {Path(args.out) / 'decisions.jsonl'}")
        return 0
    if args.target == "audit":
        return _cmd_audit(args)
    return _serve(args)


def _need_db(args: argparse.Namespace) -> str:
    if not args.db:
        raise MmstarError("--db is required (a SQLite path or a SQLAlchemy URL)")
    return args.db


def _actor() -> str:
    """Account changes made on the command line are audited as the operating-system user who ran them."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"cli:uid{os.getuid()}" if hasattr(os, "getuid") else "cli"


def _cmd_users(args: argparse.Namespace) -> int:
    from .accounts import Accounts
    from .store import Store

    if not args.rest or args.rest[0] not in USER_ACTIONS:
        got = f" {args.rest[0]!r}" if args.rest else ""
        raise MmstarError(f"review users: unknown action{got}; use one of: {', '.join(USER_ACTIONS)}")
    action, names = args.rest[0], args.rest[1:]
    if action == "list":
        if names:
            raise MmstarError(f"review users list takes no NAME (got {names[0]!r})")
    elif len(names) != 1:
        raise MmstarError(f"review users {action} needs exactly one NAME")
    if args.role and action not in ("add", "reset"):
        raise MmstarError(f"--role goes with users add or users reset, not users {action}")
    accounts = Accounts(Store(_need_db(args)))
    if action == "list":
        rows = accounts.list()
        if not rows:
            print(f"no accounts in {args.db} (add one: mmstar review users add NAME --db DB --role lead)")
        for a in rows:
            state = "disabled" if a.disabled else (f"locked until {a.locked_until}" if a.locked_until else "active")
            extra = ", one-time password not yet changed" if a.must_change and not a.disabled else ""
            print(f"{a.name}\t{a.role}\t{state}{extra}\tlast login {a.last_login or 'never'}")
        return 0
    name = names[0]
    if action == "add":
        password = accounts.add(name, args.role or "reviewer", actor=_actor())
        print(f"added {name} ({args.role or 'reviewer'}); one-time password: {password}")
        print("it is shown only now; at the first login it must be replaced by their own password")
    elif action == "disable":
        accounts.disable(name, actor=_actor())
        print(f"disabled {name}; its sessions are ended (its decisions stay in the store)")
    else:
        password = accounts.reset(name, actor=_actor(), role=args.role, enable=args.enable)
        print(f"reset {name}; one-time password: {password}")
        print("it is shown only now; the lockout is cleared and the account's sessions are ended")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    import json

    from .store import Store

    for r in Store(_need_db(args)).audit_rows(limit=args.limit):
        detail = json.dumps(r["detail"], ensure_ascii=False, sort_keys=True) if r["detail"] else ""
        print(f"{r['created']}\t{r['event']}\t{r['account'] or '-'}\tby {r['actor'] or '-'}\t{detail}")
    return 0


def check_binding(address: str, has_accounts: bool) -> None:
    """Beyond loopback, anyone who reaches the port could review: refuse that without accounts."""
    from .accounts import is_loopback

    if not is_loopback(address) and not has_accounts:
        raise MmstarError(f"refusing --address {address}: this store has no accounts, so anyone reaching the port "
                          "could review; add them first (mmstar review users add NAME --db DB) or keep 127.0.0.1")


def _serve(args: argparse.Namespace) -> int:
    import sys

    from mmstar.errors import require
    from mmstar.loaders import load_benchmark

    from .accounts import Accounts, is_loopback
    from .store import Store, check_reviewer

    require("streamlit", "review")
    db = _need_db(args)
    load_benchmark(args.target)  # fail here, in one line, rather than in the browser
    if args.reviewer:
        check_reviewer(args.reviewer)
    store = Store(db)
    has_accounts = Accounts(store).has_accounts()
    check_binding(args.address, has_accounts)
    if has_accounts and args.reviewer:
        raise MmstarError("--reviewer is for a store without accounts; this one has accounts, so each reviewer "
                          "logs in in the browser")
    if args.auth == "oidc" and not has_accounts:
        raise MmstarError("--auth oidc logs reviewers in to their accounts in this store, and it has none yet: "
                          "mmstar review users add EMAIL --db DB")
    if not has_accounts and not args.reviewer:
        raise MmstarError("this store has no accounts: pass --reviewer NAME (single user, loopback only), or add "
                          "accounts with: mmstar review users add NAME --db DB")
    if args.auth == "oidc":
        require_oidc()
    if args.session_hours <= 0:
        raise MmstarError("--session-hours must be positive")
    store.set_setting("candidates", str(Path(args.target).resolve()))
    env = {**os.environ, "MMSTAR_REVIEW_CANDIDATES": str(Path(args.target).resolve()), "MMSTAR_REVIEW_DB": db,
           "MMSTAR_REVIEW_REVIEWER": args.reviewer or "", "MMSTAR_REVIEW_QUORUM": str(args.quorum or 0),
           "MMSTAR_REVIEW_TARGET": str(args.target_per_capability), "MMSTAR_REVIEW_AUTH": args.auth,
           "MMSTAR_REVIEW_SESSION_HOURS": str(args.session_hours)}
    app = Path(__file__).with_name("app.py")
    options = streamlit_options(args.address, args.port, args.allowed_host)
    if has_accounts and is_loopback(args.address) and not args.allowed_host:
        print("note: the app accepts only localhost, 127.0.0.1 and ::1 as Host; behind a TLS proxy that sends its "
              "own name, pass --allowed-host NAME (README, Team setup)", file=sys.stderr)
    if has_accounts and not is_loopback(args.address):
        print("warning: Streamlit speaks plain HTTP: put a TLS reverse proxy in front (README, Team setup)",
              file=sys.stderr)
    mode = "accounts, login required" if has_accounts else f"single-user local mode as {args.reviewer}"
    print(f"review app on http://{args.address}:{args.port} ({mode}; Ctrl-C to stop); decisions go to {db}")
    return exec_streamlit(app, options, env)


def require_oidc() -> None:
    """Streamlit's st.login needs Authlib, and an [auth] section in .streamlit/secrets.toml."""
    try:
        import authlib  # noqa: F401
    except ImportError:
        raise MmstarError("--auth oidc needs Authlib (pip install 'Authlib>=1.3.2') and an [auth] section in "
                          ".streamlit/secrets.toml (README, Team setup)") from None


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="human review app (Streamlit); also: review stats|export|audit|users")
    p.add_argument("target", help="CANDIDATES file to review, or 'stats' / 'export' / 'audit' / 'users'")
    p.add_argument("rest", nargs="*", metavar="ACTION NAME",
                   help="users: add|list|disable|reset and the account NAME")
    p.add_argument("--db", help="decision store: a SQLite path (WAL) or a SQLAlchemy URL (postgresql://...)")
    p.add_argument("--reviewer", help="single-user local mode (a store without accounts): your reviewer name")
    p.add_argument("--role", choices=("reviewer", "lead"), help="users add/reset: the account's role "
                   "(add: reviewer by default)")
    p.add_argument("--enable", action="store_true", help="users reset: re-enable a disabled account")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1",
                   help="interface to listen on (default: loopback only; beyond it needs accounts)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a host name browsers use to reach the app, e.g. the TLS proxy's (repeatable); on a "
                        "loopback bind the Host header must be one of these or a loopback name")
    p.add_argument("--auth", choices=("password", "oidc"), default="password",
                   help="how reviewers log in: the store's passwords, or Streamlit's OIDC login (st.login)")
    p.add_argument("--session-hours", type=float, default=8.0, help="a login lasts this long (default 8)")
    p.add_argument("--quorum", type=int, help="votes needed (default: all who voted, at least 2)")
    p.add_argument("--target-per-capability", type=int, default=250)
    p.add_argument("--out", help="export: output folder")
    p.add_argument("--candidates", help="export: the candidates file (default: the one the app recorded)")
    p.add_argument("--format", choices=("parquet", "tsv", "hf", "all"), default="all", help="export format")
    p.add_argument("--limit", type=int, default=100, help="audit: show the newest N events (0: all)")
    p.set_defaults(func=_cmd_review)
