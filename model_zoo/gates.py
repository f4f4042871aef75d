"""The decisions around a classification, each from the model's card or fitted files: the dermoscopy check's
verdicts (model_zoo.ood), the image-quality verdict (model_zoo.quality), the melanoma alert (the card's
operating point) and the conformal prediction set (model_zoo.conformal).

Kept apart from the diagnosis path so that each rule reads on its own and the trainer can score with the same
melanoma alert the app raises. No Streamlit, no TensorFlow.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from . import quality
from .constants import melanoma_label
from .diagnosis_result import OodVerdict
from .ood import NOT_DERMOSCOPY as NOT_DERMOSCOPY_KIND

log = logging.getLogger(__name__)


def ood_verdicts(model, features: np.ndarray) -> list[OodVerdict]:
    """One verdict per feature row; unchecked (with the reason) when the model has no usable detector."""
    detector = model.ood_detector
    if detector is None:
        return [OodVerdict(False, status=model.ood_status)] * len(features)
    scores, kinds = detector.scores(features), detector.kinds(features)
    relative = detector.relative_scores(features) if detector.refuse_threshold is not None else [None] * len(kinds)
    how = _how_decided(model.card.get("ood", {}))
    refuse = None if detector.refuse_threshold is None else float(detector.refuse_threshold)
    return [OodVerdict(True, kind == NOT_DERMOSCOPY_KIND, float(s), float(detector.threshold), "", how, kind,
                       None if r is None else float(r), refuse)
            for s, kind, r in zip(scores, kinds, relative)]


def _how_decided(ood: dict) -> str:
    if not ood or "ood_rejected" not in ood:
        return ""
    text = (f"How this is decided: the image's features are compared with those of the training images "
            f"({ood.get('method', '')}). On test, this check refused {ood['ood_rejected']:.0%} of a set of "
            f"non-dermoscopy images and {ood['dermoscopy_wrongly_rejected']:.1%} of real dermoscopy images")
    if ood.get("dermoscopy_unlike") is None:
        return text + "."
    return (text + f"; it flagged a further {ood['dermoscopy_unlike']:.0%} of real dermoscopy images as unlike the "
            "training images, which are classified with a warning.")


def quality_verdict(image: Image.Image, check: bool = True) -> tuple[Optional[quality.QualityVerdict], str]:
    """(verdict, "") or (None, why there is no gate)."""
    if not check:
        return None, "the image-quality check was switched off"
    limits, status = quality.thresholds()
    return (None, status) if limits is None else (quality.verdict_for(quality.measure(image), limits), "")


def melanoma_status(probabilities: np.ndarray, classes: Sequence[str], card: dict
                    ) -> tuple[Optional[str], Optional[float], Optional[float], Optional[bool]]:
    """(label, probability, alert threshold, alert?) from the card's melanoma operating point."""
    point = card.get("melanoma_operating_point") or {}
    label = point.get("class") if point.get("class") in classes else melanoma_label(classes)
    if label is None:
        return None, None, None, None
    probability = float(probabilities[list(classes).index(label)])
    threshold = point.get("test", {}).get("threshold")
    if threshold is None:
        return label, probability, None, None
    return label, probability, float(threshold), probability >= float(threshold)


def conformal_set(model, probabilities: np.ndarray, metrics: dict) -> tuple[Optional[list[str]], str]:
    """(labels, note) from model_zoo.conformal, fitted on validation and stored in metrics.json; (None, "")
    when that module or the model's fit is absent (the fit is for image-only probabilities: a details-fused
    result has other metrics, so no set)."""
    try:
        from .conformal import conformal_entry, prediction_set
    except ImportError:                                # added by another part of the project; optional here
        return None, ""
    try:
        entry = conformal_entry(metrics)
        labels = prediction_set(probabilities, entry, model.classes)
    except (KeyError, ValueError, TypeError) as exc:
        log.debug("no conformal prediction set: %s", exc)
        return None, ""
    return labels, _conformal_note(entry)


def _conformal_note(entry: dict) -> str:
    target, test = entry.get("target_coverage"), (entry.get("test") or {}).get("coverage")
    if target is None:
        return ""
    note = f"Conformal set for {target:.0%} coverage (fitted on validation"
    note += f"; it held the true diagnosis for {test:.0%} of test images)." if test is not None else ")."
    return note + (f" Caution: {entry['warning']}" if entry.get("warning") else "")

