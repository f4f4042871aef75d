"""Every registered architecture honours the head contract (parametrised over the registry)."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from trainer.architectures import create_model, get_spec, list_architectures

SMALL = 64


@pytest.mark.parametrize("name", list_architectures())
def test_builds_with_head_contract(name):
    model = create_model(name, 5, input_size=96 if name == "squeezenet_v1_1" else SMALL)
    assert model.output_shape == (None, 5)
    for layer in ("image", "avg_pool", "head_dropout", "pred"):
        model.get_layer(layer)
    model.get_layer(get_spec(name).cam_layer)
    size = model.input_shape[1]
    probs = np.asarray(model(np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_unknown_architecture_lists_choices():
    with pytest.raises(KeyError, match="mobilenet_v2"):
        create_model("resnet9000", 3)


def test_offline_weights_load_and_change_features(weights_dir):
    """Pretrained builders really take the file's weights (not random ones)."""
    for name in ("mobilenet_v2", "efficientnet_lite0", "squeezenet_v1_1"):
        spec = get_spec(name)
        a = create_model(name, 3, input_size=96, weights=str(weights_dir / spec.imagenet_file))
        b = create_model(name, 3, input_size=96, weights=str(weights_dir / spec.imagenet_file))
        layer = spec.cam_layer
        for model in (a, b):
            assert model.get_layer(layer)
        conv_a = next(l for l in a.layers if isinstance(l, keras.layers.Conv2D)).get_weights()[0]
        conv_b = next(l for l in b.layers if isinstance(l, keras.layers.Conv2D)).get_weights()[0]
        np.testing.assert_array_equal(conv_a, conv_b)   # deterministic: from the file


def test_squeezenet_bgr_fold_equals_caffe_preprocessing(weights_dir):
    """Folding BGR into conv1 gives exactly the features of Caffe-style BGR input."""
    from trainer.architectures.squeezenet import CAFFE_MEAN_RGB

    model = create_model("squeezenet_v1_1", 3, input_size=96, weights=str(weights_dir / get_spec("squeezenet_v1_1").imagenet_file))
    conv1 = model.get_layer("conv1")
    x = np.random.default_rng(1).uniform(0, 255, (1, 96, 96, 3)).astype("float32")
    ours = np.asarray(conv1(model.get_layer("normalize")(x)))
    kernel, bias = conv1.get_weights()
    caffe = keras.layers.Conv2D(64, 3, strides=2, activation="relu")
    caffe.build((None, 96, 96, 3))
    caffe.set_weights([kernel[:, :, ::-1, :], bias])               # the file's original BGR kernel
    bgr = (x - np.array(CAFFE_MEAN_RGB, "float32"))[..., ::-1]
    np.testing.assert_allclose(ours, np.asarray(caffe(bgr)), rtol=1e-4, atol=1e-3)


def test_saved_model_loads_in_safe_mode(tmp_path):
    model = create_model("custom_cnn", 4, input_size=SMALL)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path, compile=False, safe_mode=True)
    x = np.random.default_rng(0).uniform(0, 255, (1, SMALL, SMALL, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(again(x)), atol=1e-6)
