"""Start `streamlit run` on a free local port and drive Debian's chromium with Playwright.

Shared by the real-browser tests and the start-up / memory benchmark.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

ROOT = Path(__file__).resolve().parent.parent
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
            time.sleep(0.2)
    raise TimeoutError("streamlit did not become healthy")


@contextlib.contextmanager
def streamlit_server(log_path: Path, env: Optional[dict] = None,
                     python: Optional[str] = None) -> Iterator[tuple[str, subprocess.Popen, float]]:
    """Yields (url, process, perf_counter at launch); stops the server afterwards. `python`: another
    interpreter to serve with (e.g. a virtual environment holding only requirements.txt)."""
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            [python or sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
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


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless Debian chromium driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MB, from /proc (Linux)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":")
            values[key] = int(value.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def upload_and_wait(page, url: str, image_path: Path, timeout_ms: int = 180_000) -> str:
    """Open the Classify page, upload an image, wait for the headline; returns its text."""
    page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
    page.get_by_text("Classify a skin lesion").wait_for(timeout=timeout_ms)
    # Wait for the page's first script run to end: a file set while the uploader is still being rendered
    # can be dropped by the re-render (seen as an empty uploader and no prediction, about 1 start in 10).
    wait_until_idle(page, timeout_ms, settle_ms=200)
    deadline = time.monotonic() + timeout_ms / 1000
    set_file(page, image_path)
    headline = page.get_by_text("Most likely:")
    headline.wait_for(timeout=max(1.0, deadline - time.monotonic()) * 1000)
    return headline.inner_text()


def set_file(page, image_path: Path) -> None:
    """Give the page's first file uploader a file, and set it again if the uploader does not list it (a file set
    during a re-render can still be dropped)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(UPLOAD_ATTEMPTS):
        page.locator("input[type=file]").first.set_input_files(str(image_path))
        try:
            page.get_by_test_id("stFileChip").first.wait_for(timeout=UPLOAD_SEEN_MS)
            return
        except PlaywrightTimeout:
            if attempt + 1 == UPLOAD_ATTEMPTS:
                raise


UPLOAD_ATTEMPTS = 3
UPLOAD_SEEN_MS = 20_000


# True in the browser once the script run has finished: no skeleton placeholders, no "Running" status.
IDLE_JS = """() => !document.querySelector('[data-testid="stSkeleton"]')
                 && !document.querySelector('[data-testid="stStatusWidget"]')"""


def wait_until_idle(page, timeout_ms: int = 120_000, settle_ms: int = 1000) -> None:
    """Wait until the script run has finished: no skeleton placeholders and no 'Running' status."""
    page.wait_for_function(IDLE_JS, timeout=timeout_ms)
    page.wait_for_timeout(settle_ms)


def accepted_test_images(card: dict, data_dir: Path, count: int) -> list[Path]:
    """`count` test images of the card's dataset, spread over the split, that the model's
    'not dermoscopy' check accepts (the page refuses the others before predicting)."""
    import model_zoo

    model = model_zoo.load(card["id"])
    rows = [r for r in model_zoo.read_predictions(card["id"]) if r["split"] == "test"]
    candidates = [Path(data_dir) / card["dataset"] / rows[i * len(rows) // (2 * count)]["path"] for i in range(2 * count)]
    _, features = model.predict_with_features(model_zoo.prepare_batch(candidates, model.input_size))
    keep = ~model.ood_detector.rejects(features) if model.ood_detector is not None else [True] * len(candidates)
    return [path for path, ok in zip(candidates, keep) if ok][:count]


def tensorflow_loaded(pid: int) -> bool:
    """Whether a process has TensorFlow's native library mapped (Linux /proc/<pid>/maps): the app server must not."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return "_pywrap_tensorflow" in maps or "libtensorflow" in maps


def choose_option(page, label: str, option: str, timeout_ms: int = 60_000) -> None:
    """Pick `option` in the Streamlit selectbox labelled `label`, as a person does: open it, click the entry."""
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True)).first
    # centred first: opened at the viewport's bottom edge, the list of options can fall outside it
    box.evaluate("element => element.scrollIntoView({block: 'center'})", timeout=timeout_ms)
    box.click(timeout=timeout_ms)
    page.get_by_role("option", name=option, exact=True).click(timeout=timeout_ms)


def show_heatmap(page, method: str, timeout_ms: int = 300_000) -> None:
    """On Classify, after a prediction: switch the heatmap method and wait until its overlay is drawn.

    Waits for the running script first: clicking a select while the page still grows (the first heatmap,
    images loading) can leave its options outside the viewport."""
    wait_until_idle(page, timeout_ms, settle_ms=300)
    choose_option(page, "Method", method)
    page.get_by_text(f"{method} for ", exact=False).first.wait_for(timeout=timeout_ms)
    wait_until_idle(page, timeout_ms, settle_ms=300)


def compare_upload(page, url: str, image_path: Path, timeout_ms: int = 300_000) -> str:
    """Open Compare, upload an image, wait for every model's row and heatmap; returns the page's text."""
    page.goto(f"{url}/compare", wait_until="domcontentloaded", timeout=timeout_ms)
    page.get_by_text("Compare models on one image").wait_for(timeout=timeout_ms)
    wait_until_idle(page, timeout_ms, settle_ms=200)
    set_file(page, image_path)
    page.get_by_text("Grad-CAM of each model's top class").wait_for(timeout=timeout_ms)
    wait_until_idle(page, timeout_ms, settle_ms=500)
    return page.inner_text("body")


READ_ONLY_PAGES = (("evaluation", "Evaluation"), ("model_cards", "Model card"), ("train", "Train"),
                   ("about", "not a medical device"))


def visit(page, url: str, path: str, text: str, timeout_ms: int = 180_000) -> None:
    """Open one page by its URL and wait until it has rendered."""
    page.goto(f"{url}/{path}", wait_until="domcontentloaded", timeout=timeout_ms)
    page.get_by_text(text).first.wait_for(timeout=timeout_ms)
    wait_until_idle(page, timeout_ms)


# The height of everything the page shows: Streamlit scrolls inside its main section, not the document.
CONTENT_HEIGHT_JS = """() => Math.max(document.body.scrollHeight,
    ...[...document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"]')]
        .map(element => element.scrollHeight))"""
CONTENT_WIDTH_JS = """() => Math.max(document.documentElement.scrollWidth,
    ...[...document.querySelectorAll('[data-testid="stMain"], [data-testid="stMainBlockContainer"]')]
        .map(element => element.scrollWidth))"""


def screenshot_whole(page, path: Path, max_height: int = 16_000) -> None:
    """A screenshot of the whole page, top to bottom. Playwright's full_page sees only the document, which
    Streamlit keeps one viewport tall, so the viewport is stretched to the content for the shot."""
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(max_height, page.evaluate(CONTENT_HEIGHT_JS))})
    wait_until_idle(page, settle_ms=800)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


def content_width(page) -> int:
    """How wide the page's content is, in CSS pixels (wider than the viewport: the reader scrolls sideways)."""
    return int(page.evaluate(CONTENT_WIDTH_JS))
