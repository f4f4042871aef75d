"""Turning probabilities into what the Classify page says (no Streamlit, no TensorFlow)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .classes import concerning_probability, display_name, is_concerning

LOW_CONFIDENCE = 0.5        # below this top probability the page says the model is unsure


@dataclass
class Reading:
    """One image's result, ready to display."""

    classes: list[str]
    probabilities: np.ndarray
    top: str
    top_probability: float
    runner_up: str
    runner_up_probability: float
    concerning_probability: float

    @property
    def unsure(self) -> bool:
        return self.top_probability < LOW_CONFIDENCE

    @property
    def top_is_concerning(self) -> bool:
        return is_concerning(self.top)

    def ranked(self) -> list[tuple[str, float]]:
        order = np.argsort(-self.probabilities)
        return [(self.classes[i], float(self.probabilities[i])) for i in order]


def read(probabilities: np.ndarray, classes: list[str]) -> Reading:
    """Summarise one probability vector."""
    p = np.asarray(probabilities, dtype=np.float64)
    order = np.argsort(-p)
    return Reading(list(classes), p, classes[order[0]], float(p[order[0]]), classes[order[1]], float(p[order[1]]),
                   concerning_probability(p, classes))


def test_recall_sentence(metrics: dict, label: str) -> Optional[str]:
    """'This model finds 62% of melanomas in its test set (10 of 16).' from metrics.json."""
    per_class = metrics.get("test", {}).get("per_class", {}).get(label)
    if not per_class or not per_class.get("support"):
        return None
    recall, support = per_class["recall"], per_class["support"]
    found = int(round(recall * support))
    precision = per_class.get("precision")
    sentence = (f"On its test set this model finds {recall:.0%} of {display_name(label).lower()} cases "
                f"({found} of {support}).")
    if precision is not None:
        sentence += f" When it says {display_name(label).lower()}, it is right {precision:.0%} of the time."
    return sentence


def batch_row(name: str, reading: Optional[Reading], error: Optional[str] = None) -> dict:
    """One row of the batch table / CSV."""
    if reading is None:
        return {"file": name, "prediction": "", "probability": None, "malignant_or_premalignant": None,
                "second": "", "error": error or ""}
    return {"file": name, "prediction": display_name(reading.top), "probability": round(reading.top_probability, 4),
            "malignant_or_premalignant": round(reading.concerning_probability, 4),
            "second": display_name(reading.runner_up), "error": ""}
