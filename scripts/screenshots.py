"""The README's screenshots of ``mmstar view`` (the sample browser) and of ``mmstar report``.

    python scripts/screenshots.py [--runs DIR] [--out docs/]

Runs ``mmstar demo`` into a temporary folder unless ``--runs`` names existing run directories,
starts ``mmstar view`` on a free loopback port, drives Debian's chromium with Playwright, and saves
palette PNGs (each kept under 300 KB) under ``--out``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
MAX_BYTES = 300_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_viewer(runs: list[str], port: int, extra: list[str] | None = None) -> subprocess.Popen:
    """``mmstar view`` in a subprocess; returns once its health endpoint answers."""
    proc = subprocess.Popen([sys.executable, "-m", "mmstar", "view", *runs, "--port", str(port), *(extra or [])],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("mmstar view exited: " + proc.stdout.read().decode()[-2000:])
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("mmstar view did not start within 120 s")


def save_small_png(png: bytes, path: Path) -> int:
    """Quantise to a 256-colour palette (screenshots are flat colours) and shrink until < 300 KB."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    while True:
        buf = io.BytesIO()
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
        if buf.tell() < MAX_BYTES or img.width < 600:
            break
        img = img.resize((int(img.width * 0.85), int(img.height * 0.85)), Image.Resampling.LANCZOS)
    path.write_bytes(buf.getvalue())
    return buf.tell()


def open_page(page, label: str) -> None:
    """Pick a page in the viewer's sidebar radio and wait for its header."""
    page.locator('[data-testid="stSidebar"]').get_by_text(label, exact=True).click()
    page.get_by_role("heading", name=label if label != "Diff" else "Two-model diff").wait_for(timeout=60_000)
    page.wait_for_timeout(1500)  # let images and the data grid paint


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label``."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_timeout(1200)


def viewer_shots(page, url: str, out: Path) -> list[Path]:
    page.goto(url)
    page.get_by_role("heading", name="Leaderboard").wait_for(timeout=90_000)
    page.wait_for_timeout(1500)
    board = out / "viewer-leaderboard.png"
    save_small_png(page.screenshot(full_page=False), board)
    open_page(page, "Samples")
    # a leaked sample of the contaminated demo model, with the clean one beside it
    choose(page, "Model A", "demo-contaminated / mmstar-demo")
    choose(page, "Model B (side by side)", "demo-clean / mmstar-demo")
    choose(page, "Flag (model A)", "leaked")
    page.get_by_text("samples match").wait_for(timeout=30_000)
    page.set_viewport_size({"width": 1600, "height": 1500})  # Streamlit scrolls inside: show it all
    page.wait_for_timeout(2500)
    samples = out / "viewer-samples.png"
    save_small_png(page.screenshot(full_page=True), samples)
    return [board, samples]


def report_shots(page, report: Path, out: Path) -> list[Path]:
    """The report's top (leaderboard, charts) and its leaked-sample list with thumbnails."""
    page.set_viewport_size({"width": 1300, "height": 1100})
    page.goto(report.resolve().as_uri())
    page.wait_for_timeout(1000)
    top, leaked = out / "report.png", out / "report-leaked.png"
    save_small_png(page.screenshot(full_page=False), top)
    page.get_by_role("heading", name="Leaked samples").scroll_into_view_if_needed()
    page.evaluate("document.querySelector('h2:last-of-type').scrollIntoView()")
    page.wait_for_timeout(500)
    save_small_png(page.screenshot(full_page=False), leaked)
    return [top, leaked]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", help="run directories (default: a fresh `mmstar demo`)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium not found (apt-get install chromium)", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="mmstar-shots-"))
    try:
        runs = args.runs
        if not runs:
            subprocess.run([sys.executable, "-m", "mmstar", "demo", "--out", str(tmp / "demo")], check=True)
            runs = [str(tmp / "demo" / "runs")]
        args.out.mkdir(parents=True, exist_ok=True)
        report = tmp / "report.html"
        subprocess.run([sys.executable, "-m", "mmstar", "report", *runs, "--html", str(report)], check=True)
        port = free_port()
        proc = start_viewer(runs, port)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1600, "height": 900})
                written = viewer_shots(page, f"http://127.0.0.1:{port}", args.out)
                written.extend(report_shots(page, report, args.out))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(20)
        for path in written:
            print(f"{path}: {path.stat().st_size // 1024} KB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
