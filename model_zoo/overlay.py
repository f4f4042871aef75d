"""Drawing heatmaps over images (kept apart from the heatmap maths)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

COLORMAP = "jet"


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """(h, w) in [0, 1] -> (h, w, 3) uint8 through the colour map."""
    from matplotlib import colormaps

    return (colormaps[COLORMAP](np.clip(heatmap, 0, 1))[..., :3] * 255).astype(np.uint8)


def render_overlay(image: Image.Image, heatmap: np.ndarray, opacity: float = 0.45) -> Image.Image:
    """Blend the colourised heatmap (resized to the image) over the RGB image."""
    rgb = image.convert("RGB")
    heat = Image.fromarray((np.clip(heatmap, 0, 1) * 255).astype(np.uint8)).resize(rgb.size, Image.Resampling.BILINEAR)
    coloured = Image.fromarray(colorize(np.asarray(heat, dtype=np.float32) / 255.0))
    return Image.blend(rgb, coloured, float(np.clip(opacity, 0.0, 1.0)))


def to_png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
