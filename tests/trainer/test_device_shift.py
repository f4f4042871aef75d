"""trainer.augment.DeviceShift: another dermatoscope's look (round field, vignetting, bubbles, blur, scale, colour)."""
from __future__ import annotations

import numpy as np
import pytest

from trainer.augment import DEVICE_EFFECTS, DeviceShift, make_augmenter


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    """Eight 96 px skin-coloured images with a brown lesion, float32 0..255."""
    rng = np.random.default_rng(0)
    images = np.clip(rng.normal((200, 155, 135), 10, (8, 96, 96, 3)), 0, 255).astype(np.float32)
    images[:, 36:60, 36:60] = (110, 70, 50)
    return images


def _shift(batch, probability=1.0, effects=DEVICE_EFFECTS, seed=0, effect_probability=1.0) -> np.ndarray:
    return np.asarray(DeviceShift(probability, seed, tuple(effects), effect_probability)(batch))


def test_shapes_and_range(batch):
    out = _shift(batch, effect_probability=0.5)
    assert out.shape == batch.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert not np.allclose(out, batch)


@pytest.mark.parametrize("effect", DEVICE_EFFECTS)
def test_each_effect_changes_the_image_alone(batch, effect):
    out = _shift(batch, effects=(effect,))
    assert out.shape == batch.shape and 0.0 <= out.min() and out.max() <= 255.0
    assert (np.abs(out - batch) > 2.0).mean() > 0.002, f"{effect} left the images as they were"


def test_round_field_darkens_the_corners_only_and_the_crop_finds_it(batch):
    from PIL import Image

    from model_zoo.preprocessing import find_field_of_view

    out = _shift(batch, effects=("fov",))
    assert out[:, :4, :4].mean() < 70, "dark corners, as through a contact dermatoscope"
    np.testing.assert_allclose(out[:, 40:56, 40:56], batch[:, 40:56, 40:56], atol=1e-3)
    big = Image.fromarray(out[0].astype(np.uint8)).resize((300, 300))
    assert find_field_of_view(big) is not None, "the field of view crop recognises the drawn field"


def test_probability_sets_the_share_of_shifted_images(batch):
    many = np.concatenate([batch] * 25)
    shifted = _shift(many, probability=0.3, effects=("fov",))[:, :4, :4].mean(axis=(1, 2, 3)) < 100
    assert 0.18 < shifted.mean() < 0.42
    assert np.array_equal(_shift(many, probability=0.0), many)
    assert DeviceShift(1.0)(batch, training=False) is batch


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="0..1"):
        DeviceShift(1.5)
    with pytest.raises(ValueError, match="unknown device effects"):
        DeviceShift(0.5, effects=("fisheye",))


def test_make_augmenter_and_the_training_pipeline(batch):
    from trainer.data import ImageSet, make_dataset

    assert isinstance(make_augmenter("none", device_shift=0.5), DeviceShift)
    combined = make_augmenter("fast", seed=1, hair=0.5, device_shift=1.0)
    assert np.asarray(combined(batch)).shape == batch.shape
    image_set = ImageSet(batch.astype(np.uint8), np.zeros(len(batch), np.int32), [str(i) for i in range(len(batch))],
                         ["a", "b"])
    x, _ = next(iter(make_dataset(image_set, 4, True, combined)))           # traced by tf.data in a graph
    assert tuple(x.shape) == (4, 96, 96, 3) and float(x.numpy().max()) <= 255.0


def test_the_train_command_takes_both_options_into_the_config():
    from trainer.cli import build_parser, config_from_args

    args = build_parser().parse_args(["train", "-a", "custom_cnn", "-d", "ham10000", "--device-shift", "0.3",
                                      "--fov-crop"])
    config = config_from_args(args)
    assert config.device_shift == 0.3 and config.fov_crop is True
    assert config.as_dict()["device_shift"] == 0.3, "the card records the configuration"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "-a", "custom_cnn", "-d", "ham10000", "--device-shift", "1.5"])
