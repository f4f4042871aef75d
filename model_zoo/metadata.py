"""Patient details (age, sex, body site) as a second source of evidence, fused with the image model.

A small multinomial logistic regression p(class | details) is fitted on the training split's
HAM10000 metadata with balanced class weights (trainer/metadata.py). At prediction time the two
are pooled log-linearly,

    p(class | image, details) = softmax((log p_image + alpha * log p_details) / T),

with alpha and the temperature T chosen on the validation split, never on test. This is late
fusion: the image model is unchanged and the details are optional (no details: the image-only
answer). Stored per model as `metadata_model.json`; pure numpy, so the app needs no TensorFlow or
scikit-learn for it. The encoding below is the one the trainer fits with: one function, both sides.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

METADATA_FILE = "metadata_model.json"
SEXES = ("male", "female", "unknown")
AGE_SCALE = 100.0
EPS = 1e-7


@dataclass(frozen=True)
class PatientDetails:
    """What a clinician may add; None (or "unknown") means not given."""

    age: Optional[float] = None
    sex: Optional[str] = None
    site: Optional[str] = None

    @property
    def given(self) -> bool:
        return self.age is not None or self.sex not in (None, "unknown") or self.site not in (None, "unknown")


def encode(details: Sequence[PatientDetails], sites: Sequence[str]) -> np.ndarray:
    """(n, 3 + 3 + len(sites)) features: age/100, its square, age missing; sex one-hot; site one-hot.
    An unknown sex or site is its own category ("unknown" exists in HAM10000's metadata)."""
    rows = []
    for d in details:
        age = None if d.age is None or not np.isfinite(d.age) else float(d.age) / AGE_SCALE
        sex = d.sex if d.sex in SEXES else "unknown"
        site = d.site if d.site in sites else "unknown"
        rows.append([age or 0.0, (age or 0.0) ** 2, float(age is None)]
                    + [float(sex == s) for s in SEXES] + [float(site == s) for s in sites])
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), 6 + len(sites))


def fuse(image_probabilities: np.ndarray, details_probabilities: np.ndarray, alpha: float,
         temperature: float = 1.0) -> np.ndarray:
    """softmax((log p_image + alpha log p_details) / T), row-wise."""
    logits = np.log(np.clip(image_probabilities, EPS, 1.0)) + alpha * np.log(np.clip(details_probabilities, EPS, 1.0))
    logits = logits / float(temperature)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


@dataclass
class MetadataModel:
    """The fitted details model of one zoo model, and how to fuse it (see the module docstring)."""

    classes: list[str]
    sites: list[str]
    coef: np.ndarray            # (n_classes, n_features)
    intercept: np.ndarray       # (n_classes,)
    alpha: float
    temperature: float
    record: dict                # everything in the file: selection table, metrics, thresholds

    def details_probabilities(self, details: Sequence[PatientDetails]) -> np.ndarray:
        logits = encode(details, self.sites) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, image_probabilities: np.ndarray, details: Sequence[PatientDetails],
                calibrated: bool = True) -> np.ndarray:
        """Fused probabilities from the image model's raw (uncalibrated) probabilities."""
        return fuse(np.asarray(image_probabilities, np.float64), self.details_probabilities(details), self.alpha,
                    self.temperature if calibrated else 1.0).astype(np.float32)

    def to_json(self) -> dict:
        return {**self.record, "classes": self.classes, "sites": self.sites, "coef": self.coef.tolist(),
                "intercept": self.intercept.tolist(), "alpha": self.alpha, "temperature": self.temperature}

    @classmethod
    def from_json(cls, data: dict) -> "MetadataModel":
        coef, intercept = np.asarray(data["coef"], np.float64), np.asarray(data["intercept"], np.float64)
        if coef.shape != (len(data["classes"]), 6 + len(data["sites"])) or intercept.shape != (len(data["classes"]),):
            raise ValueError("metadata model: coefficient shapes do not match its classes and sites")
        return cls(list(data["classes"]), list(data["sites"]), coef, intercept, float(data["alpha"]),
                   float(data["temperature"]), data)


def load_metadata_model(folder: Path, classes: Sequence[str]) -> tuple[Optional[MetadataModel], str]:
    """(model, "") or (None, why not): absent, unreadable, or fitted for other classes."""
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        return None, "no patient-details model for this model"
    try:
        model = MetadataModel.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{METADATA_FILE} is damaged ({type(exc).__name__}: {exc})"
    if model.classes != list(classes):
        return None, f"{METADATA_FILE} was fitted for other classes"
    return model, ""
