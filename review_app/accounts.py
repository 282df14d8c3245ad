"""Reviewer accounts, login sessions and lockout, kept in the decision store (SQLite or PostgreSQL).

* Passwords: only a salted ``hashlib.scrypt`` hash is stored, with its parameters beside it, so the
  cost can be raised later without breaking existing accounts (a login rehashes with the new ones).
  Keys are compared with ``hmac.compare_digest``; an unknown name costs the same scrypt as a known one.
* ``add`` and ``reset`` make a one-time password: shown once, it only lets its owner choose their own.
* Sessions live server-side with an absolute expiry; the browser's Streamlit session holds a random
  token whose SHA-256 is the row key. Disabling an account or resetting it ends its sessions.
* Consecutive failed logins lock the account for a while. Each attempt is reserved in the store (one
  atomic UPDATE) before its password is checked, so concurrent guesses get no more checks than the limit.
  An unknown name, a locked account and a wrong password get the same line after the same work.
* Every login, failure, lockout and account change goes to the audit trail; a failed login with an
  unknown name is recorded as ``UNKNOWN_NAME``, never as the typed text (it may be a password).
* OIDC (``identity_login``): the provider must have verified the e-mail, and the account is bound to the
  provider's subject at its first login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mmstar.errors import MmstarError
from mmstar.launch import is_loopback  # noqa: F401  re-exported: the gate and the CLI use it from here

from .store import Store, check_reviewer, stamp, utcnow

ROLES = ("reviewer", "lead")
# 2**14 x 8 x 1 (16 MiB, ~50 ms here): OWASP's scrypt floor is 2**17 x 8 x 1 for hashes that may leak; the
# parameters are stored per account, so raising SCRYPT upgrades each account at its next login.
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
MIN_PASSWORD = 10
# the one line for every refused password login: unknown name, wrong password and locked account alike
GENERIC_FAILURE = "wrong user name or password, or the account is locked for a while after repeated failures"
UNKNOWN_NAME = "(unknown name)"  # the audit trail's account for a login with a name no account has


class LoginError(MmstarError):
    """A refused login or password change; the message is safe to show on the login page."""


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    role: str
    disabled: bool
    must_change: bool
    failed_logins: int
    locked_until: str | None
    created: str
    last_login: str | None

    @property
    def is_lead(self) -> bool:
        return self.role == "lead"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _params_text(params: dict[str, int]) -> str:
    return "scrypt:" + ",".join(f"{k}={params[k]}" for k in ("n", "r", "p", "dklen"))


def _parse_params(text: str) -> dict[str, int]:
    kind, _, rest = text.partition(":")
    if kind != "scrypt":
        raise MmstarError(f"unknown password hash {kind!r}")
    return {k: int(v) for k, v in (item.split("=") for item in rest.split(","))}


def hash_password(password: str, params: dict[str, int] | None = None) -> tuple[str, str, str]:
    """(hash, salt, params), base64 and text: what the accounts table keeps."""
    if not password:
        raise LoginError("empty password")
    params = params or SCRYPT
    salt = secrets.token_bytes(16)
    key = _scrypt(password, salt, params)
    return _b64(key), _b64(salt), _params_text(params)


def _scrypt(password: str, salt: bytes, params: dict[str, int]) -> bytes:
    mem = 128 * params["r"] * (params["n"] + params["p"] + 2) + (1 << 20)
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=params["n"], r=params["r"], p=params["p"],
                          dklen=params["dklen"], maxmem=mem)


def verify_password(password: str, hashed: str, salt: str, params: str) -> bool:
    key = _scrypt(password, base64.b64decode(salt), _parse_params(params))
    return hmac.compare_digest(key, base64.b64decode(hashed))


def new_password() -> str:
    """A one-time password: 16 URL-safe characters (96 random bits)."""
    return secrets.token_urlsafe(12)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# an unknown name is checked against this, so a login's timing does not tell which names exist
_DUMMY = hash_password(secrets.token_urlsafe(16))


class Accounts:
    def __init__(self, store: Store, *, max_failures: int = 5, lockout: timedelta = timedelta(minutes=15),
                 session_ttl: timedelta = timedelta(hours=8)) -> None:
        self.store, self.sa, self.t = store, store.sa, store.accounts
        self.max_failures, self.lockout, self.session_ttl = max_failures, lockout, session_ttl

    # ---------------------------------------------------------------- reading

    def _row(self, conn: Any, name: str) -> Any:
        return conn.execute(self.sa.select(self.t).where(self.t.c.name == name)).mappings().first()

    @staticmethod
    def _account(row: Any) -> Account:
        return Account(row["id"], row["name"], row["role"], bool(row["disabled"]), bool(row["must_change"]),
                       int(row["failed_logins"] or 0), row["locked_until"], row["created"], row["last_login"])

    def get(self, name: str) -> Account | None:
        with self.store.engine.connect() as conn:
            row = self._row(conn, name)
        return self._account(row) if row else None

    def list(self) -> list[Account]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(self.sa.select(self.t).order_by(self.t.c.name)).mappings().all()
        return [self._account(r) for r in rows]

    def has_accounts(self) -> bool:
        """Once a store has accounts (even only disabled ones) the app logs people in, and may listen beyond
        loopback; it never falls back to the single-user mode, where the command line names the reviewer."""
        with self.store.engine.connect() as conn:
            return conn.execute(self.sa.select(self.t.c.id).limit(1)).first() is not None

    def _need(self, conn: Any, name: str) -> Any:
        row = self._row(conn, name)
        if row is None:
            raise MmstarError(f"unknown user {name!r} (see: mmstar review users list --db DB)")
        return row

    # ---------------------------------------------------------------- account changes (the CLI)

    def add(self, name: str, role: str = "reviewer", *, actor: str) -> str:
        """Create an account; returns its one-time password."""
        check_reviewer(name)
        if role not in ROLES:
            raise MmstarError(f"role must be reviewer or lead, not {role!r}")
        password = new_password()
        hashed, salt, params = hash_password(password)
        row = {"name": name, "role": role, "password_hash": hashed, "password_salt": salt, "password_params": params,
               "must_change": True, "disabled": False, "failed_logins": 0, "created": stamp()}
        try:
            with self.store.engine.begin() as conn:
                if self._row(conn, name) is not None:
                    raise MmstarError(f"user {name!r} already exists (a new password: mmstar review users reset "
                                      f"{name} --db DB)")
                account_id = int(conn.execute(self.t.insert().values(**row)).inserted_primary_key[0])
                self.store.audit("user_add", account=name, account_id=account_id, actor=actor, conn=conn,
                                 detail={"role": role})
        except self.sa.exc.IntegrityError:  # two adds of one name racing: the unique index decides
            raise MmstarError(f"user {name!r} already exists") from None
        return password

    def disable(self, name: str, *, actor: str) -> None:
        with self.store.engine.begin() as conn:
            row = self._need(conn, name)
            if row["disabled"]:
                raise MmstarError(f"user {name!r} is already disabled")
            conn.execute(self.t.update().where(self.t.c.id == row["id"]).values(disabled=True))
            self._end_sessions(conn, row["id"])
            self.store.audit("user_disable", account=name, account_id=row["id"], actor=actor, conn=conn)

    def reset(self, name: str, *, actor: str, role: str | None = None, enable: bool = False) -> str:
        """A new one-time password; clears a lockout and ends the account's sessions. A disabled account
        stays refused unless ``enable`` says to re-enable it, so a reset cannot undo a disable by accident."""
        if role is not None and role not in ROLES:
            raise MmstarError(f"role must be reviewer or lead, not {role!r}")
        password = new_password()
        hashed, salt, params = hash_password(password)
        with self.store.engine.begin() as conn:
            row = self._need(conn, name)
            if row["disabled"] and not enable:
                raise MmstarError(f"user {name!r} is disabled; reset --enable re-enables it with a new password")
            values: dict[str, Any] = {"password_hash": hashed, "password_salt": salt, "password_params": params,
                                      "must_change": True, "failed_logins": 0, "locked_until": None,
                                      "disabled": False, "oidc_subject": None}
            if role:
                values["role"] = role
            conn.execute(self.t.update().where(self.t.c.id == row["id"]).values(**values))
            self._end_sessions(conn, row["id"])
            self.store.audit("user_reset", account=name, account_id=row["id"], actor=actor, conn=conn,
                             detail={"role": role or row["role"], "enabled": bool(row["disabled"])})
        return password

    # ---------------------------------------------------------------- login and sessions (the app)

    def login(self, name: str, password: str, *, ip: str | None = None) -> str:
        """Check a password; returns a new session token. Raises LoginError with a line for the page.

        An unknown name, a wrong password and a locked account get the same line after the same work (one
        scrypt), so neither the answer nor its time tells which names exist. The attempt is reserved in the
        store (one atomic update) before the password is checked: concurrent guesses cannot get more than
        ``max_failures`` checks between two lockouts."""
        name = (name or "").strip()
        if not name:
            raise LoginError("empty user name")
        if not password:
            raise LoginError("empty password")
        where = {"ip": ip} if ip else {}
        with self.store.engine.connect() as conn:
            row = self._row(conn, name)
        if row is None:
            verify_password(password, *_DUMMY)
            # never the typed text: a password typed into the name field must not land in the audit trail
            self.store.audit("login_failed", account=UNKNOWN_NAME, actor=UNKNOWN_NAME,
                             detail={**where, "why": "unknown user"})
            raise LoginError(GENERIC_FAILURE)
        now = utcnow()
        reserved = self._reserve(row, now)
        if reserved is None:
            verify_password(password, *_DUMMY)  # a locked account costs what any other refusal costs
            self.store.audit("login_failed", account=name, account_id=row["id"], actor=name,
                             detail={**where, "why": "locked"})
            raise LoginError(GENERIC_FAILURE)
        if not verify_password(password, row["password_hash"], row["password_salt"], row["password_params"]):
            self._failed(row, reserved, now, where)
            raise LoginError(GENERIC_FAILURE)
        if row["disabled"]:
            self.store.audit("login_failed", account=name, account_id=row["id"], actor=name,
                             detail={**where, "why": "disabled"})
            raise LoginError("this account is disabled; ask a lead")
        token = secrets.token_urlsafe(32)
        values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login": stamp(now)}
        if row["password_params"] != _params_text(SCRYPT):  # stored with older parameters: upgrade now
            values.update(zip(("password_hash", "password_salt", "password_params"), hash_password(password),
                              strict=True))
        with self.store.engine.begin() as conn:
            conn.execute(self.t.update().where(self.t.c.id == row["id"]).values(**values))
            self._open_session(conn, row["id"], token, now)
            self.store.audit("login", account=name, account_id=row["id"], actor=name, conn=conn,
                             detail={**where, "method": "password"})
        return token

    def _reserve(self, row: Any, now: datetime) -> int | None:
        """Count this attempt as a failure before its password is checked (a success clears the count), in
        one UPDATE that only matches an unlocked account; the attempt that reaches ``max_failures`` also sets
        the lock. Returns the attempt's number, or None when the account is locked. SQLite serialises the
        writers, and PostgreSQL re-checks the WHERE on the row it locked, so each reservation sees the one
        before it."""
        c, sa = self.t.c, self.sa
        now_s, until_s = stamp(now), stamp(now + self.lockout)
        expired = sa.and_(c.locked_until.is_not(None), c.locked_until <= now_s)  # a lock that ran out: fresh count
        count = sa.case((expired, 1), else_=c.failed_logins + 1)
        with self.store.engine.begin() as conn:
            done = conn.execute(self.t.update().where(
                c.id == row["id"], sa.or_(c.locked_until.is_(None), c.locked_until <= now_s)).values(
                failed_logins=count, locked_until=sa.case((count >= self.max_failures, until_s), else_=None)))
            if done.rowcount != 1:
                return None
            return int(conn.execute(sa.select(c.failed_logins).where(c.id == row["id"])).scalar_one())

    def _failed(self, row: Any, attempt: int, now: datetime, where: dict[str, str]) -> None:
        """Audit a wrong password (already counted by ``_reserve``), and the lockout it completed."""
        self.store.audit("login_failed", account=row["name"], account_id=row["id"], actor=row["name"],
                         detail={**where, "why": "wrong password", "failures": attempt})
        if attempt >= self.max_failures:
            self.store.audit("lockout", account=row["name"], account_id=row["id"], actor=row["name"],
                             detail={**where, "failures": attempt, "until": stamp(now + self.lockout)})

    def identity_login(self, identity: str, *, subject: str, email_verified: object, ip: str | None = None) -> str:
        """An identity provider (Streamlit's OIDC login) vouched for ``identity`` (its e-mail): open a session
        for the account of that name. The provider must say the e-mail is verified, and the account is bound
        to the provider's ``subject`` (its issuer and ``sub``) at its first login: a later login with the same
        e-mail but another subject is refused (some providers let users set an e-mail they do not own).
        ``users reset`` clears the binding. Roles and disabling still come from this store."""
        where = {"ip": ip} if ip else {}
        if email_verified is not True and str(email_verified).lower() != "true":
            self.store.audit("login_failed", account=identity[:40], actor=identity[:80],
                             detail={**where, "why": "e-mail not verified", "method": "oidc"})
            raise LoginError(f"the identity provider has not verified the e-mail {identity}; log in with a "
                             "verified address")
        if not subject:
            raise LoginError("the identity provider sent no subject (sub) claim; it cannot be used here")
        with self.store.engine.connect() as conn:
            row = self._row(conn, identity) or self._row(conn, identity.lower())
        if row is None or row["disabled"]:
            why = "no account" if row is None else "disabled"
            self.store.audit("login_failed", account=identity, actor=identity, detail={**where, "why": why,
                                                                                        "method": "oidc"})
            raise LoginError(f"{identity} has no enabled account here; a lead adds it with: mmstar review users "
                             f"add {identity} --db DB")
        token, now = secrets.token_urlsafe(32), utcnow()
        c = self.t.c
        with self.store.engine.begin() as conn:
            # bind at the first login, in the same statement that checks it: two first logins cannot both bind
            bound = conn.execute(self.t.update().where(
                c.id == row["id"], self.sa.or_(c.oidc_subject.is_(None), c.oidc_subject == subject)).values(
                oidc_subject=subject, last_login=stamp(now))).rowcount == 1
            if not bound:
                self.store.audit("login_failed", account=row["name"], account_id=row["id"], actor=row["name"],
                                 conn=conn, detail={**where, "why": "another subject", "method": "oidc"})
            else:
                self._open_session(conn, row["id"], token, now)
                self.store.audit("login", account=row["name"], account_id=row["id"], actor=row["name"], conn=conn,
                                 detail={**where, "method": "oidc", "first": row["oidc_subject"] is None})
        if not bound:
            raise LoginError(f"{identity} is bound to another identity at the provider; a lead can clear that "
                             "with: mmstar review users reset NAME --db DB")
        return token

    def _open_session(self, conn: Any, account_id: int, token: str, now: datetime) -> None:
        conn.execute(self.store.sessions.insert().values(token_hash=token_hash(token), account_id=account_id,
                                                         created=stamp(now), expires=stamp(now + self.session_ttl)))

    def _end_sessions(self, conn: Any, account_id: int, keep: str | None = None) -> None:
        s = self.store.sessions
        q = s.update().where(s.c.account_id == account_id, s.c.ended.is_(None))
        if keep:
            q = q.where(s.c.token_hash != token_hash(keep))
        conn.execute(q.values(ended=stamp()))

    def session_account(self, token: str | None) -> Account | None:
        """The account of a live session: not ended, not expired, account not disabled."""
        if not token:
            return None
        s = self.store.sessions
        with self.store.engine.connect() as conn:
            sess = conn.execute(self.sa.select(s).where(s.c.token_hash == token_hash(token))).mappings().first()
            if sess is None or sess["ended"] or datetime.fromisoformat(sess["expires"]) <= utcnow():
                return None
            row = conn.execute(self.sa.select(self.t).where(self.t.c.id == sess["account_id"])).mappings().first()
        if row is None or row["disabled"]:
            return None
        return self._account(row)

    def logout(self, token: str | None) -> None:
        account = self.session_account(token)
        if account is None or token is None:
            return
        s = self.store.sessions
        with self.store.engine.begin() as conn:
            conn.execute(s.update().where(s.c.token_hash == token_hash(token)).values(ended=stamp()))
            self.store.audit("logout", account=account.name, account_id=account.id, actor=account.name, conn=conn)

    def change_password(self, token: str, new: str, repeat: str) -> None:
        """The owner of a live session chooses their password (required after a one-time password)."""
        account = self.session_account(token)
        if account is None:
            raise LoginError("your session has ended; log in again")
        if not new:
            raise LoginError("empty password")
        if len(new) < MIN_PASSWORD:
            raise LoginError(f"a password needs at least {MIN_PASSWORD} characters")
        if new != repeat:
            raise LoginError("the two passwords differ")
        with self.store.engine.connect() as conn:
            row = self._row(conn, account.name)
        if verify_password(new, row["password_hash"], row["password_salt"], row["password_params"]):
            raise LoginError("choose a new password, not the current one-time password" if account.must_change
                             else "choose a new password, not the current one")
        hashed, salt, params = hash_password(new)
        with self.store.engine.begin() as conn:
            conn.execute(self.t.update().where(self.t.c.id == account.id).values(
                password_hash=hashed, password_salt=salt, password_params=params, must_change=False))
            self._end_sessions(conn, account.id, keep=token)  # other sessions may hold a leaked password
            self.store.audit("password_change", account=account.name, account_id=account.id, actor=account.name,
                             conn=conn)
