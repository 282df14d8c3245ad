"""The viewer's access token: ``mmstar view --token-env NAME`` puts the viewer behind a token, held in the
environment variable NAME (never on the command line, where ``ps`` shows it). Every browser session must
type it before any data is read or shown; it is compared in constant time, and a wrong one costs a second.
Beyond loopback the CLI refuses to start without it (README, Security)."""

from __future__ import annotations

import hashlib
import hmac
import os
import time

from mmstar.errors import MmstarError

TOKEN_ENV_VAR = "MMSTAR_VIEW_TOKEN_ENV"  # noqa: S105  the NAME of the token's variable, not a token
MIN_TOKEN = 24  # characters; e.g. python -c "import secrets; print(secrets.token_urlsafe(24))" gives 32
GRANTED = "_mmstar_view_granted"  # a session_state key no widget uses, so the page cannot write it
WRONG_DELAY_S = 1.0


def token_from_env(name: str) -> str:
    """The token held in variable ``name``, or one clear error."""
    value = os.environ.get(name, "")
    if not value:
        raise MmstarError(f"--token-env {name}: the environment variable {name} is not set or empty")
    if len(value) < MIN_TOKEN:
        raise MmstarError(f"--token-env {name}: the token is {len(value)} characters; use at least {MIN_TOKEN} "
                          f"random ones (python -c \"import secrets; print(secrets.token_urlsafe(24))\")")
    return value


def token_matches(given: str, expected: str) -> bool:
    """Constant time whatever the two lengths: both sides are hashed to 32 bytes first."""
    return hmac.compare_digest(hashlib.sha256(given.encode("utf-8")).digest(),
                               hashlib.sha256(expected.encode("utf-8")).digest())


def require_token() -> None:
    """Show the token form and stop the script until this session has given the right token; a no-op when
    the viewer was started without ``--token-env``."""
    import streamlit as st

    name = os.environ.get(TOKEN_ENV_VAR, "")
    if not name or st.session_state.get(GRANTED):
        return
    try:
        expected = token_from_env(name)
    except MmstarError as exc:  # the CLI checked it; a server started some other way shows nothing
        st.error(str(exc))
        st.stop()
    st.title("mmstar view")
    with st.form("token", clear_on_submit=True):
        given = st.text_input("Access token", type="password", key="view-token", autocomplete="off")
        submitted = st.form_submit_button("Open", type="primary")
    if submitted:
        if token_matches(given or "", expected):
            st.session_state[GRANTED] = True
            st.rerun()
        time.sleep(WRONG_DELAY_S)  # a slower guess; the token's length makes guessing hopeless anyway
        st.error("wrong access token")
    st.stop()
