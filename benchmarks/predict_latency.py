"""Single-image prediction and heatmap latency for a zoo model, against the naive ways, in one process.

- prediction, from uploaded bytes to probabilities: the app's path (shared preprocessing, then
  LiteRT when the model has a model.tflite, see model_zoo/litert.py), the Keras path (a compiled
  tf.function) and `keras_model.predict` on the same prepared array (the naive way);
- heatmaps for the top class: the app's (numpy on the LiteRT feature maps, or Keras when the model
  has no such export) against the compiled Keras Grad-CAM and tf-keras-vis (clone per visualiser,
  eager; Score-CAM batched), with the heatmaps' correlation;
- batch mode: images/s for 100 images in one call vs one by one, for several chunk sizes
  (model_zoo.zoo.PREDICT_BATCH), with the CPU use of this process (process time / wall time,
  2.0 = both cores busy) and the forward pass alone per image at batch 1 vs per chunk: the
  floor that decides how much batching can gain. Rounds alternate; the best round counts.

    python benchmarks/predict_latency.py [--model-id ID] [--repeats 50] [--rounds 2] [--chunks 4 8 16 32 64] [--skip-cams]
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
from model_zoo import zoo  # noqa: E402
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


def seconds_and_cpu(fn) -> tuple[float, float]:
    """(wall seconds, cores used on average) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall = time.perf_counter() - wall
    return wall, (time.process_time() - cpu) / wall


def batch_mode(model, files: list[bytes], chunks: list[int], rounds: int) -> None:
    """100 images: one by one vs one call per chunk size; then the forward pass alone per image."""
    runs = {"one by one": lambda: [model.predict([f]) for f in files]}
    for chunk in chunks:
        runs[f"one call, chunks of {chunk}"] = lambda chunk=chunk: predict_in_chunks(model, files, chunk)
    for fn in runs.values():
        fn()                                                    # warm-up: one trace per shape
    best: dict[str, tuple[float, float]] = {}
    for _ in range(rounds):
        for name, fn in runs.items():
            result = seconds_and_cpu(fn)
            best[name] = min(best.get(name, result), result)
    base = best["one by one"][0]
    naive = naive_one_by_one(model, files)
    for name, (seconds, cores) in best.items():
        print(f"batch of {len(files)}, {name:24s}: {len(files) / seconds:6.1f} img/s | CPU {cores:4.2f} cores | "
              f"ratio to one by one {base / seconds:4.1f}x | to model.predict one by one {naive / seconds:5.1f}x")
    print(f"batch of {len(files)}, model.predict one by one (naive): {len(files) / naive:6.1f} img/s")
    array = model_zoo.prepare_batch(files, model.input_size)
    decode = min(seconds_and_cpu(lambda: model_zoo.prepare_batch(files, model.input_size))[0] for _ in range(rounds))
    print(f"decode + resize alone: {decode / len(files) * 1000:5.1f} ms/img")
    for chunk in [1] + chunks:
        data = array[:max(chunk, 32)]
        predict_in_chunks(model, data, chunk, prepared=True)
        seconds = min(seconds_and_cpu(lambda: predict_in_chunks(model, data, chunk, prepared=True))
                      for _ in range(rounds))
        print(f"forward pass alone, chunks of {chunk:3d}: {seconds[0] / len(data) * 1000:5.1f} ms/img | "
              f"CPU {seconds[1]:4.2f} cores")


def naive_one_by_one(model, files: list[bytes]) -> float:
    """Seconds for the naive way: decode each image, then `keras_model.predict` on it (Keras backend)."""
    keras_model = model_zoo.load(model.card["id"], backend="keras").keras_model
    keras_model.predict(model_zoo.prepare_batch(files[:1], model.input_size), verbose=0)
    start = time.perf_counter()
    for data in files:
        keras_model.predict(model_zoo.prepare_batch([data], model.input_size), verbose=0)
    return time.perf_counter() - start


