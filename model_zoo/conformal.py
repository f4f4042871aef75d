"""Split conformal prediction sets: the diagnoses the model cannot rule out at a stated coverage.

Method: LAC, the "least ambiguous set-valued classifier" (Sadinle, Lei & Wasserman 2019, JASA), in the form of
Angelopoulos & Bates 2021, "A Gentle Introduction to Conformal Prediction and Distribution-Free Uncertainty
Quantification", sec. 1 (arXiv:2107.07511):

- conformity score on a held-out (validation) image: s = 1 - p(true class), p the calibrated probabilities;
- qhat = the ceil((n + 1)(1 - alpha)) / n empirical quantile of the n validation scores;
- set for a new image = every class with p >= 1 - qhat.

If validation and new images are exchangeable, the set holds the true diagnosis with probability >= 1 - alpha
(on average over images, not per class). LAC gives the smallest sets on average; sets can be empty, so here the
most probable class is always added (a larger set can only raise coverage).

The trainer fits qhat (trainer/clinical.py) and stores it in metrics.json["clinical"]["conformal"]; this module
only applies it, with numpy, so the app needs neither the trainer nor TensorFlow.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np


def set_mask(probabilities: np.ndarray, qhat: float, non_empty: bool = True) -> np.ndarray:
    """Boolean (..., k): class c is in the set when p_c >= 1 - qhat (plus the top class when `non_empty`)."""
    p = np.asarray(probabilities, dtype=np.float64)
    mask = p >= 1.0 - float(qhat)
    if non_empty:
        top = np.zeros_like(mask)
        np.put_along_axis(top, p.argmax(axis=-1)[..., None], True, axis=-1)
        mask |= top
    return mask


def conformal_entry(metrics_or_entry: Mapping) -> Mapping:
    """The stored conformal fit, from a whole metrics.json dict or from the entry itself."""
    if "qhat" in metrics_or_entry:
        return metrics_or_entry
    entry = metrics_or_entry.get("clinical", {}).get("conformal")
    if not entry:
        raise KeyError("metrics.json has no clinical.conformal entry; run `python -m trainer clinical MODEL_ID`")
    return entry


def prediction_set(probabilities: np.ndarray, metrics_or_entry: Mapping, classes: Sequence[str]) -> list[str]:
    """The classes the model cannot rule out at the stored coverage (e.g. 90%), most probable first.

    Args:
        probabilities: (k,) CALIBRATED probabilities of one image (the card's temperature applied), `classes` order.
        metrics_or_entry: metrics.json as a dict, or its ["clinical"]["conformal"] entry.
        classes: class names in the model's output order.
    """
    entry = conformal_entry(metrics_or_entry)
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if len(p) != len(classes):
        raise ValueError(f"{len(p)} probabilities for {len(classes)} classes")
    mask = set_mask(p, entry["qhat"], bool(entry.get("non_empty", True)))
    return [classes[i] for i in np.argsort(-p, kind="stable") if mask[i]]
