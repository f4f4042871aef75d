"""Names and values that the app, the zoo and the trainer must agree on, each defined once.

Plain Python only (no numpy, no TensorFlow): the app, the trainer and the tests all import it.
"""
from __future__ import annotations

from typing import Optional, Sequence

MELANOMA_LABELS = ("melanoma", "mel")
"""Class names that mean melanoma: "melanoma" in the ISIC 9-class set, "mel" in HAM10000."""

UPLOAD_TYPES = ("jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp")
"""File types the app's image uploaders accept (Streamlit's `type=`)."""

IMAGE_SUFFIXES = frozenset({f".{kind}" for kind in UPLOAD_TYPES} | {".gif"})
"""Suffixes read as images inside a zip or a folder (a GIF's first frame is read too)."""

FEATURE_LAYER = "avg_pool"
"""The pooled penultimate features every zoo model ends its backbone with (OOD checks, linear heads)."""

PREDICTION_LAYER = "pred"
"""The final softmax Dense layer of every zoo model."""

HEATMAP_OPACITY = 0.45
"""Default share of the heatmap in the overlay blend."""

EXPLAINER_LABELS = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM"}
"""Heatmap methods (model_zoo.explainers) and the names people read."""


def melanoma_label(classes: Optional[Sequence[str]]) -> Optional[str]:
    """The class that means melanoma in `classes`, or None when the dataset has none."""
    return next((c for c in (classes or []) if c in MELANOMA_LABELS), None)
