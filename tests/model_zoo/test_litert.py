"""LiteRT serving (model.tflite): same answers as Keras, no TensorFlow in the app's process, safe fallbacks."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import model_zoo
from model_zoo import litert, store
from model_zoo.explainers import create_explainer
from model_zoo.preprocessing import load_image, prepare_image

ROOT = Path(__file__).resolve().parents[2]
EXPORTED = [c for c in model_zoo.list_models() if c["status"] == "ok" and c.get("litert")]


def _test_images(card: dict, data_dir, count: int) -> np.ndarray:
    rows = [r for r in model_zoo.read_predictions(card["id"]) if r["split"] == "test"][3::11][:count]
    size = tuple(card["input_size"])
    return np.stack([prepare_image(load_image(data_dir / card["dataset"] / r["path"]), size) for r in rows])


def test_the_default_model_is_exported():
    default = model_zoo.default_model_id(model_zoo.list_models())
    assert any(c["id"] == default for c in EXPORTED), "the app's default model should be served by LiteRT"


@pytest.mark.parametrize("card", EXPORTED, ids=[c["id"] for c in EXPORTED])
def test_litert_equals_keras_on_real_test_images(card, data_dir):
    served = model_zoo.load(card["id"])
    assert served.backend == "litert", served.backend_reason
    images = _test_images(card, data_dir, 8)
    probabilities, features = served.predict_with_features(images, calibrated=False)
    keras_model = model_zoo.load(card["id"], backend="keras")
    assert keras_model.backend == "keras"
    plain_p, plain_f = keras_model.predict_with_features(images, calibrated=False)
    np.testing.assert_allclose(probabilities, keras_model.keras_model.predict(images, verbose=0), atol=1e-4)
    np.testing.assert_allclose(probabilities, plain_p, atol=1e-4)
    np.testing.assert_allclose(features, plain_f, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("card", EXPORTED, ids=[c["id"] for c in EXPORTED])
def test_litert_gradcam_equals_the_gradient_grad_cam(card, data_dir):
    """Against the gradient Grad-CAM on Keras (same definition for an ensemble's several layers), any class;
    against tf-keras-vis for the top class (tf-keras-vis averages an ensemble's per-layer maps instead)."""
    served = model_zoo.load(card["id"])
    fast = served.explainer("gradcam")
    assert type(fast).__name__ == "ClassMapGradCAM"
    gradient = create_explainer("gradcam", served.keras_model, card["cam_layer"])
    reference = create_explainer("gradcam_tfkv", served.keras_model, card["cam_layer"])
    for image in _test_images(card, data_dir, 4):
        top = int(np.argmax(served.predict_arrays(image[None])[0]))
        for target in (top, (top + 1) % len(card["classes"])):
            a, b = fast(image, target)[0], gradient(image, target)[0]
            assert a.shape == b.shape == tuple(card["input_size"])
            assert np.corrcoef(a.ravel(), b.ravel())[0, 1] >= 0.99
        assert np.corrcoef(fast(image, top)[0].ravel(), reference(image, top)[0].ravel())[0, 1] >= 0.95


def test_the_app_path_never_imports_tensorflow(data_dir):
    """Prediction, OOD features, calibration and Grad-CAM of the default model in a fresh process."""
    card = next(c for c in EXPORTED if c["id"] == model_zoo.default_model_id(model_zoo.list_models()))
    image = next(iter(sorted((data_dir / card["dataset"]).rglob("*.jpg"))))
    script = f"""
import sys, model_zoo
model = model_zoo.load({card['id']!r})
p = model.predict([{str(image)!r}])
heat = model.explainer("gradcam")(model_zoo.prepare_batch([{str(image)!r}], model.input_size), int(p.argmax()))
assert model.ood_detector is not None
print(model.backend, sorted(m for m in ("tensorflow", "keras") if m in sys.modules), heat.shape)
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[0].startswith("litert [] (1,"), out.stdout


def _copy_model(model_id: str, zoo: Path) -> Path:
    shutil.copytree(store.zoo_dir() / model_id, zoo / model_id)
    return zoo / model_id


def test_a_damaged_or_missing_tflite_falls_back_to_keras(tmp_path, monkeypatch):
    model_id = EXPORTED[0]["id"]
    zoo = tmp_path / "zoo"
    folder = _copy_model(model_id, zoo)
    with open(folder / litert.LITERT_FILE, "r+b") as handle:     # same size, one byte changed
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    damaged = model_zoo.load(model_id, zoo)
    assert damaged.backend == "keras" and "sha256" in damaged.backend_reason
    (folder / litert.LITERT_FILE).unlink()
    missing = model_zoo.load(model_id, zoo)
    assert missing.backend == "keras" and "missing" in missing.backend_reason
    assert missing.predict_arrays(np.zeros((1, *missing.input_size, 3), np.float32)).shape == (1, len(missing.classes))
    monkeypatch.setenv(litert.BACKEND_ENV, "keras")
    assert model_zoo.load(EXPORTED[0]["id"]).backend == "keras"


def test_export_publishes_a_checked_file_and_records_it(tmp_path, data_dir):
    """The CLI on a small real model: a head with a dense layer gets no class maps (Grad-CAM stays on Keras)."""
    zoo = tmp_path / "zoo"
    folder = _copy_model("custom_cnn_isic_9class", zoo)
    out = subprocess.run([sys.executable, "-m", "trainer", "export", "custom_cnn_isic_9class", "--zoo-dir", str(zoo),
                          "--data-dir", str(data_dir)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    entry = json.loads((folder / store.CARD_FILE).read_text())["litert"]
    assert entry["checked_on"] == "16 validation images" and entry["max_probability_diff"] <= 1e-4
    assert entry["sha256"] == store.sha256_file(folder / litert.LITERT_FILE)
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    model = model_zoo.load("custom_cnn_isic_9class", zoo)
    assert model.backend == "litert"
    has_maps = bool(entry["cam_outputs"])
    assert type(model.explainer("gradcam")).__name__ == ("ClassMapGradCAM" if has_maps else "GradCAM")


def test_without_the_litert_package_the_keras_path_serves(monkeypatch):
    """Platforms without an ai-edge-litert wheel (e.g. Intel macOS) get the same answers from Keras."""
    monkeypatch.setattr(litert, "installed", lambda: False)
    model = model_zoo.load(EXPORTED[0]["id"])
    assert model.backend == "keras" and "not installed" in model.backend_reason
    assert type(model.explainer("gradcam")).__name__ == "GradCAM"
