"""The review decision store (SQLAlchemy; SQLite in WAL mode by default, PostgreSQL for teams).

Append-only: every decision is a new row; nothing is updated or deleted. A reviewer changes a vote
by adding a newer row; consensus reads each reviewer's latest row per sample. A lead's adjudication
is a decision row of kind ``adjudication``: it settles the sample but is not a rating, so consensus
and Fleiss' kappa read votes only.

The same database holds the accounts, login sessions and the audit trail (``accounts.py`` works on
them); every decision writes its audit row in the decision's own transaction, so neither exists
without the other.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmstar.errors import MmstarError, require
from mmstar.taxonomy import capability_of_axis

DECISIONS = ("keep", "drop")
KINDS = ("vote", "adjudication")
REASONS = ("answerable without the image", "leaked / memorisable", "ambiguous", "wrong answer", "other")
_REVIEWER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,39}$")


def check_reviewer(name: str) -> str:
    if not _REVIEWER.match(name or ""):
        raise MmstarError(f"invalid reviewer name {name!r}: 1-40 letters, digits, '_', '.', '@' or '-'")
    return name


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def stamp(when: datetime | None = None) -> str:
    """Fixed-width UTC ISO time: these strings sort as the times they name."""
    return (when or utcnow()).astimezone(timezone.utc).isoformat(timespec="microseconds")


def engine_url(db: str) -> str:
    """A path becomes a SQLite URL; URLs (postgresql://..., sqlite:///...) pass through."""
    return db if "://" in db else f"sqlite:///{Path(db).resolve()}"


@dataclass(frozen=True)
class Vote:
    reviewer: str
    decision: str
    reason: str | None
    category: str | None
    l2_category: str | None
    corrections: dict[str, Any]
    created: str
    row_id: int
    account_id: int | None = None


class Store:
    def __init__(self, db: str) -> None:
        sa = require("sqlalchemy", "review")
        self.sa = sa
        url = engine_url(db)
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}} if self.is_sqlite else {}
        self.engine = sa.create_engine(url, future=True, **kwargs)
        if self.is_sqlite:
            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(conn, _record) -> None:
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.execute("PRAGMA synchronous=FULL")
                cur.close()
        md = sa.MetaData()
        self.decisions = sa.Table(
            "decisions", md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("sample_index", sa.Integer, nullable=False, index=True),
            sa.Column("reviewer", sa.String(40), nullable=False, index=True),
            sa.Column("created", sa.String(40), nullable=False),
            sa.Column("decision", sa.String(8), nullable=False),
            sa.Column("reason", sa.String(64)),
            sa.Column("category", sa.String(64)),
            sa.Column("l2_category", sa.String(64)),
            sa.Column("corrections", sa.Text, nullable=False, default="{}"),
            sa.Column("client_token", sa.String(64), unique=True),
            sa.Column("account_id", sa.Integer),  # None: local single-user mode, or a store from before accounts
            sa.Column("kind", sa.String(16), nullable=False, default="vote", server_default="vote"),
        )
        self.settings = sa.Table("settings", md, sa.Column("key", sa.String(64), primary_key=True),
                                 sa.Column("value", sa.Text, nullable=False))
        self.accounts = sa.Table(
            "accounts", md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(40), nullable=False, unique=True),
            sa.Column("role", sa.String(12), nullable=False),
            # only a salted scrypt hash, with the parameters it was made with beside it
            sa.Column("password_hash", sa.String(128), nullable=False),
            sa.Column("password_salt", sa.String(64), nullable=False),
            sa.Column("password_params", sa.String(128), nullable=False),
            sa.Column("must_change", sa.Boolean, nullable=False, default=True),
            sa.Column("disabled", sa.Boolean, nullable=False, default=False),
            sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
            sa.Column("locked_until", sa.String(40)),
            sa.Column("created", sa.String(40), nullable=False),
            sa.Column("last_login", sa.String(40)),
            # the OIDC provider's issuer and subject ("iss sub") bound at the account's first OIDC login
            sa.Column("oidc_subject", sa.String(512)),
        )
        self.sessions = sa.Table(
            "sessions", md,
            # the SHA-256 of the token: a copy of the database does not hand out live sessions
            sa.Column("token_hash", sa.String(64), primary_key=True),
            sa.Column("account_id", sa.Integer, nullable=False, index=True),
            sa.Column("created", sa.String(40), nullable=False),
            sa.Column("expires", sa.String(40), nullable=False),
            sa.Column("ended", sa.String(40)),
        )
        self.audit_log = sa.Table(
            "audit", md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("created", sa.String(40), nullable=False),
            sa.Column("event", sa.String(32), nullable=False, index=True),
            sa.Column("account", sa.String(40)),  # the account the event is about (as typed, for failed logins)
            sa.Column("account_id", sa.Integer),
            sa.Column("actor", sa.String(80)),  # who did it: the account, "cli:<os user>", "local:<name>"
            sa.Column("detail", sa.Text, nullable=False, default="{}"),
        )
        try:
            md.create_all(self.engine)
            self._migrate()
        except sa.exc.SQLAlchemyError as exc:
            raise MmstarError(f"cannot open the review database {db}: {str(exc).splitlines()[0]}") from None

    # columns added after a table's first release: (table, column, DDL); old stores gain them in place
    _ADDED = (("decisions", "account_id", "ALTER TABLE decisions ADD COLUMN account_id INTEGER"),
              ("decisions", "kind", "ALTER TABLE decisions ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'vote'"),
              ("accounts", "oidc_subject", "ALTER TABLE accounts ADD COLUMN oidc_subject VARCHAR(512)"))

    def _migrate(self) -> None:
        """Stores written before accounts existed lack two decision columns (old rows become votes without
        an account id, which is what they were); stores before OIDC binding lack ``oidc_subject`` (unbound)."""
        for table, name, ddl in self._ADDED:
            if name not in {c["name"] for c in self.sa.inspect(self.engine).get_columns(table)}:
                try:
                    with self.engine.begin() as conn:
                        conn.exec_driver_sql(ddl)
                except self.sa.exc.SQLAlchemyError:
                    # another process may have added it a moment ago; anything else fails the check below
                    pass
        for table, name, _ in self._ADDED:
            if name not in {c["name"] for c in self.sa.inspect(self.engine).get_columns(table)}:
                raise MmstarError(f"cannot add the column {name} to the {table} table")

    # ---------------------------------------------------------------- writes

    def add_decision(self, sample_index: int, reviewer: str, decision: str, *, reason: str | None = None,
                     category: str | None = None, l2_category: str | None = None,
                     corrections: dict[str, Any] | None = None, client_token: str | None = None,
                     account_id: int | None = None, kind: str = "vote", actor: str | None = None) -> int | None:
        """Append one decision and its audit row; returns the decision's row id, or None when
        ``client_token`` was already stored (a double-submitted form is recorded once).

        The caller names the reviewer; the app passes the logged-in account, never anything the page
        sent. An adjudication must come from an enabled lead account, checked here as well."""
        check_reviewer(reviewer)
        if decision not in DECISIONS:
            raise MmstarError(f"decision must be keep or drop, not {decision!r}")
        if kind not in KINDS:
            raise MmstarError(f"decision kind must be vote or adjudication, not {kind!r}")
        if decision == "keep":
            cap = capability_of_axis(l2_category or "")
            if cap is None or cap.name != category:
                raise MmstarError(f"keep needs a capability and one of its axes; got {category!r} / {l2_category!r}")
        elif reason not in REASONS:
            raise MmstarError(f"drop needs a reason, one of: {', '.join(REASONS)}")
        row = {"sample_index": int(sample_index), "reviewer": reviewer, "decision": decision,
               "created": stamp(), "reason": reason, "category": category, "l2_category": l2_category,
               "corrections": json.dumps(corrections or {}, ensure_ascii=False), "client_token": client_token,
               "account_id": account_id, "kind": kind}
        try:
            with self.engine.begin() as conn:
                if kind == "adjudication":
                    acc = self.accounts.c
                    lead = conn.execute(self.sa.select(acc.name).where(
                        acc.id == account_id, acc.role == "lead", acc.disabled.is_(False))).first()
                    if lead is None or lead[0] != reviewer:
                        raise MmstarError(f"only an enabled lead account can adjudicate; {reviewer!r} is not one")
                row_id = int(conn.execute(self.decisions.insert().values(**row)).inserted_primary_key[0])
                self.audit("adjudication" if kind == "adjudication" else "decision", account=reviewer,
                           account_id=account_id, actor=actor or reviewer, conn=conn,
                           detail={"decision_id": row_id, "sample_index": int(sample_index), "decision": decision,
                                   "reason": reason, "category": category, "l2_category": l2_category,
                                   "corrected": sorted(corrections or {})})
                return row_id
        except self.sa.exc.IntegrityError:
            if client_token is None:
                raise
            return None

    def audit(self, event: str, *, account: str | None = None, account_id: int | None = None,
              actor: str | None = None, detail: dict[str, Any] | None = None, conn: Any = None) -> None:
        """One audit row; inside ``conn``'s transaction when given, else in its own."""
        row = {"created": stamp(), "event": event, "account": (account or None) and account[:40],
               "account_id": account_id, "actor": (actor or None) and actor[:80],
               "detail": json.dumps(detail or {}, ensure_ascii=False, default=str)}
        if conn is not None:
            conn.execute(self.audit_log.insert().values(**row))
            return
        with self.engine.begin() as own:
            own.execute(self.audit_log.insert().values(**row))

    def audit_rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The audit trail, oldest first (the newest ``limit`` rows when given)."""
        q = self.sa.select(self.audit_log).order_by(self.audit_log.c.id.desc())
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(q).mappings().all()]
        for r in rows:
            r["detail"] = json.loads(r["detail"] or "{}")
        return rows[::-1]

    def set_setting(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            existing = conn.execute(self.sa.select(self.settings.c.value).where(self.settings.c.key == key)).first()
            if existing is None:
                conn.execute(self.settings.insert().values(key=key, value=value))
            elif existing[0] != value:
                conn.execute(self.settings.update().where(self.settings.c.key == key).values(value=value))

    def setting(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(self.sa.select(self.settings.c.value).where(self.settings.c.key == key)).first()
        return row[0] if row else None

    # ---------------------------------------------------------------- reads

    def all_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(self.sa.select(self.decisions).order_by(self.decisions.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def latest_votes(self) -> dict[int, dict[str, Vote]]:
        """sample index -> reviewer -> that reviewer's latest vote (adjudications are not votes)."""
        out: dict[int, dict[str, Vote]] = defaultdict(dict)
        for r in self.all_rows():
            if r.get("kind", "vote") == "vote":
                out[r["sample_index"]][r["reviewer"]] = _vote(r)
        return out

    def adjudications(self) -> dict[int, Vote]:
        """sample index -> the latest adjudication by a lead."""
        return {r["sample_index"]: _vote(r) for r in self.all_rows() if r.get("kind") == "adjudication"}


