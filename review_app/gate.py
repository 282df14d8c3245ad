"""The review app's login gate: until a live session exists, the page shows a login form and nothing else.

Who is logged in is decided here, on the server, from a random session token kept in Streamlit's
server-side session state and checked against the store's session table on every rerun. Nothing the
page sends (widget values, query parameters) names the reviewer.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from .accounts import Account, Accounts, LoginError, is_loopback

_MD_SPECIAL = frozenset("\\`*_{}[]()<>#+-.!|~:/=&$\"'%@^;?,")


def plain(text: object) -> str:
    """``text`` for a Streamlit notice (st.error, st.info ...), which renders markdown: every ASCII punctuation
    mark is backslash-escaped (CommonMark shows it as itself), so a link, an image, emphasis or a bare URL
    inside a message that quotes data stays characters on the screen. Data itself goes into st.text."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text))


SESSION_KEY = "_mmstar_review_session"  # a session_state key no widget uses, so the page cannot write it


@dataclass(frozen=True)
class Reviewer:
    """Who is reviewing in this browser session: an account, or the single local reviewer."""

    name: str
    account_id: int | None
    role: str  # "reviewer" (blind), "lead" (sees all, adjudicates) or "local" (single user, sees all)
    token: str | None = None

    @property
    def sees_all(self) -> bool:
        return self.role in ("lead", "local")


def client_ip() -> str | None:
    """The peer's address for the audit trail; None on loopback (Streamlit's own convention), and behind a
    reverse proxy the proxy's address."""
    try:
        ip = st.context.ip_address
    except AttributeError:  # Streamlit before 1.45
        return None
    return ip if isinstance(ip, str) else None  # AppTest hands out a mock


def require_reviewer(accounts: Accounts, local_name: str, auth: str) -> Reviewer:
    """The logged-in reviewer, or render the login page and stop the script."""
    if not accounts.has_accounts():
        return _local(local_name)
    token = st.session_state.get(SESSION_KEY)
    account = accounts.session_account(token)
    if account is None or token is None:
        notice = None
        if token:
            st.session_state.clear()  # nothing of the last reviewer's page (position, notices) carries over
            notice = "your session has ended (expired, logged out or the account changed); log in again"
        st.title("mmstar review")
        if auth == "oidc":
            _oidc_login(accounts)
        else:
            _password_login(accounts, notice)
        st.stop()
    if account.must_change and auth != "oidc":  # with OIDC the store's password is never used
        _choose_password(accounts, account, token)
        st.stop()
    _sidebar_identity(accounts, account, token, auth)
    return Reviewer(account.name, account.id, account.role, token)


def _local(name: str) -> Reviewer:
    """A store without accounts: one reviewer, named on the command line, on loopback only."""
    ip = client_ip()
    if ip is not None and not is_loopback(ip):
        # the CLI refuses such a binding; this catches a server started some other way
        st.error("this store has no accounts, so the app only serves this machine; add accounts with: "
                 "mmstar review users add NAME --db DB")
        st.stop()
    if not name:
        st.error("this store has no accounts: start the app with --reviewer NAME (single-user, loopback), or "
                 "add accounts with: mmstar review users add NAME --db DB")
        st.stop()
    return Reviewer(name, None, "local")


def _password_login(accounts: Accounts, notice: str | None) -> None:
    if notice:
        st.info(notice)
    with st.form("login", clear_on_submit=True):
        st.subheader("Log in")
        name = st.text_input("User name", key="login-user", autocomplete="username")
        password = st.text_input("Password", type="password", key="login-password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        try:
            st.session_state[SESSION_KEY] = accounts.login(name or "", password or "", ip=client_ip())
        except LoginError as exc:
            st.error(plain(exc))
            return
        st.rerun()


def _oidc_login(accounts: Accounts) -> None:
    """Streamlit's OIDC login (``st.login``, configured in .streamlit/secrets.toml [auth]): the identity
    provider vouches for a verified e-mail, which must be an enabled account in this store, bound to the
    provider's subject at its first login."""
    user = st.user
    if not user.is_logged_in:
        st.button("Log in with your organisation", on_click=st.login, type="primary", key="oidc-login")
        return
    email = str(user.get("email") or "")
    issuer, sub = str(user.get("iss") or ""), str(user.get("sub") or "")
    subject = f"{issuer} {sub}" if sub else ""  # a sub is unique per issuer only
    try:
        st.session_state[SESSION_KEY] = accounts.identity_login(email, subject=subject,
                                                                email_verified=user.get("email_verified"),
                                                                ip=client_ip())
    except LoginError as exc:
        st.error(plain(exc))
        st.button("Log out", on_click=st.logout, key="oidc-logout")
        return
    st.rerun()


def _choose_password(accounts: Accounts, account: Account, token: str) -> None:
    st.title("mmstar review")
    st.info(f"signed in as {plain(account.name)} with a one-time password: choose your own password to go on")
    with st.form("choose-password", clear_on_submit=True):
        new = st.text_input("New password", type="password", key="pw-new", autocomplete="new-password")
        repeat = st.text_input("Repeat it", type="password", key="pw-repeat", autocomplete="new-password")
        submitted = st.form_submit_button("Set password", type="primary")
    if submitted:
        try:
            accounts.change_password(token, new or "", repeat or "")
        except LoginError as exc:
            st.error(plain(exc))
            return
        st.rerun()


def _sidebar_identity(accounts: Accounts, account: Account, token: str, auth: str) -> None:
    st.sidebar.text(f"signed in as {account.name} ({account.role})")
    if st.sidebar.button("Log out", key="logout"):
        accounts.logout(token)
        st.session_state.clear()
        if auth == "oidc":
            st.logout()  # else the provider's cookie logs the browser straight back in
        st.rerun()
