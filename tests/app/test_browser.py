"""A real browser against a real `streamlit run`: upload, wait for prediction and heatmap, screenshot.

Uses Debian's chromium through Playwright (no browser download). The screenshot
is saved under test-artifacts/ for people to look at.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

import model_zoo
from benchmarks.app_server import (CHROMIUM, accepted_test_images, chromium, streamlit_server, upload_and_wait,
                                   wait_until_idle)
from model_zoo.classes import display_name

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def server():
    """`streamlit run streamlit_app.py` on a free local port; yields (url, process, started_at)."""
    with streamlit_server(ARTIFACTS / "streamlit.log") as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is required in CI (.ci/run installs it)")
        pytest.skip("Debian chromium not installed")
    with chromium() as instance:
        yield instance


@pytest.mark.browser
def test_upload_predict_and_heatmap_in_a_real_browser(server, browser, data_dir):
    url, _, started = server
    card = next(c for c in model_zoo.list_models() if c["status"] == "ok")
    image_path = accepted_test_images(card, data_dir, 1)[0]
    expected = card["classes"][int(np.argmax(model_zoo.load(card["id"]).predict([image_path])[0]))]

    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    headline = upload_and_wait(page, url, image_path)
    first_result = time.perf_counter() - started
    assert display_name(expected) in headline
    page.get_by_text("Download the overlay (PNG)").wait_for(timeout=120_000)
    overlay = page.locator("img[alt*='Grad-CAM'], [data-testid='stImage'] img")
    assert overlay.count() >= 2, "the original and the heatmap overlay should both be shown"
    wait_until_idle(page)             # let the heatmap and images paint before the screenshot
    page.screenshot(path=str(ARTIFACTS / "classify.png"), full_page=True)
    (ARTIFACTS / "timings.txt").write_text(f"streamlit start to first prediction shown: {first_result:.1f} s\n")
    assert not page.get_by_text("Traceback").count()
    page.close()


@pytest.mark.browser
def test_other_pages_render_in_a_real_browser(server, browser):
    url, _, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.set_default_navigation_timeout(180_000)
    page.goto(url, wait_until="domcontentloaded")          # the home page first, as a visitor arrives
    page.get_by_text("Classify a skin lesion").wait_for(timeout=90_000)
    for path, text, shot in (("evaluation", "Evaluation", "evaluation.png"), ("model_cards", "Model card", "model_cards.png"),
                             ("about", "not a medical device", "about.png")):
        page.goto(f"{url}/{path}", wait_until="domcontentloaded")
        page.get_by_text(text).first.wait_for(timeout=90_000)
        wait_until_idle(page)
        page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
        assert not page.locator("[data-testid='stException']").count(), f"exception on {path}"
    page.close()


@pytest.mark.browser
def test_a_deep_link_to_a_fresh_server_gets_the_apps_navigation(browser):
    """Streamlit runs a page file directly, under its legacy pages/ menu, when the first visitor of a freshly
    started server opens a deep link (no session has called st.navigation yet). The page must still show
    the app's own menu (titled pages, grouped), not one item per file name."""
    with streamlit_server(ARTIFACTS / "streamlit_deep_link.log") as (url, _, _):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_navigation_timeout(180_000)
        page.goto(f"{url}/model_cards", wait_until="domcontentloaded")
        nav = page.get_by_test_id("stSidebarNav")
        # the legacy menu's "model cards" would match a loose "Model card": wait for the app's own section title,
        # which on a loaded machine comes a rerun later
        nav.get_by_text("Understand", exact=True).wait_for(timeout=90_000)
        page.get_by_role("heading", name="Model cards").first.wait_for(timeout=90_000)
        wait_until_idle(page)
        page.screenshot(path=str(ARTIFACTS / "deep_link.png"), full_page=True)
        assert nav.get_by_text("Model cards", exact=True).count() == 1, nav.inner_text()
        assert nav.get_by_text("Understand", exact=True).count() == 1, nav.inner_text()
        assert not nav.get_by_text("streamlit app").count(), "the legacy menu (file names) is showing"
        assert page.get_by_role("heading", name="Model cards").count() or page.get_by_text("Model card").count()
        assert not page.locator("[data-testid='stException']").count()
        page.close()
