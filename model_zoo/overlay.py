"""Drawing heatmaps over images (kept apart from the heatmap maths)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .constants import HEATMAP_OPACITY

COLORMAP = "jet"
# Offered to the user: jet is the CAM literature's habit; viridis and cividis stay readable with colour blindness
# (perceptually uniform, and cividis is built for red-green colour vision deficiency).
COLORMAPS = {"jet": "Jet (rainbow)", "viridis": "Viridis (colour-blind safe)", "cividis": "Cividis (colour-blind safe)"}
# The colour of the highest values in each map, for captions that say where to look.
HOT_COLOUR = {"jet": "red", "viridis": "yellow", "cividis": "yellow"}


def colorize(heatmap: np.ndarray, colormap: str = COLORMAP) -> np.ndarray:
    """(h, w) in [0, 1] -> (h, w, 3) uint8 through the colour map."""
    from matplotlib import colormaps

    if colormap not in COLORMAPS:
        raise ValueError(f"Unknown colour map {colormap!r}; choose one of {', '.join(COLORMAPS)}")
    return (colormaps[colormap](np.clip(heatmap, 0, 1))[..., :3] * 255).astype(np.uint8)


def render_overlay(image: Image.Image, heatmap: np.ndarray, opacity: float = HEATMAP_OPACITY,
                   colormap: str = COLORMAP) -> Image.Image:
    """Blend the colourised heatmap (resized to the image) over the RGB image."""
    rgb = image.convert("RGB")
    heat = Image.fromarray((np.clip(heatmap, 0, 1) * 255).astype(np.uint8)).resize(rgb.size, Image.Resampling.BILINEAR)
    coloured = Image.fromarray(colorize(np.asarray(heat, dtype=np.float32) / 255.0, colormap))
    return Image.blend(rgb, coloured, float(np.clip(opacity, 0.0, 1.0)))


def to_png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
