"""Fit the patient-details model of a HAM10000 zoo model and its fusion weight (model_zoo/metadata.py).

1. Logistic regression p(class | age, sex, site) on the training split (balanced class weights,
   scikit-learn), with the encoding the app uses.
2. The fusion weight alpha: the value on ALPHA_GRID with the best validation balanced accuracy,
   pooling with the image model's saved validation predictions (predictions.csv).
3. Temperature, abstention threshold and melanoma operating point of the fused output, fitted on
   validation with the same code as the image-only model (model_zoo.calibration.calibrate).
4. Test metrics once, for the report. Written to metadata_model.json atomically; metrics.json
   ["metadata_fusion"] and the card get the summary.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from model_zoo import store
from model_zoo.calibration import calibrate
from model_zoo.metadata import METADATA_FILE, MetadataModel, PatientDetails, encode, fuse

from .calibrate import card_summary
from .data import DataError, resolve_data_dir, select
from .metrics import compute_metrics

ALPHA_GRID = np.round(np.arange(0.0, 2.01, 0.1), 2)
MELANOMA = ("melanoma", "mel")


def details_of(image_ids, manifest: pd.DataFrame) -> list[PatientDetails]:
    """PatientDetails per image id from the HAM10000 manifest (NaN age -> None)."""
    rows = manifest.set_index("image_id").loc[list(image_ids)]
    return [PatientDetails(None if pd.isna(age) else float(age), str(sex), str(site))
            for age, sex, site in zip(rows["age"], rows["sex"].fillna("unknown"), rows["localization"].fillna("unknown"))]


def fit_details_model(details: list[PatientDetails], labels: np.ndarray, classes: list[str], sites: list[str],
                      c: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept) of a balanced multinomial logistic regression on the encoded details."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
    clf.fit(encode(details, sites), labels)
    coef = np.zeros((len(classes), clf.coef_.shape[1]))
    intercept = np.full(len(classes), -30.0)          # a class absent from training: never predicted
    coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
    return coef, intercept


def choose_alpha(image_val: np.ndarray, details_val: np.ndarray, labels: np.ndarray) -> tuple[float, list[dict]]:
    """The grid's alpha with the best validation balanced accuracy (ties: the smaller alpha), and the table."""
    from sklearn.metrics import balanced_accuracy_score

    table = [{"alpha": float(a), "val_balanced_accuracy":
              float(balanced_accuracy_score(labels, fuse(image_val, details_val, a).argmax(axis=1)))}
             for a in ALPHA_GRID]
    best = max(table, key=lambda row: (round(row["val_balanced_accuracy"], 6), -row["alpha"]))
    return best["alpha"], table


def _split(predictions: pd.DataFrame, split: str, classes: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    rows = predictions[predictions["split"] == split]
    return (list(rows["image_id"]), rows[[f"p_{c}" for c in classes]].to_numpy(np.float64),
            np.array([classes.index(t) for t in rows["true"]]))


def fit_metadata_for_model(model_id: str, data_dir: Optional[str] = None, zoo_root: Optional[Path] = None,
                           n_bootstrap: int = 1000) -> dict:
    """Fit, choose on validation, measure once on test, publish; returns metrics.json["metadata_fusion"]."""
    from sklearn.metrics import balanced_accuracy_score

    import model_zoo

    card = model_zoo.get_card(model_id, zoo_root)
    if card.get("dataset") != "ham10000":
        raise DataError("patient details (age, sex, body site) exist for HAM10000 models only")
    folder, classes = Path(card["folder"]), list(card["classes"])
    manifest = pd.read_csv(resolve_data_dir(data_dir) / "ham10000" / "manifest.csv")
    sites = sorted(set(manifest["localization"].fillna("unknown")) - {"unknown"})
    train = select("ham10000", "train")
    coef, intercept = fit_details_model(details_of(train["image_id"], manifest),
                                        np.array([classes.index(label) for label in train["label"]]), classes, sites)
    fitted = MetadataModel(classes, sites, coef, intercept, alpha=0.0, temperature=1.0, record={})

    predictions = pd.read_csv(folder / store.PREDICTIONS_FILE)
    val_ids, val_image, val_labels = _split(predictions, "val", classes)
    test_ids, test_image, test_labels = _split(predictions, "test", classes)
    val_details = fitted.details_probabilities(details_of(val_ids, manifest))
    test_details = fitted.details_probabilities(details_of(test_ids, manifest))
    alpha, table = choose_alpha(val_image, val_details, val_labels)
    val_fused, test_fused = fuse(val_image, val_details, alpha), fuse(test_image, test_details, alpha)
    melanoma = next((c for c in classes if c in MELANOMA), None)
    calibration = calibrate(val_fused, val_labels, test_fused, test_labels, classes, melanoma, n_bootstrap=n_bootstrap)
    temperature = calibration["temperature"]
    result = {
        "method": "late fusion: softmax((log p_image + alpha log p_details) / T); p_details = balanced logistic "
                  "regression on age, sex, body site (training split); alpha and T chosen on validation",
        "alpha": alpha, "alpha_selection": table, "temperature": temperature,
        "details_only_val_balanced_accuracy": float(balanced_accuracy_score(val_labels, val_details.argmax(axis=1))),
        "validation": compute_metrics(val_labels, fuse(val_image, val_details, alpha, temperature), classes, n_bootstrap),
        "test": compute_metrics(test_labels, fuse(test_image, test_details, alpha, temperature), classes, n_bootstrap),
        "calibration": calibration,
    }
    fitted.alpha, fitted.temperature = alpha, temperature
    fitted.record = {"model_id": model_id, "method": result["method"], "fitted_on": "train split, HAM10000 metadata",
                     "card_summary": card_summary(calibration)}    # thresholds of the fused output, as a card holds them
    store.write_json_atomic(folder / METADATA_FILE, fitted.to_json())
    metrics = store.read_json(folder / store.METRICS_FILE)
    metrics["metadata_fusion"] = result
    store.write_json_atomic(folder / store.METRICS_FILE, metrics)
    card_data = store.read_json(folder / store.CARD_FILE)
    card_data["metadata_fusion"] = {
        "alpha": alpha, "val_balanced_accuracy": result["validation"]["balanced_accuracy"],
        "test_balanced_accuracy": result["test"]["balanced_accuracy"],
        "test_melanoma_recall": _recall(result["test"], melanoma),
    }
    store.write_json_atomic(folder / store.CARD_FILE, card_data)
    return result


def _recall(split_metrics: dict, name: Optional[str]) -> Optional[float]:
    per_class = split_metrics.get("per_class") or {}
    row = per_class.get(name) if isinstance(per_class, dict) else None
    return None if row is None else float(row.get("recall"))
