"""The review decision store (SQLAlchemy; SQLite in WAL mode by default, PostgreSQL for teams).

Append-only: every decision is a new row; nothing is updated or deleted. A reviewer changes a vote
by adding a newer row; consensus reads each reviewer's latest row per sample.
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
REASONS = ("answerable without the image", "leaked / memorisable", "ambiguous", "wrong answer", "other")
_REVIEWER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,39}$")


def check_reviewer(name: str) -> str:
    if not _REVIEWER.match(name or ""):
        raise MmstarError(f"invalid reviewer name {name!r}: 1-40 letters, digits, '_', '.', '@' or '-'")
    return name


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
        )
        self.settings = sa.Table("settings", md, sa.Column("key", sa.String(64), primary_key=True),
                                 sa.Column("value", sa.Text, nullable=False))
        try:
            md.create_all(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise MmstarError(f"cannot open the review database {db}: {str(exc).splitlines()[0]}") from None

    # ---------------------------------------------------------------- writes

    def add_decision(self, sample_index: int, reviewer: str, decision: str, *, reason: str | None = None,
                     category: str | None = None, l2_category: str | None = None,
                     corrections: dict[str, Any] | None = None, client_token: str | None = None) -> int | None:
        """Append one decision; returns its row id, or None when ``client_token`` was already stored
        (a double-submitted form is recorded once)."""
        check_reviewer(reviewer)
        if decision not in DECISIONS:
            raise MmstarError(f"decision must be keep or drop, not {decision!r}")
        if decision == "keep":
            cap = capability_of_axis(l2_category or "")
            if cap is None or cap.name != category:
                raise MmstarError(f"keep needs a capability and one of its axes; got {category!r} / {l2_category!r}")
        elif reason not in REASONS:
            raise MmstarError(f"drop needs a reason, one of: {', '.join(REASONS)}")
        row = {"sample_index": int(sample_index), "reviewer": reviewer, "decision": decision,
               "created": datetime.now(timezone.utc).isoformat(timespec="microseconds"), "reason": reason,
               "category": category, "l2_category": l2_category,
               "corrections": json.dumps(corrections or {}, ensure_ascii=False), "client_token": client_token}
        try:
            with self.engine.begin() as conn:
                return int(conn.execute(self.decisions.insert().values(**row)).inserted_primary_key[0])
        except self.sa.exc.IntegrityError:
            if client_token is None:
                raise
            return None

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
        """sample index -> reviewer -> that reviewer's latest vote."""
        out: dict[int, dict[str, Vote]] = defaultdict(dict)
        for r in self.all_rows():
            out[r["sample_index"]][r["reviewer"]] = Vote(
                r["reviewer"], r["decision"], r["reason"], r["category"], r["l2_category"],
                json.loads(r["corrections"] or "{}"), r["created"], r["id"])
        return out


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
