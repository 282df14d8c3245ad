"""``mmstar view`` beyond loopback (issue 32 #11): refused without an access token; with ``--token-env``
every browser session gets a token form and nothing else until it gives the right token."""

from __future__ import annotations

import json
import os
import sys

import pytest
from conftest import assert_clean_error, free_port, run_cli
from test_viewer import write_runs

pytest.importorskip("streamlit")

TOKEN = "k9Fq2-ZxW7vR4mP8tL0sYb3NcH6jD1eA"  # noqa: S105  a throwaway test token
APP = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "viewer" / "app.py")


@pytest.fixture
def runs(tmp_path):
    return write_runs(tmp_path, images=False)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.168.1.5"])
def test_view_beyond_loopback_is_refused_without_a_token(runs, address):
    proc = run_cli("view", str(runs["alpha"]), "--address", address, "--port", str(free_port()), timeout=60)
    assert_clean_error(proc, f"refusing --address {address}", "--token-env")


@pytest.mark.parametrize(("value", "why"), [(None, "is not set"), ("", "is not set"), ("short-token", "at least 24")])
def test_token_env_must_hold_a_long_token(runs, value, why):
    env = {"MMSTAR_TEST_VIEW_TOKEN": value} if value is not None else {}
    proc = run_cli("view", str(runs["alpha"]), "--address", "0.0.0.0", "--token-env", "MMSTAR_TEST_VIEW_TOKEN",
                   "--port", str(free_port()), env=env, timeout=60)
    assert_clean_error(proc, "--token-env MMSTAR_TEST_VIEW_TOKEN", why)


def _text(at) -> str:
    out = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def test_a_session_sees_nothing_until_it_gives_the_token(runs, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MMSTAR_VIEW_PATHS", json.dumps([str(runs["alpha"]), str(runs["beta"])]))
    monkeypatch.setenv("MMSTAR_TEST_VIEW_TOKEN", TOKEN)
    monkeypatch.setenv("MMSTAR_VIEW_TOKEN_ENV", "MMSTAR_TEST_VIEW_TOKEN")
    monkeypatch.setattr("mmstar.viewer.access.WRONG_DELAY_S", 0.0)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "alpha" not in _text(at) and not at.dataframe and [t.label for t in at.text_input] == ["Access token"]
    for wrong in ("", TOKEN[:-1], TOKEN + "x", "alpha"):
        at.text_input(key="view-token").input(wrong)
        at.button(key="FormSubmitter:token-Open").click().run()
        assert [e.value for e in at.error] == ["wrong access token"]
        assert "alpha / mini" not in _text(at) and not at.dataframe
    at.text_input(key="view-token").input(TOKEN)
    at.button(key="FormSubmitter:token-Open").click().run()
    assert not at.exception and not at.error
    assert set(at.dataframe[0].value["model"]) == {"alpha", "beta"}


def test_a_public_viewer_with_a_token_streams_no_data_before_it(runs):
    """The real server on 0.0.0.0 (accepted with --token-env), read by a raw WebSocket client."""
    from streamlit_ws import read_page
    from test_page_hosts import _start

    port = free_port()
    cmd = [sys.executable, "-m", "mmstar", "view", str(runs["alpha"]), "--address", "0.0.0.0", "--port",
               str(port), "--token-env", "MMSTAR_TEST_VIEW_TOKEN"]
    os.environ["MMSTAR_TEST_VIEW_TOKEN"] = TOKEN
    try:
        proc = _start(cmd, port)
    finally:
        del os.environ["MMSTAR_TEST_VIEW_TOKEN"]
    try:
        data = read_page(port, f"127.0.0.1:{port}", seconds=30)  # the whole run a session gets without the token
        assert b"Access token" in data  # the page came: the token form
        for secret in (b"alpha", b"What colour", b"S_wv"):
            assert secret not in data, secret
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.mark.browser
def test_token_form_in_a_real_browser(runs, tmp_path):
    """Debian's chromium against ``mmstar view --token-env``: the form and nothing else, a wrong token
    refused, the right one opens the leaderboard."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright
    from test_page_hosts import _start
    from test_pages_markdown_browser import CHROMIUM_ARGS

    port = free_port()
    os.environ["MMSTAR_TEST_VIEW_TOKEN"] = TOKEN
    try:
        proc = _start([sys.executable, "-m", "mmstar", "view", str(runs["alpha"]), "--port", str(port),
                       "--token-env", "MMSTAR_TEST_VIEW_TOKEN"], port)
    finally:
        del os.environ["MMSTAR_TEST_VIEW_TOKEN"]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}")
            box = page.get_by_label("Access token")
            box.wait_for(timeout=60_000)
            page.wait_for_timeout(1000)
            assert "alpha" not in page.content() and page.get_by_role("heading", name="Leaderboard").count() == 0
            box.fill("not-the-token")
            page.get_by_role("button", name="Open").click()
            page.get_by_text("wrong access token").wait_for(timeout=30_000)
            assert "alpha" not in page.content()
            page.get_by_label("Access token").fill(TOKEN)
            page.get_by_role("button", name="Open").click()
            page.get_by_role("heading", name="Leaderboard").wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "view-token.png"))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)
