"""EfficientNet-Lite0, built here (not in keras.applications); spec in ../shared/weights/SOURCE.md.

EfficientNet-B0 without squeeze-and-excitation, ReLU6 instead of swish, fixed
stem (32) and head (1280) widths; layer names match the offline weights file.
"""
from __future__ import annotations

from typing import Optional

import keras

from .registry import add_head, model_input, register
from .weights import load_h5_by_name

# (repeats, kernel, first stride, expansion, filters in, filters out)
BLOCKS = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
BN_EPSILON = 1e-3


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, bn_name: str, activation: bool):
    x = keras.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=bn_name)(x)
    return keras.layers.ReLU(6.0, name=bn_name.replace("_bn", "_relu"))(x) if activation else x


def _mbconv(x, index: int, kernel: int, stride: int, expansion: int, filters_in: int, filters_out: int):
    """Inverted residual block: expand 1x1, depthwise, project 1x1, residual when shapes agree."""
    prefix = f"block{index}"
    shortcut = x
    if expansion != 1:
        x = _conv_bn(x, filters_in * expansion, 1, 1, f"{prefix}_expand_conv", f"{prefix}_expand_bn", True)
    x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{prefix}_dwconv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}_dw_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{prefix}_dw_relu")(x)
    x = _conv_bn(x, filters_out, 1, 1, f"{prefix}_project_conv", f"{prefix}_project_bn", False)
    if stride == 1 and filters_in == filters_out:
        x = keras.layers.Add(name=f"{prefix}_add")([shortcut, x])
    return x


@register(input_size=224, cam_layer="top_relu", preprocessing="(x - 127) / 128 (inside the model)",
          imagenet_file="efficientnet_lite0_imagenet_no_top.h5")
def efficientnet_lite0(num_classes: int, input_shape=(224, 224, 3), weights: Optional[str] = None,
                       dropout: float = 0.2, dense_units: int = 0, color_constancy: bool = False) -> keras.Model:
    """EfficientNet-Lite0 (3.4M backbone parameters), ImageNet weights available offline."""
    if weights == "imagenet":
        raise ValueError("EfficientNet-Lite0 has no keras.applications download; pass the weights file.")
    inputs, x = model_input(input_shape, color_constancy)
    x = keras.layers.Rescaling(1.0 / 128, offset=-127.0 / 128, name="normalize")(x)
    x = _conv_bn(x, 32, 3, 2, "stem_conv", "stem_bn", True)
    index = 0
    for repeats, kernel, stride, expansion, filters_in, filters_out in BLOCKS:
        for repeat in range(repeats):
            x = _mbconv(x, index, kernel, stride if repeat == 0 else 1, expansion,
                        filters_in if repeat == 0 else filters_out, filters_out)
            index += 1
    x = _conv_bn(x, 1280, 1, 1, "top_conv", "top_bn", True)
    model = keras.Model(inputs, add_head(x, num_classes, dropout=dropout, dense_units=dense_units), name="efficientnet_lite0")
    if weights:
        load_h5_by_name(model, weights)
    return model
