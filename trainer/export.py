"""Export a zoo model to LiteRT (`model.tflite` + `head.npz`) for serving without TensorFlow (model_zoo.litert).

The export gives the probabilities, the OOD features and the CAM layers' feature maps ("fmap_<i>");
`head.npz` holds the dense layers after the CAM layers when they are global average pooling + dense
layers, so the app computes Grad-CAM, Grad-CAM++ and Score-CAM with numpy (model_zoo.explainers).

Everything is checked before it is published: on real validation images (or, without data, random
pixels) the interpreter's probabilities must match Keras' to MAX_PROBABILITY_DIFF, the head must
reproduce them from the pooled maps to MAX_HEAD_DIFF, and each heatmap method must correlate with its
Keras reference (our GradCAM, tf-keras-vis' Grad-CAM++ and Score-CAM) to MIN_CAM_CORRELATION. Files are
written under temporary names and renamed; the card records sizes and sha256 last, so a killed export
leaves the model served by Keras.
"""
from __future__ import annotations

import functools
import os
import tempfile
import uuid
from pathlib import Path
from typing import Optional

import numpy as np

from model_zoo import store
from model_zoo.constants import FEATURE_LAYER, PREDICTION_LAYER
from model_zoo.explainers import HEAD_FILE, DenseHead, as_layer_list, create_explainer, create_litert_explainer
from model_zoo.litert import LITERT_FILE, LiteRTRunner

from .data import DataError

MAX_PROBABILITY_DIFF = 1e-4
MAX_HEAD_DIFF = 1e-4          # softmax(head(pooled maps)) against the model's probabilities
# LiteRT heatmap against its Keras reference, minimum over the probe images (top class, and the next class for
# the gradient methods). Measured at 1.000 for every committed model (float32 round-off only); Score-CAM's
# bound leaves room for its top-32 channel choice flipping on a near tie of two channels' spread.
MIN_CAM_CORRELATION = {"gradcam": 0.99, "gradcam++": 0.99, "scorecam": 0.95}
PROBE_IMAGES = 16


class ExportError(RuntimeError):
    """The LiteRT model does not reproduce the Keras model; nothing was published."""


def fmap_names(cam_layers: list[str]) -> list[str]:
    return [f"fmap_{i}" for i in range(len(cam_layers))]


def dense_head(model, cam_layers: list[str], probe: np.ndarray) -> tuple[Optional[DenseHead], str]:
    """(head, "") when `pred` and the Dense layers before it (Dropout skipped) applied to the CAM layers' pooled,
    concatenated maps reproduce the model's probabilities on `probe`; else (None, why not)."""
    import keras

    layer, dense = model.get_layer(PREDICTION_LAYER), []
    while True:
        if isinstance(layer, keras.layers.Dense):
            dense.insert(0, layer)
        source = layer.input._keras_history.operation
        if not isinstance(source, (keras.layers.Dense, keras.layers.Dropout)):
            break
        layer = source
    activations = tuple(d.get_config()["activation"] for d in dense[:-1])
    try:
        head = DenseHead(tuple(np.asarray(d.kernel, np.float64) for d in dense),
                         tuple(np.asarray(d.bias, np.float64) for d in dense), activations)
    except ValueError as exc:
        return None, str(exc)
    view = keras.Model(model.inputs, [model.output, [model.get_layer(name).output for name in cam_layers]])
    probabilities, maps = view(probe, training=False)
    pooled = np.concatenate([np.asarray(m).mean(axis=(1, 2)) for m in maps], axis=1)
    if pooled.shape[1] != head.kernels[0].shape[0]:
        return None, f"the CAM layers have {pooled.shape[1]} channels, the head takes {head.kernels[0].shape[0]}"
    logits = head.logits(pooled)
    mine = np.exp(logits - logits.max(axis=1, keepdims=True))
    diff = float(np.abs(mine / mine.sum(axis=1, keepdims=True) - np.asarray(probabilities)).max())
    if diff > MAX_HEAD_DIFF:
        return None, f"pooling + {len(dense)} dense layers miss the model's probabilities by {diff:.1e}"
    return head, ""


