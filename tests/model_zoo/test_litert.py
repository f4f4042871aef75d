"""LiteRT serving (model.tflite + head.npz): same answers and heatmaps as Keras / tf-keras-vis, no TensorFlow in the
app's process, safe fallbacks."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import model_zoo
from model_zoo import litert, store
from model_zoo.explainers import (HEAD_FILE, DenseHead, LiteRTGradCAM, LiteRTGradCAMPlusPlus, LiteRTScoreCAM,
                                  create_explainer)
from model_zoo.preprocessing import load_image, prepare_image

ROOT = Path(__file__).resolve().parents[2]
EXPORTED = [c for c in model_zoo.list_models() if c["status"] == "ok" and c.get("litert")]
METHODS = {"gradcam": LiteRTGradCAM, "gradcam++": LiteRTGradCAMPlusPlus, "scorecam": LiteRTScoreCAM}
# A single model (the small one; its head has a hidden dense layer, so the head's backpropagation is exercised)
# and the default ensemble (two CAM layers).
HEATMAP_MODELS = ["custom_cnn_isic_9class", "ensemble_224_cc_ham10000"]
HEATMAP_IMAGES = 8


def _test_images(card: dict, data_dir, count: int) -> np.ndarray:
    """`count` test-split images spread over the split file (trainer/splits/<dataset>.csv)."""
    with open(ROOT / "trainer" / "splits" / f"{card['dataset']}.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "test"]
    rows = rows[3::max(1, len(rows) // count)][:count]
    size = tuple(card["input_size"])
    return np.stack([prepare_image(load_image(data_dir / card["dataset"] / r["path"]), size) for r in rows])


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; two flat maps (e.g. all zero: no evidence for the class) count as 1 only when equal."""
    a, b = np.ravel(a), np.ravel(b)
    if a.std() < 1e-6 or b.std() < 1e-6:
        return float(np.allclose(a, b, atol=1e-4))
    return float(np.corrcoef(a, b)[0, 1])


def test_the_default_model_is_exported():
    default = model_zoo.default_model_id(model_zoo.list_models())
    assert any(c["id"] == default for c in EXPORTED), "the app's default model should be served by LiteRT"


def test_every_committed_model_serves_all_heatmaps_on_litert():
    """Each committed model has an export with feature maps and head weights: no method needs TensorFlow."""
    assert {c["id"] for c in model_zoo.list_models() if c["status"] == "ok"} == {c["id"] for c in EXPORTED}
    for card in EXPORTED:
        model = model_zoo.load(card["id"])
        for method in METHODS:
            assert model.explainer_backend(method) == ("litert", ""), (card["id"], method)
        assert card["litert"]["min_cam_correlation"].keys() == METHODS.keys()


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


@pytest.fixture(scope="module", params=HEATMAP_MODELS)
def heatmap_case(request, data_dir) -> dict:
    """One model, loaded once for all methods: the LiteRT-served model, its Keras model, 8 test images, top classes."""
    served = model_zoo.load(request.param)
    assert served.backend == "litert", served.backend_reason
    images = _test_images(served.card, data_dir, HEATMAP_IMAGES)
    tops = served.predict_arrays(images, calibrated=False).argmax(axis=1)
    return {"served": served, "keras": model_zoo.load(request.param, backend="keras").keras_model,
            "images": images, "tops": [int(t) for t in tops]}


@pytest.mark.parametrize("method", list(METHODS))
def test_litert_heatmaps_match_tf_keras_vis(heatmap_case, method):
    """tf-keras-vis stays the reference: >= 0.95 on every image for the top class. Grad-CAM's reference for tf-keras-vis
    is its Gradcam; for an ensemble that averages per-layer maps where ours adds the layers before the ReLU (by
    design, as the Keras GradCAM), so the exact check of any class is against the Keras GradCAM."""
    served, images, tops = heatmap_case["served"], heatmap_case["images"], heatmap_case["tops"]
    cam_layer = served.card["cam_layer"]
    ours = served.explainer(method)
    assert type(ours) is METHODS[method]                     # served by LiteRT, not the Keras fallback
    reference = create_explainer("gradcam_tfkv" if method == "gradcam" else method, heatmap_case["keras"], cam_layer)
    values = [_correlation(ours(image, top)[0], reference(image[None], top)[0]) for image, top in zip(images, tops)]
    assert len(values) >= 8 and min(values) >= 0.95, np.round(values, 4)
    if method != "scorecam":                                  # another class, against the same definition
        same = create_explainer(method, heatmap_case["keras"], cam_layer)
        n_classes = len(served.classes)
        for image, top in list(zip(images, tops))[:4]:
            a, b = ours(image, (top + 1) % n_classes)[0], same(image[None], (top + 1) % n_classes)[0]
            assert a.shape == b.shape == served.input_size
            assert _correlation(a, b) >= 0.99


