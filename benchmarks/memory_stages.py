"""Where the app server's memory goes: RSS after each step the Classify page takes, per launch setting.

Each setting runs in a fresh child process (environment variables such as
MALLOC_ARENA_MAX must be set before a process starts), which imports what the
app imports, loads the default model, predicts and draws a Grad-CAM, then
predicts a batch of 100 images, printing its RSS (and peak) after every step.
The first setting is the baseline ("before": the Keras path, Keras imported with
scikit-learn and pyplot, chunks of 32, as the app did before); "keras" is the Keras
path as tuned, "default" the app as it is (LiteRT when the model has model.tflite); the others print their RSS
after one image + Grad-CAM and their peak as ratios to it. BENCH_PREDICT_BATCH
sets model_zoo.zoo.PREDICT_BATCH in the child.

    python benchmarks/memory_stages.py [--settings default arena2 ...]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {
    # before: Keras imported with scikit-learn and pyplot, chunks of 32 images
    "before": {"DERMLAB_KERAS_EXTRAS": "1", "BENCH_PREDICT_BATCH": "32", "DERMLAB_BACKEND": "keras"},
    "keras-extras": {"DERMLAB_KERAS_EXTRAS": "1", "DERMLAB_BACKEND": "keras"},
    "keras": {"DERMLAB_BACKEND": "keras"},          # the Keras path as tuned (no LiteRT)
    "chunk32": {"BENCH_PREDICT_BATCH": "32"},
    "default": {},
    "arena2": {"MALLOC_ARENA_MAX": "2"},
    "threads1": {"TF_NUM_INTEROP_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "2"},
    "arena2+threads1": {"MALLOC_ARENA_MAX": "2", "TF_NUM_INTEROP_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "2"},
    "no-onednn": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "chunk8": {"BENCH_PREDICT_BATCH": "8"},
    "chunk16": {"BENCH_PREDICT_BATCH": "16"},
    "onednn-sysalloc": {"TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "1"},
    "onednn-sysalloc+arena2": {"TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "1", "MALLOC_ARENA_MAX": "2"},
    "primitive-memuse": {"TF_MKL_OPTIMIZE_PRIMITIVE_MEMUSE": "1"},
}


def rss_mb() -> tuple[float, float]:
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":")
            values[key] = int(value.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def child() -> None:
    """Run the steps in this process and print one JSON line per step."""
    sys.path.insert(0, str(ROOT))

    def step(name: str) -> None:
        print(json.dumps([name, *rss_mb()]), flush=True)

    step("python")
    import streamlit  # noqa: F401
    import streamlit.web.bootstrap  # noqa: F401  (the server side: tornado, watchers)
    step("streamlit")
    import altair  # noqa: F401
    import pandas  # noqa: F401
    step("pandas + altair")
    import app_cache  # noqa: F401  (the app's own modules: model_zoo and its light imports)
    step("app modules")
    import model_zoo
    from model_zoo import zoo

    card = model_zoo.list_models()[0]
    if os.environ.get("DERMLAB_BACKEND") == "keras" or not card.get("litert"):
        zoo.import_keras()              # as model_zoo.load does on the Keras path; TensorFlow comes with Keras
    step("tensorflow + keras (Keras path only)")
    import numpy as np

    zoo.PREDICT_BATCH = int(os.environ.get("BENCH_PREDICT_BATCH", zoo.PREDICT_BATCH))
    model = model_zoo.load(card["id"])
    step("model loaded")
    height, width = model.input_size
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (1, height, width, 3)).astype(np.float32)
    model.predict_with_features(image)
    model.ood_detector
    step("first prediction")
    for _ in range(20):
        model.predict_with_features(image)
    step("20 more predictions")
    explainer = model.explainer("gradcam")
    explainer(image, 0)
    step("Grad-CAM")
    for _ in range(20):
        explainer(image, 0)
    step("20 more Grad-CAMs")
    batch = rng.uniform(0, 255, (100, height, width, 3)).astype(np.float32)
    model.predict_with_features(batch)
    step("batch of 100")


def run_setting(env: dict) -> list[tuple[str, float, float]]:
    output = subprocess.run([sys.executable, __file__, "--child"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env}, check=True).stdout
    return [tuple(json.loads(line)) for line in output.splitlines() if line.startswith("[")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["before", "keras", "default"],
                        choices=list(SETTINGS))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    results = {name: run_setting(SETTINGS[name]) for name in args.settings}
    names = list(results)
    print(f"RSS in MB after each step (peak in brackets); settings: " +
          "; ".join(f"{n} = {SETTINGS[n] or 'no extra environment'}" for n in names))
    print(f"{'step':24s}" + "".join(f"{n:>24s}" for n in names))
    for i, (step_name, *_) in enumerate(results[names[0]]):
        print(f"{step_name:24s}" + "".join(f"{results[n][i][1]:>15.0f} [{results[n][i][2]:5.0f}]" for n in names))
    single = [i for i, (step_name, *_) in enumerate(results[names[0]]) if step_name == "20 more Grad-CAMs"][0]
    base_single, base_peak = results[names[0]][single][1], results[names[0]][-1][2]
    for name in names[1:]:
        now_single, now_peak = results[name][single][1], results[name][-1][2]
        print(f"{name} vs {names[0]}: RSS after one image + Grad-CAM {now_single:.0f} / {base_single:.0f} MB = "
              f"{now_single / base_single:.2f}; peak with the batch {now_peak:.0f} / {base_peak:.0f} MB = "
              f"{now_peak / base_peak:.2f}")


if __name__ == "__main__":
    main()
