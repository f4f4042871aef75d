"""A real browser against a real `streamlit run`: upload, wait for prediction and heatmap, screenshot.

Uses Debian's chromium through Playwright (no browser download). The screenshot
is saved under test-artifacts/ for people to look at.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import model_zoo
from model_zoo.classes import display_name

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("streamlit did not become healthy")


@pytest.fixture(scope="module")
def server():
    """`streamlit run streamlit_app.py` on a free local port; yields (url, process, started_at)."""
    port = free_port()
    log = open(ARTIFACTS.mkdir(exist_ok=True) or ARTIFACTS / "streamlit.log", "w")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process)
        yield url, process, started
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is required in CI (.ci/run installs it)")
        pytest.skip("Debian chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.mark.browser
def test_upload_predict_and_heatmap_in_a_real_browser(server, browser, data_dir):
    url, _, started = server
    card = next(c for c in model_zoo.list_models() if c["status"] == "ok")
    row = [r for r in model_zoo.read_predictions(card["id"]) if r["split"] == "test"][0]
    image_path = data_dir / card["dataset"] / row["path"]
    expected = card["classes"][int(np.argmax(model_zoo.load(card["id"]).predict([image_path])[0]))]

    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_text("Classify a skin lesion").wait_for(timeout=90_000)
    page.locator("input[type=file]").first.set_input_files(str(image_path))
    headline = page.get_by_text("Most likely:")
    headline.wait_for(timeout=120_000)
    first_result = time.perf_counter() - started
    assert display_name(expected) in headline.inner_text()
    page.get_by_text("Download the overlay (PNG)").wait_for(timeout=120_000)
    overlay = page.locator("img[alt*='Grad-CAM'], [data-testid='stImage'] img")
    assert overlay.count() >= 2, "the original and the heatmap overlay should both be shown"
    page.wait_for_timeout(1500)       # let images paint before the screenshot
    page.screenshot(path=str(ARTIFACTS / "classify.png"), full_page=True)
    (ARTIFACTS / "timings.txt").write_text(f"streamlit start to first prediction shown: {first_result:.1f} s\n")
    assert not page.get_by_text("Traceback").count()
    page.close()


@pytest.mark.browser
def test_other_pages_render_in_a_real_browser(server, browser):
    url, _, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    for path, text, shot in (("evaluation", "Evaluation", "evaluation.png"), ("model_cards", "Model card", "model_cards.png"),
                             ("about", "not a medical device", "about.png")):
        page.goto(f"{url}/{path}", wait_until="domcontentloaded")
        page.get_by_text(text).first.wait_for(timeout=90_000)
        page.wait_for_timeout(2500)
        page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
        assert not page.locator("[data-testid='stException']").count(), f"exception on {path}"
    page.close()
