"""Custom Keras layers that live inside zoo models. Registered so that `keras.models.load_model`
(safe_mode) rebuilds them in the app without arbitrary code; import this module before loading."""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dermlab")
class ShadesOfGrey(keras.layers.Layer):
    """Shades-of-grey colour constancy (Finlayson and Trezzi, 2004), the normalisation used by the
    ISIC 2019 winners: each channel is divided by its Minkowski p-mean over the image, so a colour
    cast of the camera or lighting (a gain per channel) cancels, whatever device took the picture.

    In: RGB pixels 0..255 (n, h, w, 3). Out: the same range; the mean of the three channel norms is kept,
    so overall brightness does not change. Inside the model, so the app and LiteRT need no extra step.
    """

    def __init__(self, power: float = 6.0, **kwargs):
        kwargs.setdefault("dtype", "float32")        # x**6 would underflow in float16
        super().__init__(**kwargs)
        self.power = float(power)

    def call(self, inputs):
        x = ops.clip(ops.cast(inputs, "float32") / 255.0, 0.0, 1.0)
        norm = ops.power(ops.mean(ops.power(x, self.power), axis=(1, 2), keepdims=True), 1.0 / self.power)
        gain = ops.mean(norm, axis=-1, keepdims=True) / ops.maximum(norm, 1e-6)
        return ops.clip(x * gain, 0.0, 1.0) * 255.0

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "power": self.power}
