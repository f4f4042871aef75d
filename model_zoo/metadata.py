"""Patient details (age, sex, body site) as a second source of evidence, fused with the image model.

A small multinomial logistic regression p(class | details) is fitted on the training split's
HAM10000 metadata with balanced class weights (trainer/metadata.py). At prediction time the two
are pooled log-linearly,

    p(class | image, details) = softmax((log p_image + alpha * log p_details) / T),

with alpha and the temperature T chosen on the validation split, never on test. This is late
fusion: the image model is unchanged and the details are optional (no details: the image-only
answer). A field left empty is left out, not guessed: there is one variant of the details model
for each set of given fields (age; sex; site; age+sex; ...), each with its own alpha and T. Stored per model as `metadata_model.json`; pure numpy, so the app needs no TensorFlow or
scikit-learn for it. The encoding below is the one the trainer fits with: one function, both sides.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
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


FIELDS = ("age", "sex", "site")


def given_fields(details: PatientDetails) -> tuple[str, ...]:
    """The fields a person filled in, in FIELDS order ("unknown" counts as not given)."""
    values = {"age": details.age, "sex": None if details.sex == "unknown" else details.sex,
              "site": None if details.site == "unknown" else details.site}
    return tuple(f for f in FIELDS if values[f] is not None)


def variant_key(fields: Sequence[str]) -> str:
    return "+".join(f for f in FIELDS if f in fields)


def encode(details: Sequence[PatientDetails], sites: Sequence[str], fields: Sequence[str] = FIELDS) -> np.ndarray:
    """Features of the chosen fields: age -> age/100, its square, age missing; sex -> one-hot over SEXES;
    site -> one-hot over `sites` (all zero when unknown). HAM10000's own "unknown" values are categories of
    the training data; a field a person leaves empty is not encoded at all (a variant without it is used)."""
    rows = []
    for d in details:
        row: list[float] = []
        if "age" in fields:
            age = None if d.age is None or not np.isfinite(d.age) else float(d.age) / AGE_SCALE
            row += [age or 0.0, (age or 0.0) ** 2, float(age is None)]
        if "sex" in fields:
            sex = d.sex if d.sex in SEXES else "unknown"
            row += [float(sex == s) for s in SEXES]
        if "site" in fields:
            row += [float(d.site == s) for s in sites]
        rows.append(row)
    width = 3 * ("age" in fields) + len(SEXES) * ("sex" in fields) + len(sites) * ("site" in fields)
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), width)


def fuse(image_probabilities: np.ndarray, details_probabilities: np.ndarray, alpha: float,
         temperature: float = 1.0) -> np.ndarray:
    """softmax((log p_image + alpha log p_details) / T), row-wise."""
    logits = np.log(np.clip(image_probabilities, EPS, 1.0)) + alpha * np.log(np.clip(details_probabilities, EPS, 1.0))
    logits = logits / float(temperature)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


@dataclass
class Variant:
    """The details model for one set of given fields, with its validation-chosen alpha and temperature."""

    fields: tuple[str, ...]
    coef: np.ndarray            # (n_classes, n_features)
    intercept: np.ndarray       # (n_classes,)
    alpha: float = 0.0
    temperature: float = 1.0
    record: dict = field(default_factory=dict)     # selection table, validation figures, thresholds

    def details_probabilities(self, details: Sequence[PatientDetails], sites: Sequence[str]) -> np.ndarray:
        logits = encode(details, sites, self.fields) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def to_json(self) -> dict:
        return {**self.record, "fields": list(self.fields), "coef": self.coef.tolist(),
                "intercept": self.intercept.tolist(), "alpha": self.alpha, "temperature": self.temperature}


@dataclass
class MetadataModel:
    """Every variant (one per non-empty set of fields) of one zoo model's details model."""

    classes: list[str]
    sites: list[str]
    variants: dict[str, Variant]
    record: dict = field(default_factory=dict)

    @property
    def full(self) -> Variant:
        return self.variants[variant_key(FIELDS)]

    def variant_for(self, details: PatientDetails) -> Optional[Variant]:
        fields = given_fields(details)
        return self.variants.get(variant_key(fields)) if fields else None

    def predict(self, image_probabilities: np.ndarray, details: Sequence[PatientDetails],
                calibrated: bool = True) -> np.ndarray:
        """Fused probabilities from the image model's raw (uncalibrated) probabilities, row by row with the
        variant for that row's given fields; a row without details keeps the image probabilities."""
        image_probabilities = np.asarray(image_probabilities, np.float64)
        out = image_probabilities / image_probabilities.sum(axis=1, keepdims=True)
        for i, d in enumerate(details):
            variant = self.variant_for(d)
            if variant is not None:
                out[i] = fuse(image_probabilities[i:i + 1], variant.details_probabilities([d], self.sites),
                              variant.alpha, variant.temperature if calibrated else 1.0)[0]
        return out.astype(np.float32)

    def to_json(self) -> dict:
        return {**self.record, "classes": self.classes, "sites": self.sites,
                "variants": {key: v.to_json() for key, v in self.variants.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "MetadataModel":
        classes, sites = list(data["classes"]), list(data["sites"])
        variants = {}
        for key, v in data["variants"].items():
            fields = tuple(v["fields"])
            coef, intercept = np.asarray(v["coef"], np.float64), np.asarray(v["intercept"], np.float64)
            if key != variant_key(fields) or coef.shape != (len(classes), encode([PatientDetails()], sites, fields).shape[1]) \
                    or intercept.shape != (len(classes),):
                raise ValueError(f"metadata model: variant {key!r} does not match its classes, fields and sites")
            record = {k: val for k, val in v.items() if k not in ("fields", "coef", "intercept", "alpha", "temperature")}
            variants[key] = Variant(fields, coef, intercept, float(v["alpha"]), float(v["temperature"]), record)
        if variant_key(FIELDS) not in variants:
            raise ValueError("metadata model: the variant with every field is missing")
        record = {k: val for k, val in data.items() if k not in ("classes", "sites", "variants")}
        return cls(classes, sites, variants, record)


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
