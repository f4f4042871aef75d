"""SqueezeNet v1.1 feature extractor, built here; spec in ../shared/weights/SOURCE.md."""
from __future__ import annotations

from typing import Optional

import keras

from .registry import add_head, register
from .weights import load_h5_conv_arrays

# (name, squeeze filters, expand filters); a max-pool follows fire3 and fire5.
FIRES = (("fire2", 16, 64), ("fire3", 16, 64), ("fire4", 32, 128), ("fire5", 32, 128),
         ("fire6", 48, 192), ("fire7", 48, 192), ("fire8", 64, 256), ("fire9", 64, 256))
POOL_AFTER = {"fire3": "pool3", "fire5": "pool5"}
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)


def _fire(x, name: str, squeeze: int, expand: int):
    """Squeeze 1x1 -> (expand 1x1 || expand 3x3), concatenated."""
    s = keras.layers.Conv2D(squeeze, 1, activation="relu", name=f"{name}_squeeze1x1")(x)
    e1 = keras.layers.Conv2D(expand, 1, activation="relu", name=f"{name}_expand1x1")(s)
    e3 = keras.layers.Conv2D(expand, 3, padding="same", activation="relu", name=f"{name}_expand3x3")(s)
    return keras.layers.Concatenate(name=f"{name}_concat")([e1, e3])


@register(input_size=224, cam_layer="fire9_concat", preprocessing="Caffe mean subtraction, BGR folded into conv1 (inside the model)",
          imagenet_file="squeezenet_v1.1_imagenet_no_top.h5")
def squeezenet_v1_1(num_classes: int, input_shape=(224, 224, 3), weights: Optional[str] = None,
                    dropout: float = 0.5, dense_units: int = 0) -> keras.Model:
    """SqueezeNet v1.1 (0.7M parameters), ImageNet weights available offline."""
    if weights == "imagenet":
        raise ValueError("SqueezeNet v1.1 has no keras.applications download; pass the weights file.")
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Normalization(mean=CAFFE_MEAN_RGB, variance=(1.0, 1.0, 1.0), name="normalize")(inputs)
    x = keras.layers.Conv2D(64, 3, strides=2, activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(3, 2, name="pool1")(x)
    for name, squeeze, expand in FIRES:
        x = _fire(x, name, squeeze, expand)
        if name in POOL_AFTER:
            x = keras.layers.MaxPooling2D(3, 2, name=POOL_AFTER[name])(x)
    model = keras.Model(inputs, add_head(x, num_classes, dropout=dropout, dense_units=dense_units), name="squeezenet_v1_1")
    if weights:
        _load_squeezenet(model, weights)
    return model


def _load_squeezenet(model: keras.Model, path: str) -> None:
    """Set conv weights by name; the Caffe file is BGR, so conv1's input channels are reversed."""
    file_names = ["conv1"] + [f"{fire}/{part}" for fire, _, _ in FIRES for part in ("squeeze1x1", "expand1x1", "expand3x3")]
    arrays = load_h5_conv_arrays(path, file_names)
    for file_name, (kernel, bias) in arrays.items():
        if file_name == "conv1":
            kernel = kernel[:, :, ::-1, :].copy()
        model.get_layer(file_name.replace("/", "_")).set_weights([kernel, bias])
