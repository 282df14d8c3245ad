"""Streamlit review app: sort candidates into the 6 capabilities x 18 axes, keep or drop them.

Started by ``mmstar review`` (configuration through MMSTAR_REVIEW_* environment variables).
Question and option text are shown with ``st.text`` / ``st.code``: as text, never as HTML or
markdown, so a ``<script>`` in the data is just characters on the screen.

Once the store has accounts, ``gate.require_reviewer`` shows a login form and nothing else until a
live session exists; decisions are then recorded as the session's account. A reviewer sees only their
own votes (blind review); a lead sees everyone's, the consensus figures, and adjudicates disputes.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import streamlit as st
from mmstar.review_app.accounts import Accounts
from mmstar.review_app.gate import Reviewer, plain, require_reviewer
from mmstar.review_app.store import REASONS, Store, Vote, agreement, final_status, status

from mmstar.errors import MmstarError
from mmstar.launch import SERVER_MEMO
from mmstar.loaders import load_benchmark
from mmstar.options import LETTERS
from mmstar.taxonomy import CAPABILITIES, capability

CANDIDATES = os.environ.get("MMSTAR_REVIEW_CANDIDATES", "")
DB = os.environ.get("MMSTAR_REVIEW_DB", "")
DEFAULT_REVIEWER = os.environ.get("MMSTAR_REVIEW_REVIEWER", "")
QUORUM = int(os.environ.get("MMSTAR_REVIEW_QUORUM", "0") or 0) or None
TARGET = int(os.environ.get("MMSTAR_REVIEW_TARGET", "250"))
SESSION_HOURS = float(os.environ.get("MMSTAR_REVIEW_SESSION_HOURS", "8") or 8)
AUTH = os.environ.get("MMSTAR_REVIEW_AUTH", "password")
STATUSES = ("all", "needs my vote", "unreviewed", "needs votes", "disputed", "accepted", "rejected", "adjudicated")
BLIND_STATUSES = ("all", "needs my vote", "voted by me")  # a reviewer's filters tell nothing of others' votes
SHOWN = "reviewer-shown"  # display-only field; its value is never used as the reviewer, only compared
NOTICE = "_mmstar_review_notice"


# loaded once per server process, in a memo Streamlit's "clear caches" message cannot empty (any client
# may send it, before login too): see mmstar.launch.ServerMemo
def _bench(path: str):
    return SERVER_MEMO.get(("review-candidates", path), lambda: load_benchmark(path))


def _store(db: str) -> Store:
    def make() -> Store:
        store = Store(db)
        store.set_setting("candidates", CANDIDATES)
        return store

    return SERVER_MEMO.get(("review-store", db, CANDIDATES), make)


def _sidebar(bench, latest, adjudicated, who: Reviewer):
    st.sidebar.header("Filters")
    sources = sorted({s.source for s in bench})
    chosen_sources = st.sidebar.multiselect("Source", sources, default=[], key="f_source")
    chosen_status = st.sidebar.selectbox("Status", STATUSES if who.sees_all else BLIND_STATUSES, key="f_status")
    caps = ["all"] + [c.name for c in CAPABILITIES]
    chosen_cap = st.sidebar.selectbox("Capability (as labelled)", caps, key="f_cap")

    def visible(s) -> bool:
        votes = latest.get(s.index, {})
        if chosen_sources and s.source not in chosen_sources:
            return False
        if chosen_cap != "all" and s.category != chosen_cap:
            return False
        if chosen_status == "needs my vote":
            return who.name not in votes
        if chosen_status == "voted by me":
            return who.name in votes
        if chosen_status == "adjudicated":
            return s.index in adjudicated
        return chosen_status == "all" or final_status(votes, adjudicated.get(s.index), QUORUM) == chosen_status

    return [s for s in bench if visible(s)]


def _own_votes(latest: dict[int, dict[str, Vote]], name: str) -> dict[int, dict[str, Vote]]:
    """Blind review: a reviewer's view of the store holds their own votes and nothing else."""
    return {i: {name: votes[name]} for i, votes in latest.items() if name in votes}


