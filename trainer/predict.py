"""Probabilities of a Keras model on decoded images: training evaluates its fresh model with them,
and evaluation reuses them, so neither has to import the other."""
from __future__ import annotations

import numpy as np

from .data import ImageSet


def predict_set(model, image_set: ImageSet, batch_size: int = 64) -> np.ndarray:
    """Probabilities (n, k) for a decoded image set, in inference mode."""
    import tensorflow as tf

    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    out = [np.asarray(forward(tf.constant(image_set.images[i:i + batch_size], tf.float32)), np.float32)
           for i in range(0, len(image_set), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, len(image_set.classes)), np.float32)
