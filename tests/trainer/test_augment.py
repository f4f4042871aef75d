"""The fused augmenter does what the Keras layers do: checked with fixed draws against numpy and Keras, on real images."""
from __future__ import annotations

import numpy as np
import pytest

from model_zoo.preprocessing import prepare_batch
from trainer.augment import FusedAugment, make_augmenter


@pytest.fixture(scope="module")
def batch(test_images) -> np.ndarray:
    return prepare_batch([p for p, _ in test_images[:4]], (96, 96))


def _fixed(augment: FusedAugment, values: dict) -> FusedAugment:
    """Replace the random draws by fixed values, keyed by the (low, high) range asked for."""
    import tensorflow as tf

    draws = iter(values["sequence"])

    def uniform(n, low, high):
        return tf.fill([n], tf.constant(next(draws), tf.float32))

    augment._uniform = uniform
    return augment


def _affine(batch, flip_x: float, flip_y: float, angle: float, zoom: float) -> np.ndarray:
    augment = _fixed(FusedAugment(), {"sequence": [flip_x, flip_y, angle, zoom - 1.0]})
    return augment._affine(batch).numpy()


def test_flips_and_quarter_turns_match_numpy(batch):
    np.testing.assert_allclose(_affine(batch, 0.0, 1.0, 0.0, 1.0), batch[:, :, ::-1], atol=1e-3)    # horizontal flip
    np.testing.assert_allclose(_affine(batch, 1.0, 0.0, 0.0, 1.0), batch[:, ::-1], atol=1e-3)       # vertical flip
    np.testing.assert_allclose(_affine(batch, 1.0, 1.0, np.pi / 2, 1.0), np.rot90(batch, 1, axes=(1, 2)), atol=0.05)
    np.testing.assert_allclose(_affine(batch, 1.0, 1.0, 0.0, 1.0), batch, atol=1e-3)                # identity


def test_zoom_matches_keras_random_zoom(batch):
    import keras

    for factor in (-0.2, 0.1):
        reference = keras.layers.RandomZoom((factor, factor), fill_mode="reflect")(batch, training=True).numpy()
        np.testing.assert_allclose(_affine(batch, 1.0, 1.0, 0.0, 1.0 + factor), reference, atol=0.05)


def test_colour_neutral_draws_are_identity_and_zero_saturation_is_grey(batch):
    neutral = _fixed(FusedAugment(), {"sequence": [0.0, 1.0, 0.5, 0.0]})._colour(batch).numpy()
    np.testing.assert_allclose(neutral, batch, atol=0.05)
    grey = _fixed(FusedAugment(), {"sequence": [0.0, 1.0, 0.0, 0.0]})._colour(batch).numpy()
    np.testing.assert_allclose(grey[..., 0], grey[..., 1], atol=0.05)
    np.testing.assert_allclose(grey[..., 1], grey[..., 2], atol=0.05)


def test_random_batches_stay_in_range_and_vary(batch):
    augment = make_augmenter("fast", seed=1)
    first, second = augment(batch).numpy(), augment(batch).numpy()
    assert first.shape == batch.shape and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 255.0
    assert not np.allclose(first, second), "each call draws new transforms"
    assert augment(batch, training=False) is batch
    assert abs(float(first.mean()) - float(batch.mean())) < 25.0, "colour jitter is small"
    assert make_augmenter("none") is None and isinstance(make_augmenter("fast_strong"), FusedAugment)
