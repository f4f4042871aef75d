"""Presets from keras.applications, built flat on our input so Grad-CAM can reach their layers."""
from __future__ import annotations

from typing import Callable, Optional

import keras

from .registry import add_head, model_input, register
from .weights import flip_first_conv_to_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)


def _normalize(x, mode: str):
    """Model-internal preprocessing equal to keras.applications' preprocess_input for `mode`."""
    if mode == "tf":          # x / 127.5 - 1
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(x)
    if mode == "torch":       # x / 255, then ImageNet mean / std
        x = keras.layers.Rescaling(1.0 / 255, name="normalize")(x)
        return keras.layers.Normalization(
            mean=IMAGENET_MEAN, variance=[s * s for s in IMAGENET_STD], name="normalize_mean"
        )(x)
    if mode == "caffe":       # mean subtraction; the BGR order is folded into the first conv
        return keras.layers.Normalization(mean=CAFFE_MEAN_RGB, variance=(1.0, 1.0, 1.0), name="normalize")(x)
    if mode == "none":        # the application normalises itself (EfficientNet)
        return x
    raise ValueError(mode)


def _create_keras_app(
    app: Callable[..., keras.Model],
    mode: str,
    num_classes: int,
    input_shape,
    weights: Optional[str],
    dropout: float,
    dense_units: int,
    name: str,
    color_constancy: bool = False,
) -> keras.Model:
    """Shared steps: input, optional colour constancy, normalisation, backbone on that tensor, head."""
    inputs, x = model_input(input_shape, color_constancy)
    x = _normalize(x, mode)
    base = app(include_top=False, weights=weights, input_tensor=x)
    if weights and mode == "caffe":
        flip_first_conv_to_rgb(base)
    outputs = add_head(base.output, num_classes, dropout=dropout, dense_units=dense_units)
    return keras.Model(inputs, outputs, name=name)


@register(input_size=224, cam_layer="out_relu", preprocessing="x / 127.5 - 1 (inside the model)",
          imagenet_file="mobilenet_v2_1.0_224_imagenet_no_top.h5", keras_imagenet=True)
def mobilenet_v2(num_classes: int, input_shape=(224, 224, 3), weights=None, dropout: float = 0.2, dense_units: int = 0,
                 color_constancy: bool = False):
    """MobileNetV2 (alpha 1.0), ImageNet weights available offline."""
    return _create_keras_app(keras.applications.MobileNetV2, "tf", num_classes, input_shape, weights, dropout, dense_units,
                             "mobilenet_v2", color_constancy)


@register(input_size=224, cam_layer="top_activation", preprocessing="EfficientNet's own rescaling (inside the model)",
          keras_imagenet=True)
def efficientnet_b0(num_classes: int, input_shape=(224, 224, 3), weights=None, dropout: float = 0.2, dense_units: int = 0):
    """EfficientNetB0 from keras.applications."""
    return _create_keras_app(keras.applications.EfficientNetB0, "none", num_classes, input_shape, weights, dropout, dense_units, "efficientnet_b0")


@register(input_size=224, cam_layer="conv5_block3_out", preprocessing="Caffe mean subtraction, BGR folded into conv1 (inside the model)",
          keras_imagenet=True)
def resnet50(num_classes: int, input_shape=(224, 224, 3), weights=None, dropout: float = 0.2, dense_units: int = 0):
    """ResNet50 from keras.applications."""
    return _create_keras_app(keras.applications.ResNet50, "caffe", num_classes, input_shape, weights, dropout, dense_units, "resnet50")


@register(input_size=224, cam_layer="relu", preprocessing="x / 255 then ImageNet mean/std (inside the model)",
          keras_imagenet=True)
def densenet121(num_classes: int, input_shape=(224, 224, 3), weights=None, dropout: float = 0.2, dense_units: int = 0):
    """DenseNet121 from keras.applications."""
    return _create_keras_app(keras.applications.DenseNet121, "torch", num_classes, input_shape, weights, dropout, dense_units, "densenet121")


@register(input_size=224, cam_layer="block5_conv3", preprocessing="Caffe mean subtraction, BGR folded into conv1 (inside the model)",
          keras_imagenet=True)
def vgg16(num_classes: int, input_shape=(224, 224, 3), weights=None, dropout: float = 0.2, dense_units: int = 0):
    """VGG16 from keras.applications."""
    return _create_keras_app(keras.applications.VGG16, "caffe", num_classes, input_shape, weights, dropout, dense_units, "vgg16")
