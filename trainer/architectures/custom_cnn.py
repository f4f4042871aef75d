"""The original project's design: Conv2D / MaxPooling blocks then a dense head,
improved with batch normalisation, dropout and global average pooling."""
from __future__ import annotations

from typing import Optional

import keras

from .registry import add_head, register

FILTERS = (16, 32, 64, 128)       # the original project used 16-32-64; one block more, batch norm, dropout
# Trained from scratch on ~1700 images (54 steps an epoch), BatchNorm's moving statistics must follow the
# fast-changing weights: with Keras' default momentum 0.99 they lagged and validation collapsed to one class.
BN_MOMENTUM = 0.9


@register(input_size=180, cam_layer="block4_relu2", preprocessing="x / 255 (inside the model)", pretrainable=False)
def custom_cnn(
    num_classes: int,
    input_shape=(180, 180, 3),
    weights: Optional[str] = None,
    dropout: float = 0.3,
    dense_units: int = 128,
) -> keras.Model:
    """Custom CNN: 4 blocks of (conv-BN-ReLU) x2 + max-pool, trained from scratch."""
    if weights:
        raise ValueError("custom_cnn has no pretrained weights; train it from scratch.")
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Rescaling(1.0 / 255, name="normalize")(inputs)
    for block, filters in enumerate(FILTERS, start=1):
        for conv in (1, 2):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{block}_conv{conv}")(x)
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{block}_bn{conv}")(x)
            x = keras.layers.ReLU(name=f"block{block}_relu{conv}")(x)
        if block < len(FILTERS):
            x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x)
            x = keras.layers.SpatialDropout2D(0.1, name=f"block{block}_drop")(x)
    outputs = add_head(x, num_classes, dropout=dropout, dense_units=dense_units)
    return keras.Model(inputs, outputs, name="custom_cnn")
