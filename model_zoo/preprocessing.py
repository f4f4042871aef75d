"""The one preprocessing path shared by the trainer and the app.

A model in this project takes raw RGB pixels (float32, 0..255) at its input
size; scaling and normalisation live inside the model.  What must be identical
between training and the browser is therefore only: decode -> orientation ->
RGB -> resize.  Both sides call `prepare_image` / `load_image` from here.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional, Sequence, Union

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


def prepare_image(image: Image.Image, size: Sequence[int], fov_crop: bool = False) -> np.ndarray:
    """Resize an RGB PIL image to `size` = (height, width): float32 array (h, w, 3) in 0..255.

    This is the exact array a model sees, in training and in the app. fov_crop=True first cuts the image to
    its dermatoscope's round field of view when it has one (`crop_to_field_of_view`).
    """
    height, width = int(size[0]), int(size[1])
    rgb = _to_rgb(crop_to_field_of_view(image) if fov_crop else image)
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), RESAMPLE)
    return np.asarray(rgb, dtype=np.float32)


def prepare_batch(images: Sequence[ImageSource], size: Sequence[int]) -> np.ndarray:
    """Load and prepare several images: float32 array (n, h, w, 3)."""
    return np.stack([prepare_image(load_image(image), size) for image in images]) if images else np.zeros(
        (0, int(size[0]), int(size[1]), 3), np.float32
    )


# ------------------------------------------------------------------------------- dermatoscope field of view
# Many dermatoscopes (PH²'s Tuebinger Mole Analyzer among them) leave a round field of view with dark corners.
# A model trained mostly on images without them sees the black crescent as part of the lesion's surroundings;
# `crop_to_field_of_view` finds that circle with OpenCV and keeps the largest rectangle of the image's own
# aspect ratio inside it, so the model sees skin and lesion only. Images without such a border are returned
# unchanged. The same function serves the app (model_zoo.diagnosis) and training (trainer.data), see
# docs/experiments.md for when it is on.
FOV_WORK_SIDE = 256              # longer side the border is searched at
FOV_DARK_RATIO = 0.45            # darker than this share of the bright field (90th percentile) counts as border
FOV_MIN_DARK_CORNERS = 3         # a round field darkens the corners (one may be lit); a shadow on one side does not
FOV_MIN_BORDER_SHARE = 0.01      # border-connected dark pixels: at least this share of the image
FOV_MIN_DARK_OUTSIDE = 0.6       # at least this share of the image outside the circle must be border-dark
FOV_TRIM = 3                     # work-size pixels cut from each edge first (some images carry a thin frame line)
FOV_MIN_RADIUS = 0.35            # the circle's radius, as a share of the image's shorter side
FOV_MARGIN = 0.96                # the crop's corners stay this far inside the circle (its rim is often soft)
CORNER = 0.06                    # corner patches, as a share of each side


@dataclass(frozen=True)
class FieldOfView:
    """The dermatoscope's round field in the image's own pixels, and the crop box kept inside it."""

    centre: tuple[float, float]
    radius: float
    box: tuple[int, int, int, int]            # (left, top, right, bottom), PIL's convention


def _border_dark_mask(grey: np.ndarray) -> np.ndarray:
    """uint8 mask (255) of dark pixels connected to the image's edge (the dark rim, not a dark lesion)."""
    import cv2

    bright = float(np.percentile(grey, 90))
    dark = (grey < FOV_DARK_RATIO * bright).astype(np.uint8)
    count, labels = cv2.connectedComponents(dark, connectivity=8)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    keep = np.isin(labels, edge[edge != 0]) if count > 1 else np.zeros_like(dark, bool)
    return (keep & (dark > 0)).astype(np.uint8) * 255


def _dark_corners(mask: np.ndarray) -> int:
    """How many of the four corner patches are mostly border-dark."""
    h, w = mask.shape
    dy, dx = max(2, int(CORNER * h)), max(2, int(CORNER * w))
    patches = (mask[:dy, :dx], mask[:dy, -dx:], mask[-dy:, :dx], mask[-dy:, -dx:])
    return sum(float(p.mean()) / 255 > 0.6 for p in patches)


def _inscribed_box(cx: float, cy: float, r: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The largest box of the image's aspect ratio centred in the circle, its corners on the (shrunk) rim, kept
    inside the image (shifted, then shrunk, if the circle runs past the frame)."""
    diagonal = 2 * r * FOV_MARGIN
    scale = diagonal / float(np.hypot(width, height))
    bw, bh = min(width, width * scale), min(height, height * scale)
    left = float(np.clip(cx - bw / 2, 0, width - bw))
    top = float(np.clip(cy - bh / 2, 0, height - bh))
    return int(round(left)), int(round(top)), int(round(left + bw)), int(round(top + bh))


def find_field_of_view(image: Image.Image) -> Optional[FieldOfView]:
    """The round field of view when the image has a dark circular border, else None (OpenCV, ~2 ms).

    Dark means darker than FOV_DARK_RATIO of the image's bright field and connected to its edge, so a dark
    lesion in the middle is not border; a dark lesion that reaches the edge may join the border, which is why
    the circle is the smallest one enclosing the bright field and is checked from the outside."""
    import cv2

    width, height = image.size
    factor = FOV_WORK_SIDE / max(width, height)
    small = image.convert("L").resize((max(1, round(width * factor)), max(1, round(height * factor))),
                                      Image.Resampling.BOX)
    grey = cv2.GaussianBlur(np.asarray(small)[FOV_TRIM:-FOV_TRIM, FOV_TRIM:-FOV_TRIM], (5, 5), 0)
    mask = _border_dark_mask(grey)
    if _dark_corners(mask) < FOV_MIN_DARK_CORNERS or mask.mean() / 255 < FOV_MIN_BORDER_SHARE:
        return None
    field = cv2.morphologyEx(255 - mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    contours, _ = cv2.findContours(field, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    (cx, cy), r = cv2.minEnclosingCircle(max(contours, key=cv2.contourArea))
    if r < FOV_MIN_RADIUS * min(grey.shape):
        return None
    outside = np.full_like(mask, 255)
    cv2.circle(outside, (round(cx), round(cy)), round(1.03 * r), 0, -1)
    if not outside.any() or (mask[outside > 0] > 0).mean() < FOV_MIN_DARK_OUTSIDE:
        return None                 # the dark pixels do not lie around a circle: a shadow, a dark photo
    cx, cy, r = (cx + FOV_TRIM) / factor, (cy + FOV_TRIM) / factor, r / factor
    return FieldOfView((cx, cy), r, _inscribed_box(cx, cy, r, width, height))


def crop_to_field_of_view(image: Image.Image) -> Image.Image:
    """The image cut to the inside of its dermatoscope's round field, or the image itself when it has none."""
    fov = find_field_of_view(image)
    return image if fov is None else image.crop(fov.box)
