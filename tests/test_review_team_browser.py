"""A review team in a real browser (Debian's chromium driven by Playwright) against ``mmstar review`` with
accounts, listening beyond loopback: the login gate, lockout, attribution under a tampered page, blind
review and the lead's view."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
from conftest import free_port, streamlit_healthy

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MARK = "Zanzibar-marker"
NEW = {"alice": "alice's own passphrase", "bobby": "bobby's own passphrase", "carol": "carol's own passphrase"}
# Rewrites every outgoing WebSocket frame while window.__claims is set: each occurrence of the UTF-8 bytes of
# a pair's first string becomes its second (same length, so the protobuf stays well-formed). That is what a
# user who edits the page, or anything between the browser and the server, can make the server receive.
TAMPER = """
(() => {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    const claims = window.__claims;
    if (claims && (data instanceof ArrayBuffer || ArrayBuffer.isView(data))) {
      const bytes = new Uint8Array(data instanceof ArrayBuffer ? data.slice(0) : data.buffer.slice(
        data.byteOffset, data.byteOffset + data.byteLength));
      for (const [a, b] of claims) {
        const from = new TextEncoder().encode(a), to = new TextEncoder().encode(b);
        for (let i = 0; i + from.length <= bytes.length; i++) {
          if (from.every((x, j) => bytes[i + j] === x)) {
            bytes.set(to, i);
            window.__rewrites = (window.__rewrites || 0) + 1;
          }
        }
      }
      return send.call(this, bytes);
    }
    return send.call(this, data);
  };
})();
"""


@pytest.fixture
def team_app(tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright")
    from mmstar.review_app.accounts import Accounts
    from mmstar.review_app.store import Store

    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    bench = generate(per_axis=1, seed=0)
    for i, s in enumerate(bench):
        bench._samples[i] = s.with_(question=f"{MARK} {i}. {s.question}")
    cands = write_benchmark(bench, tmp_path / "cands.parquet")
    db = tmp_path / "team.db"
    accounts = Accounts(Store(str(db)))
    passwords = {name: accounts.add(name, role, actor="cli:test") for name, role in
                 (("alice", "reviewer"), ("bobby", "reviewer"), ("carol", "lead"), ("dave", "reviewer"))}
    port = free_port()
    # the team set-up: accounts exist, so the app may listen on every interface
    everywhere = "0.0.0.0"
    cmd = [sys.executable, "-m", "mmstar", "review", str(cands), "--db", str(db), "--port", str(port), "--address",
           everywhere]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if streamlit_healthy(port):
                break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("review app did not start: " + proc.stdout.read().decode()[-2000:])
    if proc.poll() is not None:
        pytest.fail("review app exited: " + proc.stdout.read().decode()[-2000:])
    yield url, str(db), passwords
    proc.terminate()
    proc.wait(20)


def _body(page) -> str:
    return page.locator("body").inner_text()


def _log_in(page, name: str, password: str) -> None:
    page.get_by_role("textbox", name="User name", exact=True).fill(name)
    page.get_by_role("textbox", name="Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def _wait_events(store, event: str, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sum(r["event"] == event for r in store.audit_rows()) < n:
        assert time.monotonic() < deadline, f"fewer than {n} {event} events: {store.audit_rows()}"
        time.sleep(0.2)


def _first_login(browser, url: str, name: str, password: str, tamper: bool = False, query: str = ""):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    if tamper:
        ctx.add_init_script(TAMPER)
    page = ctx.new_page()
    page.goto(url + query)
    _log_in(page, name, password)
    page.get_by_role("textbox", name="New password", exact=True).fill(NEW[name])
    page.get_by_role("textbox", name="Repeat it", exact=True).fill(NEW[name])
    page.get_by_role("button", name="Set password").click()
    page.get_by_role("button", name="Submit decision").wait_for(timeout=60_000)
    return page


def test_team_review_in_a_real_browser(team_app, tmp_path):
    from mmstar.review_app.accounts import GENERIC_FAILURE, Accounts
    from mmstar.review_app.store import Store
    from playwright.sync_api import sync_playwright

    url, db, passwords = team_app
    store = Store(db)
    ids = {a.name: a.id for a in Accounts(store).list()}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        # 1. without a login the page holds the login form and nothing of the data
        page = browser.new_page()
        page.goto(url)
        page.get_by_role("button", name="Log in").wait_for(timeout=60_000)
        page.wait_for_timeout(1500)  # let any late element arrive before looking
        html, body = page.content(), _body(page)
        for leak in (MARK, "Ground truth", "coarse perception", "index 0", "of 18", "alice", "carol", "kappa"):
            assert leak not in html and leak not in body, leak
        assert page.get_by_role("button", name="Submit decision").count() == 0
        # 2. a wrong password is refused; repeated failures lock the account, then even the right one fails
        for attempt in range(1, 6):
            _log_in(page, "dave", f"guess {attempt}")
            _wait_events(store, "login_failed", attempt)
        assert Accounts(store).get("dave").locked_until is not None
        _log_in(page, "dave", passwords["dave"])
        _wait_events(store, "login_failed", 6)
        # the one line every refused login gets (unknown and locked names alike: issue 32 #6)
        page.get_by_text(GENERIC_FAILURE).wait_for(timeout=30_000)
        assert MARK not in page.content() and Accounts(store).get("dave").locked_until is not None
        page.screenshot(path=str(tmp_path / "locked.png"))
        # 3. alice votes from a tampered page: its URL names bobby, and it rewrites what it sends so that her
        # name (the display-only reviewer field) reads "bobby"; as a control that the rewriting reaches the
        # server, a correction she types is rewritten too
        alice = _first_login(browser, url, "alice", passwords["alice"], tamper=True, query="/?reviewer=bobby")
        alice.evaluate("window.__claims = [['alice', 'bobby'], ['TYPED-BY-HER', 'FORGED-ALONG']]")
        alice.get_by_text("Corrections (optional; the original is kept)").click()
        question = alice.get_by_role("textbox", name="Question", exact=True)
        question.fill("TYPED-BY-HER question")
        question.press("Control+Enter")
        alice.wait_for_timeout(1500)
        alice.get_by_role("button", name="Submit decision").click()
        alice.get_by_text("saved your decision on index 0").wait_for(timeout=30_000)
        assert alice.evaluate("window.__rewrites || 0") >= 2  # both claims went out
        alice.evaluate("window.__claims = null")
        (row,) = store.all_rows()
        assert json.loads(row["corrections"]) == {"question": "FORGED-ALONG question"}  # the rewriting works
        assert (row["sample_index"], row["reviewer"], row["account_id"]) == (0, "alice", ids["alice"])  # not here
        decided = [r for r in store.audit_rows() if r["event"] == "decision"]
        assert [(r["account"], r["account_id"], r["actor"]) for r in decided] == [("alice", ids["alice"], "alice")]
        # 4. bobby reviews blind: sample 0 with no trace of alice's vote; his own vote is his
        bobby = _first_login(browser, url, "bobby", passwords["bobby"])
        bobby.get_by_text(f"{MARK} 0.").first.wait_for(timeout=10_000)
        assert "alice" not in _body(bobby) and "alice" not in bobby.content()
        bobby.get_by_text("drop", exact=True).click()
        bobby.get_by_text("Reason").wait_for(timeout=10_000)
        bobby.get_by_role("button", name="Submit decision").click()
        bobby.get_by_text("saved your decision on index 0").wait_for(timeout=30_000)
        bobby.get_by_role("button", name="◀ Previous").click()
        bobby.get_by_text("Your vote: drop").wait_for(timeout=10_000)
        assert "alice" not in _body(bobby)
        latest = store.latest_votes()[0]
        assert {r: (v.decision, v.account_id) for r, v in latest.items()} == {
            "alice": ("keep", ids["alice"]), "bobby": ("drop", ids["bobby"])}
        # 5. the lead sees both votes and settles the dispute
        carol = _first_login(browser, url, "carol", passwords["carol"])
        carol.get_by_text("alice: keep").wait_for(timeout=10_000)
        assert "bobby: drop" in _body(carol)
        carol.screenshot(path=str(tmp_path / "lead.png"), full_page=True)
        carol.get_by_role("button", name="Adjudicate (final)").click()
        carol.get_by_text("saved your decision on index 0").wait_for(timeout=30_000)
        adj = store.adjudications()[0]
        assert (adj.reviewer, adj.account_id) == ("carol", ids["carol"])
        # 6. a reload is a new browser session: alice logs in again and still sees only her own vote
        alice.reload()
        _log_in(alice, "alice", NEW["alice"])
        alice.get_by_text("Your vote: keep").wait_for(timeout=60_000)
        assert "bobby" not in _body(alice) and "carol" not in _body(alice)
        browser.close()
    events = [r["event"] for r in store.audit_rows()]
    assert events.count("lockout") == 1 and events.count("login") == 4 and events.count("adjudication") == 1