def test_the_head_gradient_is_the_derivative_of_its_logits():
    """DenseHead.gradient against central differences on a random head with a hidden ReLU layer."""
    rng = np.random.default_rng(0)
    head = DenseHead((rng.normal(size=(6, 5)), rng.normal(size=(5, 3))), (rng.normal(size=5), rng.normal(size=3)),
                     ("relu",))
    pooled = rng.uniform(0, 2, (4, 6))
    score, grad = head.gradient(pooled, 2)
    np.testing.assert_allclose(score, head.logits(pooled)[:, 2])
    step = 1e-6
    numeric = np.stack([(head.logits(pooled + step * e)[:, 2] - head.logits(pooled - step * e)[:, 2]) / (2 * step)
                        for e in np.eye(6)], axis=1)
    np.testing.assert_allclose(grad, numeric, atol=1e-5)
    with pytest.raises(ValueError):
        DenseHead(head.kernels, head.biases, ("gelu",))


def test_the_app_path_never_imports_tensorflow(data_dir):
    """Every committed model in a fresh process: load, predict (calibrated), OOD, patient details, all three heatmaps."""
    image = next(iter(sorted((data_dir / "ham10000").rglob("*.jpg"))))
    script = f"""
import sys, model_zoo
from model_zoo.metadata import PatientDetails
for card in model_zoo.list_models():
    model = model_zoo.load(card["id"])
    p = model.predict([{str(image)!r}])
    batch = model_zoo.prepare_batch([{str(image)!r}], model.input_size)
    shapes = {{m: model.explainer(m)(batch, int(p.argmax())).shape for m in ("gradcam", "gradcam++", "scorecam")}}
    assert set(shapes.values()) == {{(1, *model.input_size)}}, shapes
    assert model.ood_detector is not None and model.ood_detector.rejects(model.predict_with_features(batch)[1]).shape == (1,)
    if model.metadata_model is not None:
        model.metadata_model.predict(model.predict_arrays(batch, calibrated=False), [PatientDetails(age=50, sex="male")])
    print(card["id"], model.backend)
print("modules", sorted(m for m in ("tensorflow", "keras", "tf_keras_vis") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().split("\n")
    assert lines[-1] == "modules []", out.stdout
    assert len(lines) == len(EXPORTED) + 1 and all(line.endswith(" litert") for line in lines[:-1]), out.stdout


def _copy_model(model_id: str, zoo: Path) -> Path:
    shutil.copytree(store.zoo_dir() / model_id, zoo / model_id)
    return zoo / model_id


def _flip_a_byte(path: Path, offset: int = 1000) -> None:
    """Same size, one byte changed."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def test_a_damaged_or_missing_tflite_falls_back_to_keras(tmp_path, monkeypatch):
    model_id = "custom_cnn_isic_9class"
    zoo = tmp_path / "zoo"
    folder = _copy_model(model_id, zoo)
    _flip_a_byte(folder / litert.LITERT_FILE)
    damaged = model_zoo.load(model_id, zoo)
    assert damaged.backend == "keras" and "sha256" in damaged.backend_reason
    backend, why = damaged.explainer_backend("scorecam")
    assert backend == "keras" and "sha256" in why
    assert type(damaged.explainer("gradcam")).__name__ == "GradCAM"
    (folder / litert.LITERT_FILE).unlink()
    missing = model_zoo.load(model_id, zoo)
    assert missing.backend == "keras" and "missing" in missing.backend_reason
    assert missing.predict_arrays(np.zeros((1, *missing.input_size, 3), np.float32)).shape == (1, len(missing.classes))
    heat = missing.explainer("gradcam++")(np.zeros((1, *missing.input_size, 3), np.float32), 0)
    assert heat.shape == (1, *missing.input_size)
    monkeypatch.setenv(litert.BACKEND_ENV, "keras")
    assert model_zoo.load(EXPORTED[0]["id"]).backend == "keras"


