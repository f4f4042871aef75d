"""The shared preprocessing: every colour mode, EXIF orientation, bad input with clear messages."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from model_zoo.preprocessing import ImageError, load_image, prepare_image


def _bytes(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kw)
    return buffer.getvalue()


@pytest.fixture
def photo() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8), "RGB")


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F", "1", "YCbCr"])
def test_any_mode_becomes_rgb(photo, mode):
    converted = photo.convert("L").convert(mode) if mode in ("I;16", "I", "F") else photo.convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I;16", "I", "F", "YCbCr") else "PNG"
    loaded = load_image(_bytes(converted, fmt))
    assert loaded.mode == "RGB" and loaded.size == photo.size


def test_sixteen_bit_uses_full_range():
    ramp = (np.linspace(0, 4095, 64 * 64).reshape(64, 64)).astype(np.uint16)
    loaded = load_image(_bytes(Image.fromarray(ramp), "PNG"))
    array = np.asarray(loaded)
    assert array.min() == 0 and array.max() == 255


def test_transparent_pixels_become_white():
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    assert np.asarray(load_image(_bytes(rgba, "PNG")))[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_honoured(photo):
    exif = Image.Exif()
    exif[0x0112] = 6          # rotate 90 degrees clockwise to display
    loaded = load_image(_bytes(photo, "JPEG", exif=exif))
    assert loaded.size == (photo.size[1], photo.size[0])


def test_animated_gif_uses_first_frame(photo):
    frames = [photo.convert("P"), Image.new("P", photo.size, 3)]
    data = _bytes(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert load_image(data).size == photo.size


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"%PDF-1.4 not an image", "not an image format"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "not an image format"),
    ],
)
def test_non_images_are_refused_clearly(data, message):
    with pytest.raises(ImageError, match=message):
        load_image(data)


def test_truncated_jpeg_is_refused(photo):
    data = _bytes(photo, "JPEG")
    with pytest.raises(ImageError, match="damaged"):
        load_image(data[: len(data) // 2])


def test_decompression_bomb_is_refused_without_decoding():
    bomb = _bytes(Image.new("1", (30000, 30000)), "PNG")
    assert len(bomb) < 200_000
    with pytest.raises(ImageError, match="megapixels"):
        load_image(bomb)


def test_tiny_image_is_refused():
    with pytest.raises(ImageError, match="too small"):
        load_image(_bytes(Image.new("RGB", (1, 1)), "PNG"))


def test_prepare_image_shape_and_range(photo):
    array = prepare_image(photo, (32, 48))
    assert array.shape == (32, 48, 3) and array.dtype == np.float32
    assert 0 <= array.min() and array.max() <= 255


def test_trainer_and_app_see_the_same_pixels(data_dir, test_images):
    """The trainer's decode path and the app's upload path give identical arrays."""
    import pandas as pd

    from trainer.data import load_images

    path, label = test_images[0]
    rows = pd.DataFrame({"path": [str(path.relative_to(data_dir / "isic_9class"))], "label": [label],
                         "image_id": [path.stem]})
    trained = load_images("isic_9class", rows, (96, 96), data_dir).images[0].astype(np.float32)
    uploaded = prepare_image(load_image(path.read_bytes()), (96, 96))
    np.testing.assert_array_equal(trained, uploaded)
