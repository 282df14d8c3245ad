"""A real browser (Debian's chromium driven by Playwright) against the running review app."""

import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import free_port, streamlit_healthy

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCRIPT_Q = "<script>window.pwned=1</script><b>bold</b> What colour?\nOptions: A: red, B: green, C: blue, D: yellow"


@pytest.fixture
def app(tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright")
    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    bench = generate(per_axis=1, seed=0)
    bench._samples[0] = bench[0].with_(question=SCRIPT_Q)
    cands = write_benchmark(bench, tmp_path / "cands.parquet")
    db, port = tmp_path / "review.db", free_port()
    cmd = [sys.executable, "-m", "mmstar", "review", str(cands), "--db", str(db), "--reviewer", "alice", "--port",
           str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if streamlit_healthy(port):
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("review app did not start: " + proc.stdout.read().decode()[-2000:])
    yield url, db
    proc.terminate()
    proc.wait(20)


def test_browser_records_a_decision_and_never_runs_data_as_html(app, tmp_path):
    from mmstar.review_app.store import Store
    from playwright.sync_api import sync_playwright

    url, db = app
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_role("button", name="Submit decision").wait_for(timeout=60_000)
        page.get_by_text("<script>window.pwned=1</script><b>bold</b> What colour?").first.wait_for(timeout=10_000)
        assert page.evaluate("typeof window.pwned") == "undefined"
        assert page.locator("b", has_text="bold").count() == 0  # the <b> was not rendered as HTML
        page.screenshot(path=str(tmp_path / "review-before.png"), full_page=True)
        page.get_by_role("button", name="Submit decision").click()
        page.get_by_text("saved your decision on index 0").wait_for(timeout=30_000)
        page.screenshot(path=str(tmp_path / "review-after.png"), full_page=True)
        browser.close()
    rows = Store(str(db)).all_rows()
    assert len(rows) == 1 and rows[0]["sample_index"] == 0 and rows[0]["reviewer"] == "alice"
    assert rows[0]["decision"] == "keep" and rows[0]["category"] == "coarse perception"
    if os.environ.get("MMSTAR_SCREENSHOT_DIR"):
        shutil.copy(tmp_path / "review-before.png", os.environ["MMSTAR_SCREENSHOT_DIR"])
