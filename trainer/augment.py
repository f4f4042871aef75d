"""Real-time augmentation with Keras preprocessing layers, run inside the tf.data pipeline.

It runs in the pipeline (on CPU, in parallel with training) rather than inside
the model, so the saved model stays augmentation-free and loads safely.
"""
from __future__ import annotations

import keras

VALUE_RANGE = (0.0, 255.0)


def make_augmenter(strength: str = "default", seed: int = 42) -> keras.Sequential | None:
    """Flips, rotation, zoom, brightness/contrast/saturation/hue jitter; None for strength="none".

    Dermoscopy has no canonical orientation, so all flips and any rotation are label-preserving.
    """
    if strength == "none":
        return None
    scale = {"light": 0.5, "default": 1.0, "strong": 1.5}[strength]
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal_and_vertical", seed=seed),
            keras.layers.RandomRotation(0.5, fill_mode="reflect", seed=seed),
            keras.layers.RandomZoom((-0.2 * scale, 0.1 * scale), fill_mode="reflect", seed=seed),
            keras.layers.RandomBrightness(0.1 * scale, value_range=VALUE_RANGE, seed=seed),
            keras.layers.RandomContrast(0.15 * scale, value_range=VALUE_RANGE, seed=seed),
            keras.layers.RandomSaturation((0.5 - 0.1 * scale, 0.5 + 0.1 * scale), value_range=VALUE_RANGE, seed=seed),
            keras.layers.RandomHue(0.03 * scale, value_range=VALUE_RANGE, seed=seed),
        ],
        name="augment",
    )
