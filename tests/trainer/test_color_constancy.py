"""Shades-of-grey colour constancy: a colour cast cancels, the layer survives save / load / LiteRT export."""
from __future__ import annotations

import numpy as np
import pytest

from model_zoo.layers import ShadesOfGrey
from trainer.architectures import create_model, get_spec
from trainer.architectures.registry import supports_color_constancy

SIZE = 64


def _lesion_like(seed: int = 0) -> np.ndarray:
    """A smooth, non-uniform RGB image in 20..200 (no clipping under the casts below)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    base = np.stack([150 - 80 * np.hypot(yy - 0.5, xx - 0.5), 110 - 50 * yy, 90 + 40 * xx], axis=-1)
    return np.clip(base + rng.normal(0, 8, base.shape), 20, 200).astype("float32")[None]


def test_a_colour_cast_cancels():
    """The same scene under a per-channel gain (another camera, another lamp) comes out with the same
    colours: the outputs differ by one overall factor, not per channel."""
    image = _lesion_like()
    cast = image * np.array([1.2, 0.9, 0.7], "float32")
    a, b = np.asarray(ShadesOfGrey()(image)), np.asarray(ShadesOfGrey()(cast))
    ratio = b / a
    assert ratio.std() / ratio.mean() < 1e-4
    raw_ratio = cast / image
    assert raw_ratio.std() / raw_ratio.mean() > 0.1        # the cast itself was not a single factor


def test_balanced_image_is_left_alone_and_range_kept():
    grey = np.repeat(_lesion_like()[..., :1], 3, axis=-1)    # equal channels: nothing to correct
    np.testing.assert_allclose(np.asarray(ShadesOfGrey()(grey)), grey, rtol=1e-5, atol=1e-3)
    bright = np.full((1, 8, 8, 3), 255.0, "float32") * np.array([1.0, 0.2, 0.2], "float32")
    out = np.asarray(ShadesOfGrey()(bright))
    assert out.min() >= 0 and out.max() <= 255.0


def test_model_option_saves_loads_and_exports(tmp_path, weights_dir):
    """Built into the model: the zoo loader rebuilds it in safe_mode, and LiteRT gives the same output."""
    from model_zoo.zoo import _load_keras_file

    weights = str(weights_dir / get_spec("mobilenet_v2").imagenet_file)
    model = create_model("mobilenet_v2", 3, input_size=SIZE, weights=weights, color_constancy=True)
    assert model.get_layer("color_constancy").__class__ is ShadesOfGrey
    assert model.layers.index(model.get_layer("color_constancy")) < model.layers.index(model.get_layer("normalize"))
    model.save(tmp_path / "model.keras")
    again = _load_keras_file(tmp_path, "cc")
    x = _lesion_like()
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)
    plain = create_model("mobilenet_v2", 3, input_size=SIZE, weights=weights)
    plain.set_weights(model.get_weights())                 # the same weights: the layer adds none
    assert np.abs(np.asarray(plain(x)) - np.asarray(model(x))).max() > 1e-3    # ... and changes the answer

    litert = pytest.importorskip("ai_edge_litert.interpreter")
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [tf.function(lambda t: model(t)).get_concrete_function(tf.TensorSpec((1, SIZE, SIZE, 3), tf.float32))])
    interpreter = litert.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(out, np.asarray(model(x)), atol=1e-4)


def test_architectures_without_the_option_say_so():
    assert supports_color_constancy("mobilenet_v2") and supports_color_constancy("efficientnet_lite0")
    with pytest.raises(ValueError, match="mobilenet_v2"):
        create_model("custom_cnn", 3, input_size=SIZE, color_constancy=True)
    assert create_model("custom_cnn", 3, input_size=SIZE, color_constancy=False).get_layer(get_spec("custom_cnn").cam_layer)
