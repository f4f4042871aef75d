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


def _one_hot_batch(batch):
    """Each image its own class, so a mixed label says exactly which images (and how much) went in."""
    return batch.astype(np.float32), np.eye(len(batch), dtype=np.float32)


def test_mixup_image_is_the_label_weighted_sum_of_the_batch(batch):
    from trainer.augment import make_mixer

    images, labels = _one_hot_batch(batch)
    mixed, soft = (t.numpy() for t in make_mixer("mixup", seed=3)(images, labels))
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(soft, labels), "nothing was mixed"
    expected = np.einsum("ik,khwc->ihwc", soft, images)
    np.testing.assert_allclose(mixed, expected, atol=0.05)


def test_cutmix_pastes_a_patch_whose_area_is_the_label_weight(batch):
    from trainer.augment import make_mixer

    images, labels = _one_hot_batch(batch)
    mixed, soft = (t.numpy() for t in make_mixer("cutmix", seed=5)(images, labels))
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-5)
    pixels = images.shape[1] * images.shape[2]
    pasted_any = False
    for i in range(len(images)):
        own = np.all(np.isclose(mixed[i], images[i], atol=1e-3), axis=-1)
        others = [k for k in range(len(images)) if k != i and soft[i, k] > 0]
        for k in others:
            from_k = np.all(np.isclose(mixed[i], images[k], atol=1e-3), axis=-1) & ~own
            assert abs(from_k.sum() / pixels - soft[i, k]) < 0.02, (i, k, from_k.sum() / pixels, soft[i, k])
            pasted_any = True
        if not others:
            assert own.all()
    assert pasted_any, "no patch was pasted in the whole batch"


def test_make_mixer_none_and_unknown():
    from trainer.augment import make_mixer

    assert make_mixer("none") is None
    with pytest.raises(ValueError, match="mixup"):
        make_mixer("mosaic")


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_training_pipeline_mixes_after_the_fused_augmenter(batch, kind):
    """In tf.data the fused transform loses the static image size; CutMix needs it (a graph-only failure)."""
    from trainer.augment import make_mixer
    from trainer.data import ImageSet, make_dataset

    images = batch.astype(np.uint8)
    image_set = ImageSet(images, np.arange(len(images), dtype=np.int32), [str(i) for i in range(len(images))],
                         [f"c{i}" for i in range(len(images))])
    x, y = next(iter(make_dataset(image_set, len(images), True, make_augmenter("fast", 1), mix=make_mixer(kind, 2))))
    assert tuple(x.shape) == images.shape
    y = y.numpy()
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    assert ((y > 0) & (y < 1)).any(), "labels stayed one-hot: nothing was mixed"


def _hair(batch, probability: float, seed: int = 0):
    from trainer.augment import HairOcclusion

    return np.asarray(HairOcclusion(probability, seed)(batch))


def test_hair_darkens_thin_strands_and_leaves_the_rest(batch):
    out = _hair(batch, 1.0)
    changed = np.any(np.abs(out - batch) > 0.5, axis=-1)
    for i in range(len(batch)):
        share = changed[i].mean()
        assert 0.002 < share < 0.25, f"image {i}: {share:.3f} of the pixels under hair"
        darker = out[i][changed[i]].sum(axis=-1) < batch[i][changed[i]].sum(axis=-1)
        assert darker.mean() > 0.95, "hair is darker than the skin and lesion under it"
    untouched = np.all(out == batch, axis=-1)
    assert untouched.mean() > 0.7, "pixels away from the strands keep their exact values"


def test_hair_masks_are_strands_not_blobs():
    from scipy.ndimage import binary_erosion

    from trainer.augment import HairOcclusion

    masks = HairOcclusion(1.0, seed=3).masks()[..., 0] > 0.5
    assert masks.shape == (64, 256, 256) and masks.any(axis=(1, 2)).all()
    thick = sum(binary_erosion(m, np.ones((6, 6), bool)).sum() for m in masks)
    assert thick < 0.05 * masks.sum(), "strands are at most a few pixels wide (crossings aside)"
    assert len({m.tobytes() for m in masks}) == 64, "every mask in the bank differs"


def test_hair_probability_sets_the_share_of_occluded_images(batch):
    many = np.concatenate([batch] * 50)
    occluded = np.any(np.abs(_hair(many, 0.3) - many) > 0.5, axis=(1, 2, 3))
    assert 0.2 < occluded.mean() < 0.4
    assert np.array_equal(_hair(many, 0.0), many)
    with pytest.raises(ValueError, match="0..1"):
        _hair(batch, 1.5)


def test_hair_follows_the_other_transforms_in_make_augmenter(batch):
    from trainer.augment import HairOcclusion

    assert isinstance(make_augmenter("none", hair=0.5), HairOcclusion)
    combined = make_augmenter("fast", seed=1, hair=1.0)
    out = combined(batch).numpy()
    assert out.shape == batch.shape and not np.allclose(out, batch)
    assert combined(batch, training=False) is batch
