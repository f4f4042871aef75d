"""Turning probabilities into what the Classify page says (no Streamlit, no TensorFlow)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .classes import concerning_probability, display_name, is_concerning

LOW_CONFIDENCE = 0.5        # abstention threshold for a model whose card has none


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


def abstains(reading: Reading, card: dict) -> bool:
    """True when the top probability is below the card's validation-chosen abstention threshold
    (or below LOW_CONFIDENCE for a model without one)."""
    threshold = card.get("abstention", {}).get("threshold", LOW_CONFIDENCE)
    return reading.top_probability < float(threshold)


def abstention_sentence(card: dict) -> Optional[str]:
    abstention = card.get("abstention")
    if not abstention or abstention.get("accuracy") is None:
        return None
    test = abstention.get("test", {})
    text = (f"This model answers only when its confidence is at least {abstention['threshold']:.0%}, a threshold chosen "
            f"on validation images so that the answers it gives are right at least {abstention['target_accuracy']:.0%} "
            f"of the time.")
    if test.get("accuracy") is not None:
        text += (f" On its test set it answered {test['coverage']:.0%} of images and was right on "
                 f"{test['accuracy']:.0%} of those.")
    return text


def melanoma_sentence(card: dict, probability: float) -> Optional[tuple[bool, str]]:
    """(above the alert threshold?, sentence) for the card's melanoma operating point, if it has one."""
    point = card.get("melanoma_operating_point")
    if not point:
        return None
    test, threshold = point["test"], point["test"]["threshold"]
    above = probability >= threshold
    sens_low, sens_high = test["sensitivity_ci95"]
    spec_low, spec_high = test["specificity_ci95"]
    text = (f"Melanoma probability {probability:.0%} is **{'above' if above else 'below'}** this model's melanoma alert "
            f"threshold of {threshold:.0%} (set on validation images to catch {point['target_sensitivity']:.0%} of "
            f"melanomas). On its test set that threshold caught {test['sensitivity']:.0%} of melanomas "
            f"(95% CI {sens_low:.0%}–{sens_high:.0%}, {test['positives']} melanomas) with specificity "
            f"{test['specificity']:.0%} ({spec_low:.0%}–{spec_high:.0%}).")
    return above, text

