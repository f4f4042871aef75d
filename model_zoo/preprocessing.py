"""The one preprocessing path shared by the trainer and the app.

A model in this project takes raw RGB pixels (float32, 0..255) at its input
size; scaling and normalisation live inside the model.  What must be identical
between training and the browser is therefore only: decode -> orientation ->
RGB -> resize.  Both sides call `prepare_image` / `load_image` from here.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO, Sequence, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Knobs.
MAX_PIXELS = 40_000_000          # refuse larger images before decoding them (decompression bombs)
MAX_BYTES = 50 * 1024 * 1024     # refuse larger files outright
MIN_SIDE = 8                     # smaller than this is not a photo of a lesion
RESAMPLE = Image.Resampling.BILINEAR
BACKGROUND = (255, 255, 255)     # transparent pixels are composited on white

# Pillow's own bomb check should raise, not warn, and agree with our limit.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

ImageSource = Union[str, Path, bytes, BinaryIO, Image.Image]


class ImageError(ValueError):
    """An input that is not a usable image; the message is shown to the user."""


def load_image(source: ImageSource) -> Image.Image:
    """Open `source` as an upright RGB PIL image, or raise ImageError with a clear reason.

    Honours EXIF orientation, takes the first frame of animations, converts any
    colour mode (16-bit, CMYK, palette, LA/RGBA) to 8-bit RGB.
    """
    if isinstance(source, Image.Image):
        image = source
    else:
        image = _open(source)
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        image = ImageOps.exif_transpose(image) or image
        return _to_rgb(image)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"The image data is damaged or incomplete ({type(exc).__name__}).") from exc


def _open(source: ImageSource) -> Image.Image:
    """Open and fully decode, checking size before the pixels are decoded."""
    if isinstance(source, (str, Path)):
        data = Path(source).read_bytes() if Path(source).stat().st_size <= MAX_BYTES else None
        if data is None:
            raise ImageError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    elif isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        data = source.read(MAX_BYTES + 1)
    if len(data) == 0:
        raise ImageError("The file is empty.")
    if len(data) > MAX_BYTES:
        raise ImageError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageError(
                    f"The image is {width}x{height} pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels."
                )
            if min(width, height) < MIN_SIDE:
                raise ImageError(f"The image is only {width}x{height} pixels; it is too small to classify.")
            image.load()
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError("This file is not an image format we can read (use JPEG, PNG, BMP, TIFF or WebP).") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"The image is too large to decode safely (limit {MAX_PIXELS // 1_000_000} megapixels).") from exc
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise ImageError(f"The image data is damaged or incomplete ({type(exc).__name__}).") from exc
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale to 8 bits by the actual range, not by clipping.
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scaled = (array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    if image.mode == "F":
        array = np.nan_to_num(np.asarray(image, dtype=np.float64))
        low, high = float(array.min()), float(array.max())
        scaled = (array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, BACKGROUND)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def prepare_image(image: Image.Image, size: Sequence[int]) -> np.ndarray:
    """Resize an RGB PIL image to `size` = (height, width): float32 array (h, w, 3) in 0..255.

    This is the exact array a model sees, in training and in the app.
    """
    height, width = int(size[0]), int(size[1])
    rgb = _to_rgb(image)
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), RESAMPLE)
    return np.asarray(rgb, dtype=np.float32)


def prepare_batch(images: Sequence[ImageSource], size: Sequence[int]) -> np.ndarray:
    """Load and prepare several images: float32 array (n, h, w, 3)."""
    return np.stack([prepare_image(load_image(image), size) for image in images]) if images else np.zeros(
        (0, int(size[0]), int(size[1]), 3), np.float32
    )
