"""What one diagnosis says: the `Diagnosis` of an image by one model, its dermoscopy-check verdict, heatmaps,
unreadable batch items and the refusal messages every page shows.

Kept apart from the diagnosis path (model_zoo.diagnosis) so that pages, the case report, the clinic view and
the batch CSV can read a result without importing how it is computed. No Streamlit, no TensorFlow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from PIL import Image

from . import quality
from .classes import concerning_probability
from .constants import EXPLAINER_LABELS
from .inference import LOW_CONFIDENCE, Reading, read
from .metadata import PatientDetails
from .ood import UNLIKE_TRAINING

NOT_DERMOSCOPY = ("This does not look like a dermoscopy image, so the model will not classify it. It was trained "
                  "only on close-up images taken through a dermatoscope; on photos, documents, screenshots or plain "
                  "colours its answer would be meaningless. Please upload a dermoscopy image of a skin lesion.")
UNLIKE_TRAINING_MESSAGE = (
    "This looks like a dermoscopy image, but unlike the images this model was trained on: perhaps another "
    "dermatoscope or clinic, unusual lighting or a rare kind of lesion. The model's answer below is less reliable "
    "for such images, so do not take a harmless-looking answer as reassurance: have the lesion assessed by a "
    "clinician. The melanoma alert still applies.")


@dataclass(frozen=True)
class OodVerdict:
    """This model's dermoscopy check: run or not (and why), its kind (refused as not dermoscopy, unlike the
    training images, or neither) and how it decides."""

    checked: bool
    rejected: bool = False       # kind == "not_dermoscopy": refused
    score: Optional[float] = None
    threshold: Optional[float] = None
    status: str = ""             # why it was not checked ("" when it was)
    how_decided: str = ""        # the method and its test figures, from the card
    kind: str = ""               # "in_distribution" | "unlike_training" | "not_dermoscopy" ("" when not checked)
    relative_score: Optional[float] = None      # residual share of the features (the refusal score)
    refuse_threshold: Optional[float] = None    # refused above this relative score (None: an old detector)

    @property
    def note(self) -> str:
        """What a page shows under a result when no detector could check the image."""
        return "" if self.checked else f"Note: {self.status}, so non-dermoscopy images are not refused."

    @property
    def unlike_training(self) -> bool:
        """A dermoscopy image unlike the training images: classified, with a warning."""
        return self.kind == UNLIKE_TRAINING

    @property
    def message(self) -> str:
        """The plain-language message of this verdict ("" when there is nothing to say)."""
        if self.rejected:
            return NOT_DERMOSCOPY
        return UNLIKE_TRAINING_MESSAGE if self.unlike_training else ""


@dataclass(frozen=True)
class Heatmap:
    """Where the model looked for one class: (h, w) values in [0, 1] at the model's input size."""

    values: np.ndarray
    method: str                  # registry name, e.g. "gradcam"
    target: str                  # class label explained

    @property
    def label(self) -> str:
        return EXPLAINER_LABELS.get(self.method, self.method)


@dataclass(frozen=True)
class ItemError:
    """A batch item that could not be read as an image."""

    name: str
    message: str
    model_id: str = ""
    model_sha256: str = ""


