"""App start-up to first prediction in a real browser, and the server's memory, in one run.

Start `streamlit run`, open the Classify page in headless chromium, upload a
test image and wait until the prediction is shown; the time is counted from
launching the server (the model loads on the first upload). The server's RSS is
read from /proc when the prediction shows and again once the page is idle (the
Grad-CAM drawn). In the last round the Compare page then runs every zoo model once.

Each round starts the server three times: the baseline (DERMLAB_BACKEND=keras and
DERMLAB_KERAS_EXTRAS=1: every model on TensorFlow/Keras, imported with scikit-learn
and pyplot, as the app was before), the Keras path as it was last tuned
(DERMLAB_BACKEND=keras), then the app as it is (LiteRT for a model with a
model.tflite); the median over rounds and the ratios are printed. Extra environment for
both runs (e.g. MALLOC_ARENA_MAX=2) can be given with --env.
(A background preload of the default model was tried and removed: it
intermittently left the first upload waiting for minutes.)

    python benchmarks/app_startup.py [--rounds 2] [--env NAME=VALUE ...] [--data-dir ../shared/data]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import model_zoo  # noqa: E402
from benchmarks.app_server import (ROOT, accepted_test_images, chromium, rss_mb, streamlit_server,  # noqa: E402
                                   upload_and_wait, wait_until_idle)

LOGS = ROOT / "test-artifacts"
TIMEOUT_MS = 120_000
SETTINGS = {"baseline (Keras with its extras)": {"DERMLAB_KERAS_EXTRAS": "1", "DERMLAB_BACKEND": "keras"},
            "Keras path (no LiteRT)": {"DERMLAB_BACKEND": "keras"},
            "app as it is": {}}


def first_prediction(image: Path, env: dict, compare: bool) -> dict:
    with chromium() as browser, streamlit_server(LOGS / "bench_streamlit.log", env) as (url, process, started):
        page = browser.new_page()
        try:
            upload_and_wait(page, url, image, timeout_ms=TIMEOUT_MS)
        except Exception as exc:  # noqa: BLE001  (a stuck first upload is reported, not fatal)
            page.screenshot(path=str(LOGS / f"bench_stuck_{process.pid}.png"), full_page=True)
            return {"error": f"{type(exc).__name__}; stacks in {dump_stacks(process.pid)}, page in "
                             f"{LOGS / f'bench_stuck_{process.pid}.png'}"}
        seconds = time.perf_counter() - started
        result = {"seconds": seconds, "rss_default": rss_mb(process.pid)}
        wait_until_idle(page)
        result["rss_idle"] = rss_mb(process.pid)
        if compare:
            page.goto(f"{url}/compare", wait_until="domcontentloaded")
            page.get_by_text("Compare models on one image").wait_for(timeout=120_000)
            wait_until_idle(page, settle_ms=200)
            page.locator("input[type=file]").first.set_input_files(str(image))
            page.get_by_text("Grad-CAM of each model's top class").wait_for(timeout=300_000)
            page.wait_for_timeout(2000)
            result["rss_all_models"] = rss_mb(process.pid)
        page.close()
        return result


def dump_stacks(pid: int) -> str:
    """Every thread's Python stack of the server, with py-spy when it is installed (requirements-dev.txt)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    path = LOGS / f"bench_stuck_{pid}.txt"
    if not Path(spy).is_file():
        return "(py-spy is not installed)"
    result = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60)
    path.write_text(result.stdout + result.stderr)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE for both server runs")
    parser.add_argument("--no-compare", action="store_true", help="skip the Compare page")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    card = model_zoo.list_models()[0]
    image = accepted_test_images(card, Path(args.data_dir), 1)[0]
    results: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    for round_index in range(args.rounds):
        for name, env in SETTINGS.items():
            compare = not args.no_compare and round_index == args.rounds - 1
            result = first_prediction(image, {**extra, **env}, compare=compare)
            if "error" in result:
                print(f"round {round_index + 1}, {name}: no prediction within {TIMEOUT_MS / 1000:.0f} s: "
                      f"{result['error']}", flush=True)
                continue
            results[name].append(result)
            print(f"round {round_index + 1}, {name}: {result['seconds']:.1f} s, "
                  f"RSS {result['rss_idle'][0]:.0f} MB", flush=True)
    print(f"default model: {card['id']}; zoo: {len(model_zoo.list_models())} models; extra environment: {extra or 'none'}; "
          f"median of {args.rounds} rounds")
    medians = {}
    for name, runs in results.items():
        medians[name] = {
            "seconds": statistics.median(r["seconds"] for r in runs),
            "rss_default": statistics.median(r["rss_default"][0] for r in runs),
            "rss_idle": statistics.median(r["rss_idle"][0] for r in runs),
            "peak_idle": statistics.median(r["rss_idle"][1] for r in runs),
        }
        m = medians[name]
        print(f"{name}: start -> first prediction shown {m['seconds']:.1f} s; server RSS when it shows "
              f"{m['rss_default']:.0f} MB, with the Grad-CAM drawn {m['rss_idle']:.0f} MB (peak {m['peak_idle']:.0f} MB)")
        if not runs:
            print(f"{name}: no run finished")
            return
        if "rss_all_models" in runs[-1]:
            print(f"{name}: server RSS after every zoo model once (cache bound "
                  f"{__import__('app_cache').MODEL_CACHE_SIZE} models): {runs[-1]['rss_all_models'][0]:.0f} MB "
                  f"(peak {runs[-1]['rss_all_models'][1]:.0f} MB)")
    names = list(SETTINGS)
    base, ours = medians[names[0]], medians[names[-1]]
    print(f"ratio app / baseline: time {ours['seconds'] / base['seconds']:.2f}, RSS with the Grad-CAM drawn "
          f"{ours['rss_idle'] / base['rss_idle']:.2f}, peak {ours['peak_idle'] / base['peak_idle']:.2f}")


if __name__ == "__main__":
    main()
