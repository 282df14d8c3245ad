"""Candidate and run fields are shown as text, never as markdown, in a real browser (Debian's chromium
driven by Playwright): a ``source`` holding a markdown link and image renders no ``<a>`` / ``<img>`` to the
planted host, and the browser fetches nothing from it (a local HTTP server counts every request)."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import free_port, streamlit_healthy

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def bait():
    """A local host the planted markdown points at; ``hits`` lists every path anything asked it for."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield base, f"[log in again]({base}/login) ![pixel]({base}/pixel.png) **bold-src** :red[red-src]", hits
    srv.shutdown()


@pytest.fixture
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def served():
    procs: list[subprocess.Popen] = []

    def start(args: list[str]) -> str:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "mmstar", *args, "--port", str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(proc)
        import time

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("server exited: " + proc.stdout.read().decode()[-2000:])
            try:
                if streamlit_healthy(port):
                    return f"http://127.0.0.1:{port}"
            except OSError:
                time.sleep(0.3)
        pytest.fail("server did not start")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(20)


def _assert_inert(page, base: str, hits: list[str]) -> None:
    page.wait_for_timeout(2500)  # time for any image the page would load
    assert page.locator(f'a[href^="{base}"]').count() == 0, "a link to the planted host"
    assert page.locator(f'img[src^="{base}"]').count() == 0, "an image from the planted host"
    assert page.locator("strong", has_text="bold-src").count() == 0
    assert hits == [], f"the browser fetched {hits} from the planted host"


def test_review_shows_candidate_fields_as_text(tmp_path, bait, browser, served):
    from mmstar.demo_data import generate
    from mmstar.writers import write_benchmark

    base, markdown, hits = bait
    bench = generate(per_axis=1, seed=0)
    bench._samples[0] = bench[0].with_(source=markdown)
    cands = write_benchmark(bench, tmp_path / "cands.parquet")
    url = served(["review", str(cands), "--db", str(tmp_path / "r.db"), "--reviewer", "alice"])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.get_by_role("button", name="Submit decision").wait_for(timeout=60_000)
    _assert_inert(page, base, hits)
    page.locator('[data-testid="stText"]', has_text="[log in again](").first.wait_for(timeout=20_000)
    page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Source").click()
    page.get_by_role("option", name=markdown).wait_for(timeout=10_000)  # the filter lists the source as text
    _assert_inert(page, base, hits)
    page.close()


def test_viewer_shows_run_fields_as_text(tmp_path, bait, browser, served):
    sys.path.insert(0, str(REPO / "scripts"))
    from screenshots import open_page
    from test_viewer import write_runs

    base, markdown, hits = bait
    runs = write_runs(tmp_path)
    for mode in ("v", "wv", "t"):  # the first sample's source, as the run records it
        path = runs["alpha"] / f"{mode}.jsonl"
        recs = [json.loads(line) for line in path.read_text().splitlines()]
        recs[0]["source"] = markdown
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    page.goto(served(["view", str(runs["alpha"])]))
    page.get_by_role("heading", name="Leaderboard").wait_for(timeout=90_000)
    open_page(page, "Samples")
    page.locator('[data-testid="stText"]', has_text="[log in again](").first.wait_for(timeout=30_000)
    page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Source").click()
    page.wait_for_timeout(1000)  # the source filter's options list is open: its labels are data too
    _assert_inert(page, base, hits)
    page.close()
