"""App start-up to first prediction in a real browser, and the server's memory, in one run.

Start `streamlit run`, open the Classify page in headless chromium, upload a
test image and wait until the prediction is shown; the time is counted from
launching the server (the model loads on the first upload). Then the Compare
page runs every zoo model once, and the server's RSS is read from /proc.
(A background preload of the default model was tried and removed: it
intermittently left the first upload waiting for minutes.)

    python benchmarks/app_startup.py [--data-dir ../shared/data]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import model_zoo  # noqa: E402
from benchmarks.app_server import (ROOT, accepted_test_images, chromium, rss_mb, streamlit_server,  # noqa: E402
                                   upload_and_wait)

LOGS = ROOT / "test-artifacts"


def first_prediction(image: Path, env: dict, compare: bool) -> dict:
    with chromium() as browser, streamlit_server(LOGS / "bench_streamlit.log", env) as (url, process, started):
        page = browser.new_page()
        upload_and_wait(page, url, image)
        seconds = time.perf_counter() - started
        result = {"seconds": seconds, "rss_default": rss_mb(process.pid)}
        if compare:
            page.goto(f"{url}/compare", wait_until="domcontentloaded")
            page.get_by_text("Compare models on one image").wait_for(timeout=120_000)
            page.locator("input[type=file]").first.set_input_files(str(image))
            page.get_by_text("Grad-CAM of each model's top class").wait_for(timeout=300_000)
            page.wait_for_timeout(2000)
            result["rss_all_models"] = rss_mb(process.pid)
        page.close()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    args = parser.parse_args()
    card = model_zoo.list_models()[0]
    image = accepted_test_images(card, Path(args.data_dir), 1)[0]
    result = first_prediction(image, {}, compare=True)
    print(f"default model: {card['id']}; zoo: {len(model_zoo.list_models())} models")
    print(f"start -> first prediction shown: {result['seconds']:.1f} s")
    print(f"server RSS after the default model: {result['rss_default'][0]:.0f} MB (peak {result['rss_default'][1]:.0f} MB)")
    print(f"server RSS after every zoo model once (cache bound {__import__('app_cache').MODEL_CACHE_SIZE} models): "
          f"{result['rss_all_models'][0]:.0f} MB (peak {result['rss_all_models'][1]:.0f} MB)")


if __name__ == "__main__":
    main()