def _progress_panel(bench, latest, adjudicated) -> None:
    st.sidebar.header("Progress")
    accepted: dict[tuple[str, str], int] = {}
    for s in bench:
        votes, adj = latest.get(s.index, {}), adjudicated.get(s.index)
        if final_status(votes, adj, QUORUM) == "accepted":
            v = adj or next(iter(votes.values()))
            accepted[(v.category, v.l2_category)] = accepted.get((v.category, v.l2_category), 0) + 1
    for cap in CAPABILITIES:
        n = sum(accepted.get((cap.name, a.name), 0) for a in cap.axes)
        st.sidebar.progress(min(1.0, n / TARGET) if TARGET else 0.0, text=f"{cap.code} {n}/{TARGET}")
    axis_rows = [{"capability": cap.code, "axis": a.name, "accepted": accepted.get((cap.name, a.name), 0)}
                 for cap in CAPABILITIES for a in cap.axes]
    with st.sidebar.expander("Accepted per axis"):
        st.dataframe(axis_rows, hide_index=True)
    ag = agreement(latest)

    def k(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    st.sidebar.caption(f"Fleiss' kappa: keep/drop {k(ag['kappa_keep_drop'])}, capability {k(ag['kappa_capability'])}")


def _show_sample(s, votes, adj: Vote | None, who: Reviewer) -> None:
    left, right = st.columns([3, 2])
    with left:
        if s.image is not None:
            try:
                st.image(s.image.pil(), caption=f"index {s.index} (use the fullscreen button to zoom)",
                         width="stretch")
            except MmstarError as exc:
                st.error(plain(f"image cannot be shown: {exc}"))
        else:
            st.info("this sample has no image")
    with right:
        # st.text, not st.caption (which renders markdown): these fields come from third-party candidate files
        st.text(f"index {s.index} · source {s.source or '-'} · labelled {s.category or '-'} / "
                f"{s.l2_category or '-'}")
        st.subheader("Question")
        st.text(s.question)
        st.subheader("Options")
        st.text("\n".join(f"{k}. {v}" for k, v in s.options.items()))
        st.text(f"Ground truth: {s.answer}")
        evidence = s.meta.get("filter")
        if evidence:
            st.text(f"Text-only inspector hits ({evidence.get('n_hits')}/{evidence.get('n_inspectors')}): "
                    f"{', '.join(evidence.get('text_only_hits', [])) or 'none'}")
            st.text(f"Blind LVLM hits: {', '.join(evidence.get('blind_lvlm_hits', [])) or 'none'}")
        if "difficulty" in s.meta:
            st.text(f"Difficulty: {s.meta['difficulty']} ({s.meta.get('lvlm_hits')}/{s.meta.get('n_lvlms')} LVLMs)")
        if votes and who.sees_all:
            st.text("Votes: " + "; ".join(f"{r}: {_label(v)}" for r, v in votes.items()))
        elif who.name in votes:
            st.text(f"Your vote: {_label(votes[who.name])}")
        if adj is not None and who.sees_all:
            st.text(f"Adjudicated by {adj.reviewer}: {_label(adj)}")


def _label(v: Vote) -> str:
    return f"{v.decision} {v.l2_category}" if v.decision == "keep" else f"{v.decision} ({v.reason})"


def _decision_form(s, who: Reviewer, store: Store, can_adjudicate: bool) -> bool:
    key = f"s{s.index}"
    decision = st.radio("Decision", ("keep", "drop"), horizontal=True, key=f"{key}-decision")
    reason = None
    cap_name = s.category if s.category in [c.name for c in CAPABILITIES] else CAPABILITIES[0].name
    if decision == "drop":
        reason = st.selectbox("Reason", REASONS, key=f"{key}-reason")
    cap_names = [c.name for c in CAPABILITIES]
    category = st.selectbox("Capability", cap_names, index=cap_names.index(cap_name), key=f"{key}-cap")
    axes = list(capability(category).axis_names)  # the axis list follows the capability
    axis_index = axes.index(s.l2_category) if s.l2_category in axes else 0
    l2 = st.selectbox("Axis", axes, index=axis_index, key=f"{key}-axis")
    corrections: dict = {}
    with st.expander("Corrections (optional; the original is kept)"):
        q = st.text_area("Question", value=s.question, key=f"{key}-q")
        opts = {k: st.text_input(f"Option {k}", value=v, key=f"{key}-o{k}") for k, v in s.options.items()}
        ans = st.selectbox("Answer", list(s.options), index=list(s.options).index(s.answer)
                           if s.answer in s.options else 0, key=f"{key}-a")
        if q != s.question:
            corrections["question"] = q
        if opts != s.options:
            corrections["options"] = {k: v for k, v in opts.items() if k in LETTERS}
        if ans != s.answer:
            corrections["answer"] = ans
    # shown for orientation only: decisions go to the logged-in account whatever this field says
    st.text_input("Reviewer (from your login)", value=who.name, disabled=True, key=SHOWN)
    token_key = f"{key}-token"
    st.session_state.setdefault(token_key, uuid.uuid4().hex)
    cols = st.columns([1, 1, 3])
    vote = cols[0].button("Submit decision", type="primary", key=f"{key}-submit")
    adjudicate = can_adjudicate and cols[1].button("Adjudicate (final)", key=f"{key}-adjudicate",
                                                   help="a lead's decision that settles this disputed sample")
    if not (vote or adjudicate):
        return False
    _note_tampering(store, who)
    try:
        store.add_decision(s.index, who.name, decision, reason=reason, category=category, l2_category=l2,
                           corrections=corrections, client_token=st.session_state[token_key],
                           account_id=who.account_id, kind="adjudication" if adjudicate else "vote",
                           actor=who.name if who.account_id is not None else f"local:{who.name}")
    except MmstarError as exc:
        st.error(plain(exc))
        return False
    st.session_state[token_key] = uuid.uuid4().hex
    return True


def _note_tampering(store: Store, who: Reviewer) -> None:
    """The reviewer field is disabled, so only a tampered page changes it. Recent Streamlit already drops a
    forged value for a disabled widget; older ones (>= 1.40 is allowed) pass it on. Either way it is never
    used: this only puts the attempt in the audit trail."""
    claimed = st.session_state.get(SHOWN)
    if claimed is not None and claimed != who.name:
        store.audit("tampered_form", account=who.name, account_id=who.account_id, actor=who.name,
                    detail={"claimed_reviewer": str(claimed)[:80]})
        # kept for the next run: a saved decision reruns the script before this run's output is seen
        st.session_state[NOTICE] = (f"the page claimed reviewer {str(claimed)[:40]!r}; the decision is recorded "
                                    f"as {who.name}")


def main() -> None:
    st.set_page_config(page_title="mmstar review", layout="wide")
    if not CANDIDATES or not DB:
        st.error("start the app with: mmstar review CANDIDATES --db DB")
        st.stop()
    try:
        store = _store(DB)
    except MmstarError as exc:
        st.error(plain(exc))
        st.stop()
    # the gate comes before the candidates are even loaded: nothing of them can reach a stranger's page
    who = require_reviewer(Accounts(store, session_ttl=timedelta(hours=SESSION_HOURS)), DEFAULT_REVIEWER, AUTH)
    try:
        bench = _bench(CANDIDATES)
    except MmstarError as exc:
        st.error(plain(exc))
        st.stop()
    everyone = store.latest_votes()
    latest = everyone if who.sees_all else _own_votes(everyone, who.name)
    adjudicated = store.adjudications() if who.sees_all else {}
    visible = _sidebar(bench, latest, adjudicated, who)
    if who.sees_all:
        _progress_panel(bench, latest, adjudicated)
    else:
        st.sidebar.header("Progress")
        st.sidebar.caption(f"you have voted on {len(latest)} of {len(bench)} samples")
    st.title("mmstar review")
    if not visible:
        st.info("no sample matches the filters")
        return
    pos = min(st.session_state.get("pos", 0), len(visible) - 1)
    nav = st.columns([1, 1, 2, 4])
    if nav[0].button("◀ Previous", key="prev"):
        pos = max(0, pos - 1)
    if nav[1].button("Next ▶", key="next"):
        pos = min(len(visible) - 1, pos + 1)
    if nav[2].button("Next needing my vote", key="next-mine"):
        pos = _next_needing(visible, latest, who.name, pos)
    st.session_state["pos"] = pos
    nav[3].caption(f"sample {pos + 1} of {len(visible)} matching the filters")
    s = visible[pos]
    votes = latest.get(s.index, {})
    _show_sample(s, votes, adjudicated.get(s.index), who)
    can_adjudicate = who.role == "lead" and status(votes, QUORUM) == "disputed"
    if _decision_form(s, who, store, can_adjudicate):
        st.session_state["pos"] = _next_needing(visible, store.latest_votes(), who.name, pos)
        st.session_state["last_saved"] = s.index
        st.rerun()
    if "last_saved" in st.session_state:
        st.success(f"saved your decision on index {st.session_state['last_saved']}")
    if NOTICE in st.session_state:
        st.warning(plain(st.session_state.pop(NOTICE)))


def _next_needing(visible, latest, reviewer: str, pos: int) -> int:
    n = len(visible)
    for step in range(1, n + 1):
        j = (pos + step) % n
        if reviewer not in latest.get(visible[j].index, {}):
            return j
    return pos


main()
