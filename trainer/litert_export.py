"""Export a zoo model to LiteRT (`model.tflite`) for serving without TensorFlow (model_zoo.litert).

The conversion is checked before anything is published: on real validation images (or, without
data, random pixels) the interpreter's probabilities must match Keras' to MAX_PROBABILITY_DIFF and
its Grad-CAM to MIN_CAM_CORRELATION. The file is written under a temporary name and renamed; the
card records its size and sha256 last, so a killed export leaves the model served by Keras.
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
from model_zoo.explainers import ClassMapGradCAM, as_layer_list, create_explainer
from model_zoo.litert import LITERT_FILE, LiteRTRunner

from .data import DataError

MAX_PROBABILITY_DIFF = 1e-4
MIN_CAM_CORRELATION = 0.99
GAP_TOLERANCE = 1e-3          # |avg_pool - mean of the CAM layers| above this: the head is not plain pooling
PROBE_IMAGES = 16


class ExportError(RuntimeError):
    """The LiteRT model does not reproduce the Keras model; nothing was published."""


def linear_head_sections(model, cam_layers: list[str], probe: np.ndarray) -> Optional[list[np.ndarray]]:
    """Per CAM layer, its rows of the `pred` kernel, when `pred`'s input is the global average of the CAM
    layers' maps concatenated in order (checked on `probe`); None when it is not (e.g. extra dense layers)."""
    import keras

    pred = model.get_layer("pred")
    view = keras.Model(model.inputs, [[model.get_layer(name).output for name in cam_layers], pred.input])
    maps, penultimate = view(probe, training=False)
    pooled = np.concatenate([np.asarray(m).mean(axis=(1, 2)) for m in maps], axis=1)
    if pooled.shape != tuple(penultimate.shape) or np.abs(pooled - np.asarray(penultimate)).max() > GAP_TOLERANCE:
        return None
    kernel = np.asarray(pred.kernel, np.float32)
    bounds = np.cumsum([0] + [int(m.shape[-1]) for m in maps])
    return [kernel[start:end] for start, end in zip(bounds[:-1], bounds[1:])]


def convert(model, cam_layers: list[str], sections: Optional[list[np.ndarray]]) -> bytes:
    """TFLite flatbuffer of a "serving_default" signature: probabilities, features and (with `sections`)
    the class maps cam_<i> = A_i . W_i / (h_i w_i). Built-in ops only, so the bare interpreter runs it."""
    import keras
    import tensorflow as tf

    from model_zoo.ood import FEATURE_LAYER

    outputs = [model.output, model.get_layer(FEATURE_LAYER).output]
    outputs += [model.get_layer(name).output for name in cam_layers] if sections else []
    view = keras.Model(model.inputs, outputs)
    weights = [tf.constant(w) for w in sections or []]

    def serve(images):
        probabilities, features, *maps = view(images, training=False)
        result = {"probabilities": probabilities, "features": features}
        for i, (feature_map, w) in enumerate(zip(maps, weights)):
            area = float(feature_map.shape[1] * feature_map.shape[2])
            result[f"cam_{i}"] = tf.einsum("nhwk,kc->nhwc", feature_map, w) / area
        return result

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


def verify(path: Path, model, cam_layers: list[str], probe: np.ndarray, has_cams: bool) -> dict:
    """Compare the interpreter with Keras on `probe`: probabilities, features and Grad-CAM of the top class."""
    import tensorflow as tf

    runner = LiteRTRunner(path, len(cam_layers) if has_cams else 0)
    lite = runner(probe)
    probabilities = np.asarray(model(tf.constant(probe), training=False))
    report = {"max_probability_diff": float(np.abs(lite["probabilities"] - probabilities).max())}
    if has_cams:
        maps = lambda batch: [runner(batch)[f"cam_{i}"] for i in range(len(cam_layers))]  # noqa: E731
        keras_cam = create_explainer("gradcam", model, cam_layers)
        lite_cam = ClassMapGradCAM(maps, model.input_shape[1:3])
        correlations = []
        for image, top in zip(probe, probabilities.argmax(axis=1)):
            a, b = keras_cam(image[None], int(top))[0].ravel(), lite_cam(image[None], int(top))[0].ravel()
            correlations.append(float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float(np.allclose(a, b)))
        report["min_cam_correlation"] = float(np.min(correlations))
    return report


def probe_images(card: dict, data_dir: Optional[str], count: int = PROBE_IMAGES) -> tuple[np.ndarray, str]:
    """Validation images of the model's dataset when the data is present, else random pixels."""
    height, width = card["input_size"]
    try:
        from .data import load_images, resolve_data_dir
        from .evaluate import card_selection

        rows = card_selection(card, "val").sample(n=count, random_state=0)
        images = load_images(card["dataset"], rows, (height, width), resolve_data_dir(data_dir), card["classes"]).images
        if len(images):
            return images.astype(np.float32), "validation images"
    except (DataError, OSError, ValueError, KeyError):
        pass                                   # no data here: random pixels still check the arithmetic
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (count, height, width, 3)).astype(np.float32), "random pixels"


def export_litert(model_id: str, root: Optional[Path] = None, data_dir: Optional[str] = None) -> dict:
    """Convert, verify, publish model.tflite and record it in the card; returns the card's "litert" entry."""
    import model_zoo

    model = model_zoo.load(model_id, root, backend="keras")
    folder = Path(model.card["folder"])
    cam_layers = as_layer_list(model.card["cam_layer"])
    probe, probe_source = probe_images(model.card, data_dir)
    sections = linear_head_sections(model.keras_model, cam_layers, probe)
    data = convert(model.keras_model, cam_layers, sections)
    tmp = folder / f".{LITERT_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        tmp.write_bytes(data)
        report = verify(tmp, model.keras_model, cam_layers, probe, sections is not None)
        if report["max_probability_diff"] > MAX_PROBABILITY_DIFF:
            raise ExportError(f"LiteRT probabilities differ from Keras by {report['max_probability_diff']:.2e}")
        if report.get("min_cam_correlation", 1.0) < MIN_CAM_CORRELATION:
            raise ExportError(f"LiteRT Grad-CAM correlates {report['min_cam_correlation']:.4f} with Keras'")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, folder / LITERT_FILE)
    finally:
        tmp.unlink(missing_ok=True)
    entry = {"file": LITERT_FILE, "size_bytes": len(data), "sha256": store.sha256_file(folder / LITERT_FILE),
             "cam_outputs": [f"cam_{i}" for i in range(len(cam_layers))] if sections else [],
             "checked_on": f"{len(probe)} {probe_source}", **report}
    card = store.read_json(folder / store.CARD_FILE)
    card["litert"] = entry
    store.write_json_atomic(folder / store.CARD_FILE, card)
    return entry
