"""Streamlit review app: sort candidates into the 6 capabilities x 18 axes, keep or drop them.

Started by ``mmstar review`` (configuration through MMSTAR_REVIEW_* environment variables).
Question and option text are shown with ``st.text`` / ``st.code``: as text, never as HTML or
markdown, so a ``<script>`` in the data is just characters on the screen.
"""

from __future__ import annotations

import os
import uuid

import streamlit as st
from mmstar.review_app.store import REASONS, Store, agreement, check_reviewer, status

from mmstar.errors import MmstarError
from mmstar.loaders import load_benchmark
from mmstar.options import LETTERS
from mmstar.taxonomy import CAPABILITIES, capability

CANDIDATES = os.environ.get("MMSTAR_REVIEW_CANDIDATES", "")
DB = os.environ.get("MMSTAR_REVIEW_DB", "")
DEFAULT_REVIEWER = os.environ.get("MMSTAR_REVIEW_REVIEWER", "")
QUORUM = int(os.environ.get("MMSTAR_REVIEW_QUORUM", "0") or 0) or None
TARGET = int(os.environ.get("MMSTAR_REVIEW_TARGET", "250"))
STATUSES = ("all", "needs my vote", "unreviewed", "needs votes", "disputed", "accepted", "rejected")


@st.cache_resource
def _bench(path: str):
    return load_benchmark(path)


@st.cache_resource
def _store(db: str) -> Store:
    store = Store(db)
    store.set_setting("candidates", CANDIDATES)
    return store


def _sidebar(bench, latest):
    st.sidebar.header("Reviewer")
    reviewer = st.sidebar.text_input("Your name", value=DEFAULT_REVIEWER, key="reviewer")
    try:
        check_reviewer(reviewer)
    except MmstarError as exc:
        st.sidebar.error(str(exc))
        reviewer = ""
    st.sidebar.header("Filters")
    sources = sorted({s.source for s in bench})
    chosen_sources = st.sidebar.multiselect("Source", sources, default=[], key="f_source")
    chosen_status = st.sidebar.selectbox("Status", STATUSES, key="f_status")
    caps = ["all"] + [c.name for c in CAPABILITIES]
    chosen_cap = st.sidebar.selectbox("Capability (as labelled)", caps, key="f_cap")

    def visible(s) -> bool:
        votes = latest.get(s.index, {})
        if chosen_sources and s.source not in chosen_sources:
            return False
        if chosen_cap != "all" and s.category != chosen_cap:
            return False
        if chosen_status == "needs my vote":
            return bool(reviewer) and reviewer not in votes
        return chosen_status == "all" or status(votes, QUORUM) == chosen_status

    return reviewer, [s for s in bench if visible(s)]


def _progress_panel(bench, latest) -> None:
    st.sidebar.header("Progress")
    accepted: dict[tuple[str, str], int] = {}
    for s in bench:
        votes = latest.get(s.index, {})
        if status(votes, QUORUM) == "accepted":
            v = next(iter(votes.values()))
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


def _show_sample(s, votes) -> None:
    left, right = st.columns([3, 2])
    with left:
        if s.image is not None:
            try:
                st.image(s.image.pil(), caption=f"index {s.index} (use the fullscreen button to zoom)",
                         width="stretch")
            except MmstarError as exc:
                st.error(f"image cannot be shown: {exc}")
        else:
            st.info("this sample has no image")
    with right:
        st.caption(f"index {s.index} · source {s.source or '-'} · labelled {s.category or '-'} / "
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
        if votes:
            st.text("Votes: " + "; ".join(f"{r}: {v.decision}" + (f" {v.l2_category}" if v.decision == "keep" else
                                                                    f" ({v.reason})") for r, v in votes.items()))


def _decision_form(s, reviewer: str, store: Store) -> bool:
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
    token_key = f"{key}-token"
    st.session_state.setdefault(token_key, uuid.uuid4().hex)
    if st.button("Submit decision", type="primary", disabled=not reviewer, key=f"{key}-submit"):
        try:
            store.add_decision(s.index, reviewer, decision, reason=reason,
                               category=category, l2_category=l2, corrections=corrections,
                               client_token=st.session_state[token_key])
        except MmstarError as exc:
            st.error(str(exc))
            return False
        st.session_state[token_key] = uuid.uuid4().hex
        return True
    return False


def main() -> None:
    st.set_page_config(page_title="mmstar review", layout="wide")
    if not CANDIDATES or not DB:
        st.error("start the app with: mmstar review CANDIDATES --db DB")
        st.stop()
    try:
        bench, store = _bench(CANDIDATES), _store(DB)
    except MmstarError as exc:
        st.error(str(exc))
        st.stop()
    latest = store.latest_votes()
    reviewer, visible = _sidebar(bench, latest)
    _progress_panel(bench, latest)
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
        pos = _next_needing(visible, latest, reviewer, pos)
    st.session_state["pos"] = pos
    nav[3].caption(f"sample {pos + 1} of {len(visible)} matching the filters")
    s = visible[pos]
    votes = latest.get(s.index, {})
    _show_sample(s, votes)
    if _decision_form(s, reviewer, store):
        st.session_state["pos"] = _next_needing(visible, store.latest_votes(), reviewer, pos)
        st.session_state["last_saved"] = s.index
        st.rerun()
    if "last_saved" in st.session_state:
        st.success(f"saved your decision on index {st.session_state['last_saved']}")


def _next_needing(visible, latest, reviewer: str, pos: int) -> int:
    n = len(visible)
    for step in range(1, n + 1):
        j = (pos + step) % n
        if reviewer not in latest.get(visible[j].index, {}):
            return j
    return pos


main()
