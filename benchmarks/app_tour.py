"""A visitor's tour of every page in a real browser: start-up, the server's peak memory, and whether TensorFlow loads.

Starts `streamlit run` as a hosted copy runs it (no data folder: DERMLAB_DATA_DIR points at an empty folder),
opens Classify in headless chromium, uploads an image and waits for the prediction (timed from launching the
server), draws Grad-CAM++ and Score-CAM, runs Compare with every model, then opens Evaluation, Model cards,
Train and About. At the end it reads the server's peak RSS (VmHWM) and whether TensorFlow's native library
is mapped into it.

Two settings in the same command: the baseline is the Keras path (DERMLAB_BACKEND=keras: every model and
heatmap on TensorFlow, as the app served models without a model.tflite), then the app as it is (LiteRT).
Goals of the hosted demo: peak RSS <= 600 MB, TensorFlow never loaded, first prediction <= 10 s.

    python benchmarks/app_tour.py [--rounds 1] [--image PATH] [--with-data]
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.app_server import (READ_ONLY_PAGES, ROOT, chromium, compare_upload, rss_mb,  # noqa: E402
                                   show_heatmap, streamlit_server, tensorflow_loaded, upload_and_wait, visit)

LOGS = ROOT / "test-artifacts"
EXAMPLES = ROOT / "assets" / "examples"
SETTINGS = {"baseline: Keras path (TensorFlow)": {"DERMLAB_BACKEND": "keras"}, "app as it is (LiteRT)": {}}
GOALS = {"peak_mb": 600.0, "first_s": 10.0}


def example_image(dataset: str = "ham10000") -> Path:
    """The first bundled example case of a dataset (assets/examples/manifest.csv): a test-split image."""
    with open(EXAMPLES / "manifest.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("dataset") == dataset]
    if not rows:
        raise SystemExit(f"No bundled {dataset} example in {EXAMPLES}; run `python -m trainer examples` first.")
    return EXAMPLES / rows[0]["file"]


def tour(image: Path, env: dict, python: Optional[str] = None) -> dict:
    """One fresh server, one visitor through every page; the figures of that run, with the server's RSS
    after each step (to see which page costs memory)."""
    with chromium() as browser, streamlit_server(LOGS / "tour_streamlit.log", env, python) as (url, process, started):
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        upload_and_wait(page, url, image)
        result = {"first_s": time.perf_counter() - started, "after_first_mb": rss_mb(process.pid)[0]}
        steps, memory = {}, {"first prediction": rss_mb(process.pid)[0]}
        for method in ("Grad-CAM++", "Score-CAM"):
            begin = time.perf_counter()
            show_heatmap(page, method)
            steps[method] = time.perf_counter() - begin
            memory[method] = rss_mb(process.pid)[0]
        begin = time.perf_counter()
        compare_upload(page, url, image)
        steps["Compare (every model)"] = time.perf_counter() - begin
        memory["Compare"] = rss_mb(process.pid)[0]
        for path, text in READ_ONLY_PAGES:
            visit(page, url, path, text)
            memory[path] = rss_mb(process.pid)[0]
        page.close()
        result.update(steps=steps, memory=memory, final_mb=rss_mb(process.pid)[0], peak_mb=rss_mb(process.pid)[1],
                      tensorflow=tensorflow_loaded(process.pid))
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--image", type=Path, help="image to upload (default: the first bundled HAM10000 example)")
    parser.add_argument("--with-data", action="store_true", help="keep the data folder visible to the server")
    parser.add_argument("--app-python", help="serve the app as it is with this interpreter (e.g. a virtual "
                                             "environment with requirements.txt only, which has no TensorFlow)")
    args = parser.parse_args()
    image = args.image or example_image()
    empty = tempfile.mkdtemp(prefix="dermlab-no-data-")
    base_env = {} if args.with_data else {"DERMLAB_DATA_DIR": empty}
    runs: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    for round_index in range(args.rounds):
        for name, env in SETTINGS.items():
            python = args.app_python if not env else None       # the baseline needs TensorFlow
            result = tour(image, {**base_env, **env}, python)
            runs[name].append(result)
            steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in result["steps"].items())
            print(f"round {round_index + 1}, {name}: first prediction {result['first_s']:.1f} s; {steps}; RSS after "
                  f"the first prediction {result['after_first_mb']:.0f} MB, at the end {result['final_mb']:.0f} MB, "
                  f"peak {result['peak_mb']:.0f} MB; TensorFlow loaded: {result['tensorflow']}", flush=True)
            print("  RSS after each step: " + ", ".join(f"{k} {v:.0f} MB" for k, v in result["memory"].items()),
                  flush=True)
    print(f"image: {image.relative_to(ROOT) if image.is_relative_to(ROOT) else image}; data folder "
          f"{'visible' if args.with_data else 'absent'}; app served by {args.app_python or sys.executable}; "
          f"median of {args.rounds} round(s)")
    medians = {name: {key: statistics.median(r[key] for r in results) for key in ("first_s", "peak_mb", "final_mb")}
               for name, results in runs.items()}
    for name, m in medians.items():
        loaded = any(r["tensorflow"] for r in runs[name])
        print(f"{name}: start -> first prediction {m['first_s']:.1f} s; peak RSS {m['peak_mb']:.0f} MB; "
              f"RSS at the end {m['final_mb']:.0f} MB; TensorFlow loaded: {loaded}")
    base, ours = (medians[name] for name in SETTINGS)
    print(f"ratio app / baseline: first prediction {ours['first_s'] / base['first_s']:.2f}, peak RSS "
          f"{ours['peak_mb'] / base['peak_mb']:.2f}")
    met = ours["peak_mb"] <= GOALS["peak_mb"] and ours["first_s"] <= GOALS["first_s"] and not any(
        r["tensorflow"] for r in runs[list(SETTINGS)[-1]])
    print(f"goals (peak <= {GOALS['peak_mb']:.0f} MB, first prediction <= {GOALS['first_s']:.0f} s, no TensorFlow): "
          f"{'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