def convert(model, cam_layers: list[str]) -> bytes:
    """TFLite flatbuffer of a "serving_default" signature: probabilities, features and the CAM layers' maps
    fmap_<i>. Built-in ops only, so the bare interpreter runs it."""
    import keras
    import tensorflow as tf

    outputs = [model.output, model.get_layer(FEATURE_LAYER).output] + [model.get_layer(n).output for n in cam_layers]
    view = keras.Model(model.inputs, outputs)

    def serve(images):
        probabilities, features, *maps = view(images, training=False)
        return {"probabilities": probabilities, "features": features, **dict(zip(fmap_names(cam_layers), maps))}

    height, width = (int(d) for d in model.input_shape[1:3])
    with tempfile.TemporaryDirectory() as folder:
        archive = keras.export.ExportArchive()
        archive.track(view)
        archive.add_endpoint("serve", functools.partial(serve),
                             input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32)])
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two heatmaps; two flat maps count as 1.0 when equal (e.g. both all zero)."""
    a, b = np.ravel(a), np.ravel(b)
    if a.std() < 1e-6 or b.std() < 1e-6:
        return float(np.allclose(a, b, atol=1e-4))
    return float(np.corrcoef(a, b)[0, 1])


def verify(path: Path, model, cam_layers: list[str], probe: np.ndarray, head: Optional[DenseHead]) -> dict:
    """Compare the interpreter with Keras on `probe`: probabilities, and every heatmap method it can serve."""
    import tensorflow as tf

    runner = LiteRTRunner(path, fmap_names(cam_layers))
    lite = runner.run_chunked(probe)
    probabilities = np.asarray(model(tf.constant(probe), training=False))
    report = {"max_probability_diff": float(np.abs(lite["probabilities"] - probabilities).max()),
              "min_cam_correlation": {}}
    size = tuple(int(d) for d in model.input_shape[1:3])
    for method in MIN_CAM_CORRELATION:
        if method != "scorecam" and head is None:
            continue
        ours = create_litert_explainer(method, runner.run_chunked, runner.fmap_outputs, size, head)
        reference = create_explainer(method, model, cam_layers)
        values = []
        for image, top in zip(probe, probabilities.argmax(axis=1)):
            targets = (int(top),) if method == "scorecam" else (int(top), (int(top) + 1) % probabilities.shape[1])
            values += [correlation(ours(image, c), reference(image[None], c)) for c in targets]
        report["min_cam_correlation"][method] = float(np.min(values))
        print(f"{method}: LiteRT against Keras on {len(probe)} images, correlation min {np.min(values):.6f} "
              f"mean {np.mean(values):.6f}", flush=True)
    return report


def probe_images(card: dict, data_dir: Optional[str], count: int = PROBE_IMAGES) -> tuple[np.ndarray, str]:
    """Validation images of the model's dataset when the data is present, else random pixels."""
    height, width = card["input_size"]
    try:
        from .data import load_images, resolve_data_dir
        from .evaluate import card_selection

        directory = resolve_data_dir(data_dir)
        rows = card_selection(card, "val", directory).sample(n=count, random_state=0)
        images = load_images(card["dataset"], rows, (height, width), directory, card["classes"]).images
        if len(images):
            return images.astype(np.float32), "validation images"
    except (DataError, OSError, ValueError, KeyError):
        pass                                   # no data here: random pixels still check the arithmetic
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (count, height, width, 3)).astype(np.float32), "random pixels"


def _publish(tmp: Path, final: Path) -> None:
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)


def _file_entry(path: Path) -> dict:
    return {"file": path.name, "size_bytes": path.stat().st_size, "sha256": store.sha256_file(path)}


def export_litert(model_id: str, root: Optional[Path] = None, data_dir: Optional[str] = None) -> dict:
    """Convert, verify, publish model.tflite (and head.npz) and record them in the card; returns the "litert" entry."""
    import model_zoo

    model = model_zoo.load(model_id, root, backend="keras")
    folder = Path(model.card["folder"])
    cam_layers = as_layer_list(model.card["cam_layer"])
    probe, probe_source = probe_images(model.card, data_dir)
    head, no_head = dense_head(model.keras_model, cam_layers, probe)
    if head is None:
        print(f"no head weights, Grad-CAM and Grad-CAM++ stay on Keras: {no_head}", flush=True)
    data = convert(model.keras_model, cam_layers)
    tag = uuid.uuid4().hex[:8]
    tmp, tmp_head = folder / f".{LITERT_FILE}.{tag}.tmp", folder / f".{HEAD_FILE}.{tag}.tmp"
    try:
        tmp.write_bytes(data)
        if head is not None:
            with open(tmp_head, "wb") as handle:
                head.save(handle)
        report = verify(tmp, model.keras_model, cam_layers, probe, head)
        if report["max_probability_diff"] > MAX_PROBABILITY_DIFF:
            raise ExportError(f"LiteRT probabilities differ from Keras by {report['max_probability_diff']:.2e}")
        for method, value in report["min_cam_correlation"].items():
            if value < MIN_CAM_CORRELATION[method]:
                raise ExportError(f"LiteRT {method} correlates {value:.4f} with Keras' (at least "
                                  f"{MIN_CAM_CORRELATION[method]} needed)")
        if head is not None:
            _publish(tmp_head, folder / HEAD_FILE)
        else:
            (folder / HEAD_FILE).unlink(missing_ok=True)
        _publish(tmp, folder / LITERT_FILE)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_head.unlink(missing_ok=True)
    entry = {**_file_entry(folder / LITERT_FILE), "fmap_outputs": fmap_names(cam_layers),
             **({"head": {**_file_entry(folder / HEAD_FILE), "dense_layers": len(head.kernels)}} if head else {}),
             "checked_on": f"{len(probe)} {probe_source}", **report}
    store.update_card(folder, {"litert": entry})
    return entry
