"""model_zoo.preprocessing.crop_to_field_of_view: a dermatoscope's dark round border is found and cut away."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from model_zoo.preprocessing import crop_to_field_of_view, find_field_of_view, prepare_image


def _skin(width: int = 300, height: int = 225, seed: int = 0) -> Image.Image:
    """Skin-coloured noise with a brown lesion in the middle."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal((205, 160, 140), 8, (height, width, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    ImageDraw.Draw(image).ellipse((width * 0.38, height * 0.35, width * 0.62, height * 0.65), fill=(110, 70, 50))
    return image


def _with_round_field(image: Image.Image, radius: float, centre=None, dark=(35, 30, 30)) -> Image.Image:
    """The image seen through a round field of view of `radius` px: dark outside the circle."""
    width, height = image.size
    cx, cy = centre or (width / 2, height / 2)
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
    return Image.composite(image, Image.new("RGB", image.size, dark), mask)


def test_finds_the_circle_of_a_ph2_like_field():
    """PH²'s field: a circle as wide as the image, cut at the top and bottom, dark corners."""
    image = _with_round_field(_skin(), radius=150)
    fov = find_field_of_view(image)
    assert fov is not None
    assert abs(fov.centre[0] - 150) < 6 and abs(fov.centre[1] - 112.5) < 6 and abs(fov.radius - 150) < 8
    left, top, right, bottom = fov.box
    assert (right - left) / (bottom - top) == pytest.approx(300 / 225, rel=0.05), "the image's aspect ratio is kept"
    for x, y in ((left, top), (right, top), (left, bottom), (right, bottom)):
        assert np.hypot(x - 150, y - 112.5) <= 150, "every corner of the crop lies inside the round field"


def test_the_crop_has_no_dark_corners_and_keeps_the_lesion():
    image = _with_round_field(_skin(), radius=140, centre=(155, 110))
    cropped = np.asarray(crop_to_field_of_view(image), float)
    corners = [cropped[:8, :8], cropped[:8, -8:], cropped[-8:, :8], cropped[-8:, -8:]]
    assert min(c.mean() for c in corners) > 120, "the black crescents are gone"
    height, width = cropped.shape[:2]
    centre = cropped[height // 2 - 5:height // 2 + 5, width // 2 - 5:width // 2 + 5]
    assert centre.mean() < 110, "the lesion in the middle is still there"


def test_no_round_border_means_no_change():
    image = _skin()
    assert find_field_of_view(image) is None
    assert crop_to_field_of_view(image) is image
    np.testing.assert_array_equal(prepare_image(image, (64, 64), fov_crop=True), prepare_image(image, (64, 64)))


def test_a_dark_lesion_or_a_shadow_on_one_side_is_not_a_field_of_view():
    dark_lesion = _skin()
    ImageDraw.Draw(dark_lesion).ellipse((90, 50, 210, 175), fill=(25, 20, 20))
    assert find_field_of_view(dark_lesion) is None
    shadow = _skin()
    ImageDraw.Draw(shadow).rectangle((0, 0, 90, 225), fill=(30, 25, 25))
    assert find_field_of_view(shadow) is None


def test_prepare_image_crops_when_asked():
    image = _with_round_field(_skin(), radius=150)
    plain, cropped = prepare_image(image, (64, 64)), prepare_image(image, (64, 64), fov_crop=True)
    assert plain.shape == cropped.shape == (64, 64, 3) and cropped.dtype == np.float32
    assert cropped[:4, :4].mean() > plain[:4, :4].mean() + 50