def test_an_export_without_heatmap_outputs_falls_back_to_keras_with_a_reason(tmp_path):
    """An export made before the heatmaps moved to LiteRT (no fmap_* outputs, no head.npz), a missing and a damaged
    head.npz: predictions stay on LiteRT, the heatmaps that cannot run there say why and run on Keras."""
    model_id = "custom_cnn_isic_9class"
    zoo = tmp_path / "zoo"
    folder = _copy_model(model_id, zoo)
    card = json.loads((folder / store.CARD_FILE).read_text())
    old = {k: v for k, v in card["litert"].items() if k not in ("fmap_outputs", "head")}
    (folder / store.CARD_FILE).write_text(json.dumps({**card, "litert": old}))
    older = model_zoo.load(model_id, zoo)
    assert older.backend == "litert"
    for method in METHODS:
        backend, why = older.explainer_backend(method)
        assert backend == "keras" and "no feature-map outputs" in why and "re-export" in why
    assert type(older.explainer("scorecam")).__name__ == "ScoreCAM"          # the tf-keras-vis one

    (folder / store.CARD_FILE).write_text(json.dumps(card))
    (folder / HEAD_FILE).rename(folder / "elsewhere.npz")
    headless = model_zoo.load(model_id, zoo)
    assert headless.explainer_backend("gradcam") == ("keras", f"{HEAD_FILE} is missing")
    assert headless.explainer_backend("gradcam++")[0] == "keras"
    assert type(headless.explainer("scorecam")) is LiteRTScoreCAM            # needs no head
    assert type(headless.explainer("gradcam")).__name__ == "GradCAM"

    (folder / "elsewhere.npz").rename(folder / HEAD_FILE)
    _flip_a_byte(folder / HEAD_FILE, 200)
    backend, why = model_zoo.load(model_id, zoo).explainer_backend("gradcam++")
    assert backend == "keras" and "does not match its card" in why


def test_export_publishes_a_checked_file_and_records_it(tmp_path, data_dir):
    """The CLI on the small real model: its head (pooling, a hidden dense layer, `pred`) goes to head.npz and every
    heatmap method is checked against Keras before anything is published."""
    zoo = tmp_path / "zoo"
    folder = _copy_model("custom_cnn_isic_9class", zoo)
    for name in (litert.LITERT_FILE, HEAD_FILE):
        (folder / name).unlink()
    out = subprocess.run([sys.executable, "-m", "trainer", "export", "custom_cnn_isic_9class", "--zoo-dir", str(zoo),
                          "--data-dir", str(data_dir)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    entry = json.loads((folder / store.CARD_FILE).read_text())["litert"]
    assert entry["checked_on"] == "16 validation images" and entry["max_probability_diff"] <= 1e-4
    assert entry["sha256"] == store.sha256_file(folder / litert.LITERT_FILE)
    assert entry["head"]["sha256"] == store.sha256_file(folder / HEAD_FILE) and entry["head"]["dense_layers"] == 2
    assert entry["fmap_outputs"] == ["fmap_0"]
    assert entry["min_cam_correlation"].keys() == METHODS.keys()
    assert min(entry["min_cam_correlation"].values()) >= 0.99
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    model = model_zoo.load("custom_cnn_isic_9class", zoo)
    assert model.backend == "litert"
    assert all(type(model.explainer(m)) is cls for m, cls in METHODS.items())


def test_without_the_litert_package_the_keras_path_serves(monkeypatch):
    """Platforms without an ai-edge-litert wheel (e.g. Intel macOS) get the same answers from Keras."""
    monkeypatch.setattr(litert, "installed", lambda: False)
    model = model_zoo.load("custom_cnn_isic_9class")
    assert model.backend == "keras" and "not installed" in model.backend_reason
    assert type(model.explainer("gradcam")).__name__ == "GradCAM"
    assert "not installed" in model.explainer_backend("gradcam++")[1]
