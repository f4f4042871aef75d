"""Single-image prediction and heatmap latency for a zoo model, against the naive ways, in one process.

- prediction, from uploaded bytes to probabilities: our path (shared preprocessing + a
  compiled tf.function) vs `keras_model.predict` on the same prepared array;
- Grad-CAM for the top class: our compiled Grad-CAM vs tf-keras-vis Gradcam with default
  settings (clone per visualiser, eager); Grad-CAM++ and Score-CAM (batched) are timed too;
- batch mode: images/s for 100 images in one call vs one by one.

    python benchmarks/predict_latency.py [--model-id ID] [--repeats 50]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import model_zoo  # noqa: E402
from model_zoo.explainers import create_explainer  # noqa: E402
from model_zoo.preprocessing import load_image, prepare_image  # noqa: E402


def timed(fn, repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p50(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-id")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = parser.parse_args()
    card = model_zoo.get_card(args.model_id) if args.model_id else model_zoo.list_models()[0]
    model = model_zoo.load(card["id"])
    rows = [r for r in model_zoo.read_predictions(card["id"]) if r["split"] == "test"][:100]
    files = [(Path(args.data_dir) / card["dataset"] / r["path"]).read_bytes() for r in rows]
    data = files[0]
    size = model.input_size
    print(f"model {card['id']} ({card['architecture']}, {size[0]}px); {args.repeats} repeats; p50 in ms")

    ours = timed(lambda: model.predict([data]), args.repeats)
    array = prepare_image(load_image(data), size)[None]
    naive = timed(lambda: model.keras_model.predict(array, verbose=0), args.repeats)
    print(f"predict, bytes -> probabilities: ours {p50(ours):7.1f} | model.predict {p50(naive):7.1f} | "
          f"ratio {p50(naive) / p50(ours):5.1f}x")

    top = int(np.argmax(model.predict_arrays(array)[0]))
    fast = create_explainer("gradcam", model.keras_model, card["cam_layer"])
    reference = create_explainer("gradcam_tfkv", model.keras_model, card["cam_layer"])
    t_fast = timed(lambda: fast(array, top), args.repeats)
    t_ref = timed(lambda: reference(array, top), max(5, args.repeats // 5))
    corr = np.corrcoef(fast(array, top).ravel(), reference(array, top).ravel())[0, 1]
    print(f"Grad-CAM: ours {p50(t_fast):7.1f} | tf-keras-vis {p50(t_ref):7.1f} | ratio {p50(t_ref) / p50(t_fast):5.1f}x "
          f"| heatmap correlation {corr:.4f}")
    for name in ("gradcam++", "scorecam"):
        explainer = create_explainer(name, model.keras_model, card["cam_layer"])
        t = timed(lambda: explainer(array, top), max(3, args.repeats // 10), warmup=1)
        print(f"{name}: {p50(t):7.1f}")

    one_by_one = timed(lambda: [model.predict([f]) for f in files], 1, warmup=1)[0]
    batched = timed(lambda: model.predict(files), 1, warmup=1)[0]
    print(f"batch of {len(files)}: one by one {len(files) / one_by_one * 1000:6.1f} img/s | one call "
          f"{len(files) / batched * 1000:6.1f} img/s | ratio {one_by_one / batched:4.1f}x")


if __name__ == "__main__":
    main()
