"""The fast paths give the same answers as the plain Keras / tf-keras-vis paths, on real images."""
from __future__ import annotations

import numpy as np
import pytest

import model_zoo
from model_zoo.explainers import create_explainer, list_explainers
from model_zoo.preprocessing import load_image, prepare_image

CARDS = [c for c in model_zoo.list_models() if c["status"] == "ok"]


def _images(card: dict, data_dir, count: int = 6) -> np.ndarray:
    rows = [r for r in model_zoo.read_predictions(card["id"]) if r["split"] == "test"][:: 7][:count]
    size = tuple(card["input_size"])
    return np.stack([prepare_image(load_image(data_dir / card["dataset"] / r["path"]), size) for r in rows])


@pytest.mark.parametrize("card", CARDS, ids=[c["id"] for c in CARDS])
def test_fast_predict_equals_keras_predict(card, data_dir):
    model = model_zoo.load(card["id"])
    images = _images(card, data_dir)
    fast = model.predict_arrays(images, calibrated=False)
    plain = model.keras_model.predict(images, verbose=0)
    np.testing.assert_allclose(fast, plain, atol=1e-4)


@pytest.mark.parametrize("card", CARDS, ids=[c["id"] for c in CARDS])
def test_fast_gradcam_equals_tf_keras_vis(card, data_dir):
    """Layer by layer: an ensemble's combined map (members' channels added before the ReLU) is by design not
    tf-keras-vis' average of per-layer maps; tests/trainer/test_ensemble.py checks the combination itself."""
    model = model_zoo.load(card["id"])
    images = _images(card, data_dir, 4)
    layers = card["cam_layer"] if isinstance(card["cam_layer"], list) else [card["cam_layer"]]
    for layer in layers:
        fast = create_explainer("gradcam", model.keras_model, layer)
        reference = create_explainer("gradcam_tfkv", model.keras_model, layer)
        for image in images:
            top = int(np.argmax(model.predict_arrays(image[None])[0]))
            a, b = fast(image[None], top)[0], reference(image[None], top)[0]
            assert a.shape == b.shape == tuple(card["input_size"])
            assert np.corrcoef(a.ravel(), b.ravel())[0, 1] >= 0.99, (layer, top)


@pytest.mark.parametrize("method", list_explainers())
def test_every_explainer_returns_normalised_maps(method, data_dir):
    card = CARDS[0]
    model = model_zoo.load(card["id"])
    image = _images(card, data_dir, 1)
    heat = create_explainer(method, model.keras_model, card["cam_layer"])(image, 0)
    assert heat.shape == (1, *card["input_size"])
    assert heat.min() >= 0.0 and heat.max() <= 1.0 + 1e-6


def test_tta_is_the_mean_over_the_eight_views(data_dir):
    card = CARDS[0]
    model = model_zoo.load(card["id"])
    image = _images(card, data_dir, 1)
    views = [np.rot90(image, k, axes=(1, 2)) for k in range(4)]
    views += [np.flip(v, axis=2) for v in views]
    manual = np.mean([model.keras_model.predict(np.ascontiguousarray(v), verbose=0) for v in views], axis=0)
    np.testing.assert_allclose(model.predict_arrays(image, calibrated=False, tta=True), manual, atol=1e-4)