def _vote(r: dict[str, Any]) -> Vote:
    return Vote(r["reviewer"], r["decision"], r["reason"], r["category"], r["l2_category"],
                json.loads(r["corrections"] or "{}"), r["created"], r["id"], r.get("account_id"))


def status(votes: dict[str, Vote], quorum: int | None = None) -> str:
    """unreviewed | needs votes | accepted | rejected | disputed.

    Default quorum: every reviewer who voted, and at least 2. Accepted: all of them keep with the same
    capability and axis. Rejected: all of them drop. Anything else is disputed.
    """
    need = max(2, quorum or 0)
    if not votes:
        return "unreviewed"
    if len(votes) < need:
        return "needs votes"
    decisions = {v.decision for v in votes.values()}
    if decisions == {"keep"} and len({(v.category, v.l2_category) for v in votes.values()}) == 1:
        return "accepted"
    if decisions == {"drop"}:
        return "rejected"
    return "disputed"


def final_status(votes: dict[str, Vote], adjudication: Vote | None, quorum: int | None = None) -> str:
    """A lead's adjudication settles a sample (accepted on keep, rejected on drop); otherwise the votes do."""
    if adjudication is not None:
        return "accepted" if adjudication.decision == "keep" else "rejected"
    return status(votes, quorum)


def fleiss_kappa(ratings: list[list[str]]) -> float | None:
    """Fleiss' kappa over items rated by 2+ raters (items may have different rater counts)."""
    items = [r for r in ratings if len(r) >= 2]
    if not items:
        return None
    cats = sorted({c for r in items for c in r})
    total = sum(len(r) for r in items)
    p_j = {c: sum(r.count(c) for r in items) / total for c in cats}
    p_bar = sum((sum(n * n for n in Counter(r).values()) - len(r)) / (len(r) * (len(r) - 1)) for r in items)
    p_bar /= len(items)
    p_e = sum(p * p for p in p_j.values())
    if p_e >= 1.0:
        return 1.0 if p_bar >= 1.0 else None
    return (p_bar - p_e) / (1 - p_e)


def agreement(latest: dict[int, dict[str, Vote]]) -> dict[str, float | None]:
    keep_drop = [[v.decision for v in votes.values()] for votes in latest.values()]
    caps = [[v.category or "" for v in votes.values() if v.decision == "keep"] for votes in latest.values()]
    return {"kappa_keep_drop": fleiss_kappa(keep_drop), "kappa_capability": fleiss_kappa(caps),
            "samples_with_2plus_votes": float(sum(len(v) >= 2 for v in latest.values()))}
