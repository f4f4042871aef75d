"""Fit calibration, abstention and the melanoma operating point from a model's saved predictions."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from model_zoo import store
from model_zoo.calibration import calibrate, card_summary  # noqa: F401  (train and metadata import it from here)
from model_zoo.constants import melanoma_label

from .data import refuse_test_only


def calibration_from_arrays(classes: list[str], val: tuple[np.ndarray, np.ndarray],
                            test: tuple[np.ndarray, np.ndarray], n_bootstrap: int = 1000) -> dict:
    """(probabilities, labels) for validation and test -> the full calibration result."""
    return calibrate(val[0], val[1], test[0], test[1], classes, melanoma_label(classes), n_bootstrap=n_bootstrap)


def _split_arrays(rows: list[dict], split: str, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    chosen = [r for r in rows if r["split"] == split]
    probabilities = np.array([[float(r[f"p_{c}"]) for c in classes] for r in chosen])
    labels = np.array([classes.index(r["true"]) for r in chosen])
    return probabilities, labels


def calibrate_model(model_id: str, zoo_root: Optional[Path] = None, n_bootstrap: int = 1000) -> dict:
    """Recompute from predictions.csv; rewrites metrics.json["calibration"] and the card's summary atomically,
    then metrics.json["clinical"] (trainer/clinical.py), which uses the new temperature."""
    import model_zoo

    folder = model_zoo.zoo.model_folder(model_id, zoo_root)
    card = store.read_json(folder / store.CARD_FILE)
    refuse_test_only(card.get("dataset"), "calibration or threshold fitting")
    classes = card["classes"]
    rows = model_zoo.read_predictions(model_id, zoo_root)
    result = calibration_from_arrays(classes, _split_arrays(rows, "val", classes), _split_arrays(rows, "test", classes),
                                     n_bootstrap)
    store.update_metrics(folder, {"calibration": result})
    store.update_card(folder, card_summary(result))
    from .clinical import clinical_for_model

    clinical_for_model(model_id, zoo_root, n_bootstrap)        # its sets and thresholds depend on the temperature
    return result