def predict_in_chunks(model, images, chunk: int, prepared: bool = False):
    saved, zoo.PREDICT_BATCH = zoo.PREDICT_BATCH, chunk
    try:
        return model.predict_arrays(images) if prepared else model.predict(images)
    finally:
        zoo.PREDICT_BATCH = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-id")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of the batch-mode runs")
    parser.add_argument("--chunks", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--skip-cams", action="store_true", help="time prediction and batch mode only")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = parser.parse_args()
    card = model_zoo.get_card(args.model_id) if args.model_id else model_zoo.list_models()[0]
    model = model_zoo.load(card["id"])
    rows = [r for r in model_zoo.read_predictions(card["id"]) if r["split"] == "test"][:100]
    files = [(Path(args.data_dir) / card["dataset"] / r["path"]).read_bytes() for r in rows]
    data = files[0]
    size = model.input_size
    print(f"model {card['id']} ({card['architecture']}, {size[0]}px); {args.repeats} repeats; p50 in ms")

    keras_path = model_zoo.load(card["id"], backend="keras")
    print(f"app backend: {model.backend} {model.backend_reason}")
    ours = timed(lambda: model.predict([data]), args.repeats)
    compiled = timed(lambda: keras_path.predict([data]), args.repeats)
    array = prepare_image(load_image(data), size)[None]
    naive = timed(lambda: keras_path.keras_model.predict(array, verbose=0), args.repeats)
    print(f"predict, bytes -> probabilities: ours ({model.backend}) {p50(ours):7.1f} | Keras tf.function "
          f"{p50(compiled):7.1f} | model.predict {p50(naive):7.1f} | ratio to model.predict {p50(naive) / p50(ours):5.1f}x")

    if not args.skip_cams:
        cams(model, keras_path, card, array, args.repeats)
    print(f"app chunk size: model_zoo.zoo.PREDICT_BATCH = {zoo.PREDICT_BATCH}")
    batch_mode(model, files, args.chunks, args.rounds)


def cams(model, keras_path, card: dict, array: np.ndarray, repeats: int) -> None:
    top = int(np.argmax(model.predict_arrays(array)[0]))
    fast = model.explainer("gradcam")
    compiled = create_explainer("gradcam", keras_path.keras_model, card["cam_layer"])
    reference = create_explainer("gradcam_tfkv", keras_path.keras_model, card["cam_layer"])
    t_fast = timed(lambda: fast(array, top), repeats)
    t_compiled = timed(lambda: compiled(array, top), repeats)
    t_ref = timed(lambda: reference(array, top), max(5, repeats // 5))
    corr = np.corrcoef(fast(array, top).ravel(), reference(array, top).ravel())[0, 1]
    print(f"Grad-CAM: ours ({type(fast).__name__}) {p50(t_fast):7.1f} | Keras tf.function {p50(t_compiled):7.1f} | "
          f"tf-keras-vis {p50(t_ref):7.1f} | ratio to tf-keras-vis {p50(t_ref) / p50(t_fast):5.1f}x "
          f"| heatmap correlation {corr:.4f}")
    for name in ("gradcam++", "scorecam"):
        ours = model.explainer(name)
        reference = create_explainer(name, keras_path.keras_model, card["cam_layer"])
        t_ours = timed(lambda: ours(array, top), max(3, repeats // 10), warmup=1)
        t_ref = timed(lambda: reference(array, top), max(3, repeats // 10), warmup=1)
        corr = np.corrcoef(ours(array, top).ravel(), reference(array, top).ravel())[0, 1]
        print(f"{name}: ours ({type(ours).__name__}) {p50(t_ours):7.1f} | tf-keras-vis {p50(t_ref):7.1f} | "
              f"ratio {p50(t_ref) / p50(t_ours):5.1f}x | heatmap correlation {corr:.4f}")


if __name__ == "__main__":
    main()
