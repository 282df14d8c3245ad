"""A real browser (Debian's chromium driven by Playwright) against ``mmstar view`` (a real ``streamlit
run`` subprocess on a free loopback port) and the HTML report of ``mmstar report`` / ``mmstar demo``:
the numbers shown equal scores.json, and questions or predictions holding ``<script>`` or
``<img onerror>`` stay text. Screenshots go to tmp_path (and to MMSTAR_SCREENSHOT_DIR if set)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mmstar.app.demo import DEMO_LINEUP
from test_viewer import IMG_PRED, SCRIPT_Q, write_runs

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from screenshots import CHROMIUM_ARGS, choose, free_port, open_page, start_viewer  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FIGURES = ("S_v", "S_wv", "S_t", "MG", "ML")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """``mmstar demo`` once: real runs of the demo models, and the report it writes."""
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run([sys.executable, "-m", "mmstar", "demo", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "report.html").exists() and "report:" in proc.stdout
    return out


@pytest.fixture
def viewer(request):
    """Start ``mmstar view`` over the given paths; yields its URL."""
    procs = []

    def start(*paths):
        port = free_port()
        procs.append(start_viewer([str(p) for p in paths], port))
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(20)


def _shot(page, tmp_path, name):
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("MMSTAR_SCREENSHOT_DIR"):
        shutil.copy(path, os.environ["MMSTAR_SCREENSHOT_DIR"])


def _grid(page):
    """The first Streamlit data grid as a list of {column: cell text} (its accessible table)."""
    grid = page.locator('[data-testid="stDataFrame"]').first
    heads = grid.locator('[role="columnheader"]').all_inner_texts()
    cells = grid.locator('[role="gridcell"]').all_inner_texts()
    return [dict(zip(heads, cells[i:i + len(heads)])) for i in range(0, len(cells), len(heads))]


def test_viewer_shows_the_scores_of_the_demo_runs(browser, demo, viewer, tmp_path):
    url = viewer(demo / "runs")
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(url)
    page.get_by_role("heading", name="Leaderboard").wait_for(timeout=90_000)
    page.locator('[role="gridcell"]').first.wait_for(state="attached", timeout=30_000)
    rows = {r["model"]: r for r in _grid(page)}
    assert set(rows) == {label for label, *_ in DEMO_LINEUP}  # clean, contaminated and the three trained leaks
    for model, row in rows.items():
        scores = json.loads((demo / "runs" / model / "mmstar-demo" / "scores.json").read_text())
        assert [float(row[k]) for k in FIGURES] == [round(scores[k], 2) for k in FIGURES], model
    _shot(page, tmp_path, "viewer-leaderboard.png")
    open_page(page, "Samples")
    choose(page, "Model A", "demo-contaminated / mmstar-demo")
    choose(page, "Flag (model A)", "leaked")
    page.get_by_text("samples match").wait_for(timeout=30_000)
    page.locator('[data-testid="stImage"] img').first.wait_for(timeout=30_000)  # the demo image, by index
    page.locator('[data-testid="stText"]', has_text="flags: leaked").first.wait_for(timeout=30_000)
    _shot(page, tmp_path, "viewer-samples.png")
    page.close()


def test_viewer_keeps_html_in_questions_and_predictions_as_text(browser, viewer, tmp_path):
    runs = write_runs(tmp_path)
    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    page.goto(viewer(runs["alpha"], runs["beta"]))
    page.get_by_role("heading", name="Leaderboard").wait_for(timeout=90_000)
    open_page(page, "Samples")
    # st.text / st.code elements (the data grid also holds the question, in a hidden accessible table)
    page.locator('[data-testid="stText"]', has_text=SCRIPT_Q).first.wait_for(timeout=30_000)
    page.locator('[data-testid="stCode"]', has_text=IMG_PRED).first.wait_for(timeout=30_000)
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator("b", has_text="bold").count() == 0
    assert page.locator('img[src="x"]').count() == 0
    _shot(page, tmp_path, "viewer-html-as-text.png")
    page.close()


def _report_cells(page):
    return page.eval_on_selector_all(
        "td[data-run][data-col]", "els => els.map(e => [e.dataset.run, e.dataset.col, e.firstChild.textContent])")


def test_demo_report_shows_the_scores_and_fetches_nothing(browser, demo, tmp_path):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((demo / "report.html").as_uri())
    page.wait_for_load_state("load")
    cells = {(run, col): text for run, col, text in _report_cells(page)}
    for model in ("demo-clean", "demo-contaminated"):
        scores = json.loads((demo / "runs" / model / "mmstar-demo" / "scores.json").read_text())
        for key in FIGURES:
            assert cells[(f"{model} / mmstar-demo", key)] == f"{scores[key]:.2f}", (model, key)
    # every figure and thumbnail decoded from the file itself
    sizes = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
    assert len(sizes) > 3 and all(w > 0 for w in sizes)
    assert {u.split(":", 1)[0] for u in requests} <= {"file", "data"}
    _shot(page, tmp_path, "report.png")
    page.close()


def test_report_keeps_html_as_text(browser, tmp_path):
    runs = write_runs(tmp_path)
    out = tmp_path / "report.html"
    proc = subprocess.run([sys.executable, "-m", "mmstar", "report", str(runs["alpha"]), "--html", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    page = browser.new_page()
    page.goto(out.as_uri())
    page.get_by_text(SCRIPT_Q).first.wait_for(timeout=10_000)
    page.get_by_text(IMG_PRED).first.wait_for(timeout=10_000)
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator("script").count() == 0 and page.locator('img[src="x"]').count() == 0
    page.close()