@dataclass
class Diagnosis:
    """Everything a page, a CSV row or a case report needs about one image and one model."""

    name: str
    model_id: str
    model_sha256: str
    classes: list[str]
    not_dermoscopy: OodVerdict
    quality: Optional[quality.QualityVerdict]     # None: no gate (see quality_status)
    quality_status: str = ""
    refused_elsewhere: tuple[str, ...] = ()       # other models whose detector refused this image (compare)
    card: dict = field(default_factory=dict, repr=False)       # the card as it applies (details variant merged)
    metrics: dict = field(default_factory=dict, repr=False)    # metrics.json as it applies (details: fusion)
    probabilities: Optional[np.ndarray] = None    # calibrated; fused with the details when they were used
    image_probabilities: Optional[np.ndarray] = None   # calibrated, image alone
    details: Optional[PatientDetails] = None
    details_variant: Optional[str] = None         # e.g. "age+sex+site" when the details were used
    details_note: Optional[str] = None
    abstention_threshold: float = LOW_CONFIDENCE
    abstains: Optional[bool] = None
    melanoma_label: Optional[str] = None
    melanoma_probability: Optional[float] = None
    melanoma_threshold: Optional[float] = None
    melanoma_alert: Optional[bool] = None
    prediction_set: Optional[list[str]] = None    # conformal set (model_zoo.conformal), when available
    prediction_set_note: str = ""
    tta: bool = False
    hair_removed: bool = False
    fov_cropped: bool = False                     # cut to the dermatoscope's round field before the model
    backend: str = ""
    image: Optional[Image.Image] = field(default=None, repr=False)    # upright RGB upload (single images)
    array: Optional[np.ndarray] = field(default=None, repr=False)     # what the model saw (heatmaps)

    @property
    def refused(self) -> bool:
        return bool(self.refusal_reasons)

    @property
    def refusal_reasons(self) -> tuple[str, ...]:
        """The gates that refused the image, in the order they run: "quality", then "not_dermoscopy"."""
        reasons = ("quality",) if self.quality is not None and not self.quality.usable else ()
        if self.not_dermoscopy.rejected or self.refused_elsewhere:
            reasons += ("not_dermoscopy",)
        return reasons

    @property
    def refusal_kind(self) -> Optional[str]:
        """The first refusing gate, or None (classified). A poor image is told so first: blur or glare can
        also make a real dermoscopy image look foreign to the detector, and retaking it is the remedy."""
        return self.refusal_reasons[0] if self.refusal_reasons else None

    @property
    def refusal(self) -> str:
        """Why the image was not classified, in plain language ("" when it was)."""
        reasons = self.refusal_reasons
        elsewhere = (f" (refused by the detector of {', '.join(self.refused_elsewhere)}; one model's refusal "
                     "refuses the image for every model)") if self.refused_elsewhere else ""
        if reasons == ("not_dermoscopy",):
            return NOT_DERMOSCOPY + elsewhere
        if reasons == ("quality", "not_dermoscopy"):
            return (f"{self.quality.message} It also does not look like a dermoscopy image to the model{elsewhere}; "
                    "if it is not one, please upload a dermoscopy image of a skin lesion.")
        return self.quality.message if reasons else ""

    @property
    def unlike_training(self) -> bool:
        """Classified, but the image is unlike this model's training images: show `ood_warning` prominently."""
        return not self.refused and self.not_dermoscopy.unlike_training

    @property
    def ood_warning(self) -> str:
        """The warning a page shows above the answer of an image unlike the training images ("" otherwise)."""
        return self.not_dermoscopy.message if self.unlike_training else ""

    @property
    def refer(self) -> Optional[bool]:
        """The advice to have the lesion assessed by a clinician: the model abstains (low confidence) or the
        image is unlike its training images; None when nothing was classified."""
        if self.probabilities is None:
            return None
        return bool(self.abstains) or self.unlike_training

    @property
    def reading(self) -> Optional[Reading]:
        return None if self.probabilities is None else read(self.probabilities, self.classes)

    @property
    def top(self) -> Optional[str]:
        return None if self.probabilities is None else self.classes[int(np.argmax(self.probabilities))]

    @property
    def top_probability(self) -> Optional[float]:
        return None if self.probabilities is None else float(np.max(self.probabilities))

    @property
    def runner_up(self) -> Optional[str]:
        reading = self.reading
        return None if reading is None else reading.runner_up

    @property
    def runner_up_probability(self) -> Optional[float]:
        reading = self.reading
        return None if reading is None else reading.runner_up_probability

    @property
    def concerning_probability(self) -> Optional[float]:
        return None if self.probabilities is None else concerning_probability(self.probabilities, self.classes)

    def ranked(self) -> list[tuple[str, float]]:
        reading = self.reading
        return [] if reading is None else reading.ranked()
