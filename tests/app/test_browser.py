"""A real browser against a real `streamlit run`, started as a hosted copy runs it (no data folder).

Few and focused (CI has two cores): one server for the module, three visits through it, then the check that
the hosted app never loaded TensorFlow; and the deep-link test on a fresh server of its own. Uses Debian's
chromium through Playwright (no browser download). Screenshots go to test-artifacts/ for people to look at.
"""
from __future__ import annotations

import csv
import io
import os
import re
import time
from pathlib import Path

import pytest

import model_zoo
from benchmarks.app_server import (CHROMIUM, READ_ONLY_PAGES, chromium, compare_upload, content_width,
                                   screenshot_whole, show_heatmap, streamlit_server, tensorflow_loaded,
                                   upload_and_wait, visit, wait_until_idle)
from model_zoo.case_report import report_filename
from model_zoo.classes import display_name

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
EXAMPLES = ROOT / "assets" / "examples"
PHONE = {"width": 390, "height": 844}
EXCEPTION = "[data-testid='stException']"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run streamlit_app.py` as a hosted copy: DERMLAB_DATA_DIR at an empty folder (the bundled example
    cases stand in for the data). Yields (url, process, started_at)."""
    empty = tmp_path_factory.mktemp("no-data")
    with streamlit_server(ARTIFACTS / "streamlit.log", {"DERMLAB_DATA_DIR": str(empty)}) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is required in CI (.ci/run installs it)")
        pytest.skip("Debian chromium not installed")
    with chromium() as instance:
        yield instance


@pytest.fixture(scope="module")
def example() -> tuple[Path, dict, str]:
    """A bundled example of the default model's dataset that the model classifies (its gates refuse some real
    test images): (image, card, predicted class)."""
    from model_zoo.diagnosis import diagnose

    card = next(c for c in model_zoo.list_models() if c["status"] == "ok")
    model = model_zoo.load(card["id"])
    with open(EXAMPLES / "manifest.csv", newline="") as handle:
        files = [EXAMPLES / row["file"] for row in csv.DictReader(handle) if row["dataset"] == card["dataset"]]
    for path in files:
        d = diagnose(model, path, name=path.name)
        if not d.refused:
            return path, card, d.top
    pytest.fail(f"the default model refuses every bundled {card['dataset']} example")


def _pdf_text(pdf: bytes) -> str:
    pypdf = pytest.importorskip("pypdf")
    return re.sub(r"\s+", " ", pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text())


@pytest.mark.browser
def test_classify_heatmap_case_report_and_phone_width(server, browser, example):
    url, _, started = server
    image, card, top = example
    page = browser.new_page(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
    headline = upload_and_wait(page, url, image)
    first_result = time.perf_counter() - started
    assert display_name(top) in headline
    show_heatmap(page, "Grad-CAM++")
    with page.expect_download(timeout=120_000) as download_info:
        page.get_by_text("Download the case report (PDF)").click()
    download = download_info.value
    assert download.suggested_filename == report_filename(card["id"], image.name)
    text = _pdf_text(Path(download.path()).read_bytes())
    assert f"Most likely: {display_name(top)}" in text and card["id"] in text
    assert "Heatmap method: Grad-CAM++" in text, "the report carries the heatmap shown"
    screenshot_whole(page, ARTIFACTS / "classify.png")
    assert not page.locator(EXCEPTION).count()
    page.close()
    (ARTIFACTS / "timings.txt").write_text(f"streamlit start to first prediction shown: {first_result:.1f} s\n")

    phone = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    upload_and_wait(phone, url, image)
    phone.get_by_text("Download the case report (PDF)").wait_for(timeout=120_000)
    wait_until_idle(phone)
    screenshot_whole(phone, ARTIFACTS / "classify_phone.png")
    assert content_width(phone) <= PHONE["width"], "sideways scrolling on a phone"
    assert not phone.locator(EXCEPTION).count()
    phone.close()


def _choose(page, group: str, index: int = 0) -> None:
    """Click the index-th option of the radio group labelled `group`."""
    radio = page.get_by_test_id("stRadio").filter(has=page.get_by_text(group, exact=True)).first
    radio.get_by_test_id("stRadioOption").nth(index).click()
    assert radio.get_by_role("radio").nth(index).is_checked(), f"{group}: option {index} not chosen"


@pytest.mark.browser
def test_a_three_case_quiz_to_its_result(server, browser):
    url, _, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(f"{url}/quiz?seed=7&n=3", wait_until="domcontentloaded", timeout=180_000)
    for number in (1, 2, 3):
        page.get_by_text(f"Case {number} of 3").wait_for(timeout=180_000)
        wait_until_idle(page, settle_ms=300)
        _choose(page, "Your diagnosis", number - 1)
        _choose(page, "Your management call")
        page.get_by_role("button", name="Commit my answers").click()
        onward = page.get_by_role("button", name="Next case" if number < 3 else "See my result")
        onward.wait_for(timeout=180_000)
        assert page.get_by_text("Truth:").count(), "the truth is revealed after the answers"
        wait_until_idle(page, settle_ms=300)
        onward.click()
    page.get_by_role("heading", name="Your result").wait_for(timeout=180_000)
    wait_until_idle(page)
    table = page.get_by_test_id("stTable").first.inner_text()
    assert "Accuracy" in table and "You" in table and "The model" in table
    screenshot_whole(page, ARTIFACTS / "quiz_result.png")
    assert not page.locator(EXCEPTION).count()
    page.close()


@pytest.mark.browser
def test_compare_and_read_only_pages_and_no_tensorflow(server, browser, example):
    url, process, _ = server
    image, _, _ = example
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    text = compare_upload(page, url, image)
    usable = [c for c in model_zoo.list_models() if c["status"] == "ok"]
    assert all(c["display_name"] in text for c in usable), "a row per model"
    screenshot_whole(page, ARTIFACTS / "compare.png")
    assert not page.locator(EXCEPTION).count(), "exception on compare"
    for path, marker in READ_ONLY_PAGES:
        visit(page, url, path, marker)
        assert not page.locator(EXCEPTION).count(), f"exception on {path}"
    page.close()
    assert not tensorflow_loaded(process.pid), "the hosted app loaded TensorFlow"


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
        assert not page.locator(EXCEPTION).count()
        page.close()
