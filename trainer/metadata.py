"""Fit the patient-details model of a HAM10000 zoo model and its fusion weight (model_zoo/metadata.py).

1. Logistic regression p(class | details) on the training split (balanced class weights,
   scikit-learn), with the encoding the app uses, once per set of fields a person may give
   (age, sex, site, and every smaller set): an empty field is left out, not guessed.
2. Per variant, the fusion weight alpha: the value on ALPHA_GRID with the best validation balanced accuracy,
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
from model_zoo.constants import melanoma_label
from model_zoo.metadata import (FIELDS, METADATA_FILE, MetadataModel, PatientDetails, Variant, encode, fuse,
                                variant_key)

from .calibrate import card_summary
from .data import DataError, resolve_data_dir, select
from .metrics import compute_metrics

ALPHA_GRID = np.round(np.arange(0.0, 2.01, 0.1), 2)


def details_of(image_ids, manifest: pd.DataFrame) -> list[PatientDetails]:
    """PatientDetails per image id from the HAM10000 manifest (NaN age -> None)."""
    rows = manifest.set_index("image_id").loc[list(image_ids)]
    return [PatientDetails(None if pd.isna(age) else float(age), str(sex), str(site))
            for age, sex, site in zip(rows["age"], rows["sex"].fillna("unknown"), rows["localization"].fillna("unknown"))]


def fit_details_model(details: list[PatientDetails], labels: np.ndarray, classes: list[str], sites: list[str],
                      fields: tuple[str, ...] = FIELDS, c: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept) of a balanced multinomial logistic regression on the encoded `fields`."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
    clf.fit(encode(details, sites, fields), labels)
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


def all_field_sets() -> list[tuple[str, ...]]:
    """Every non-empty set of fields, the full one first."""
    from itertools import combinations

    return [fields for size in range(len(FIELDS), 0, -1) for fields in combinations(FIELDS, size)]


def fit_variant(fields: tuple[str, ...], train: tuple, val: tuple, test: tuple, classes: list[str], sites: list[str],
                n_bootstrap: int) -> tuple[Variant, dict]:
    """One variant: fit on train, alpha and calibration on validation, figures on test (reported once)."""
    from sklearn.metrics import balanced_accuracy_score

    coef, intercept = fit_details_model(train[0], train[1], classes, sites, fields)
    variant = Variant(fields, coef, intercept)
    val_details = variant.details_probabilities(val[0], sites)
    test_details = variant.details_probabilities(test[0], sites)
    alpha, table = choose_alpha(val[1], val_details, val[2])
    melanoma = melanoma_label(classes)
    calibration = calibrate(fuse(val[1], val_details, alpha), val[2], fuse(test[1], test_details, alpha), test[2],
                            classes, melanoma, n_bootstrap=n_bootstrap)
    variant.alpha, variant.temperature = alpha, calibration["temperature"]
    val_fused = fuse(val[1], val_details, alpha, variant.temperature)
    test_fused = fuse(test[1], test_details, alpha, variant.temperature)
    variant.record = {
        "details_only_val_balanced_accuracy": float(balanced_accuracy_score(val[2], val_details.argmax(axis=1))),
        "val_balanced_accuracy": float(balanced_accuracy_score(val[2], val_fused.argmax(axis=1))),
        "test_balanced_accuracy": float(balanced_accuracy_score(test[2], test_fused.argmax(axis=1))),
        "alpha_selection": table,
        "card_summary": card_summary(calibration),    # thresholds of the fused output, as a card holds them
    }
    return variant, {"calibration": calibration, "val_fused": val_fused, "test_fused": test_fused}


def fit_metadata_for_model(model_id: str, data_dir: Optional[str] = None, zoo_root: Optional[Path] = None,
                           n_bootstrap: int = 1000) -> dict:
    """Fit every variant, choose on validation, measure once on test, publish; returns metrics.json["metadata_fusion"]."""
    import model_zoo

    card = model_zoo.get_card(model_id, zoo_root)
    if card.get("dataset") != "ham10000":
        raise DataError("patient details (age, sex, body site) exist for HAM10000 models only")
    folder, classes = Path(card["folder"]), list(card["classes"])
    manifest = pd.read_csv(resolve_data_dir(data_dir) / "ham10000" / "manifest.csv")
    sites = sorted(set(manifest["localization"].fillna("unknown")) - {"unknown"})
    rows = select("ham10000", "train")
    train = (details_of(rows["image_id"], manifest), np.array([classes.index(label) for label in rows["label"]]))
    predictions = pd.read_csv(folder / store.PREDICTIONS_FILE)
    val_ids, val_image, val_labels = _split(predictions, "val", classes)
    test_ids, test_image, test_labels = _split(predictions, "test", classes)
    val = (details_of(val_ids, manifest), val_image, val_labels)
    test = (details_of(test_ids, manifest), test_image, test_labels)

    variants = {}
    for fields in all_field_sets():
        fitted_variant, fitted_extra = fit_variant(fields, train, val, test, classes, sites, n_bootstrap)
        variants[variant_key(fields)] = fitted_variant
        if fields == FIELDS:                    # the full variant is the one reported in metrics.json
            variant, extra = fitted_variant, fitted_extra
    method = ("late fusion: softmax((log p_image + alpha log p_details) / T); p_details = balanced logistic "
              "regression on the given fields among age, sex, body site (training split); alpha and T chosen on "
              "validation, per set of given fields")
    result = {
        "method": method, "alpha": variant.alpha, "temperature": variant.temperature,
        "alpha_selection": variant.record["alpha_selection"],
        "details_only_val_balanced_accuracy": variant.record["details_only_val_balanced_accuracy"],
        "validation": compute_metrics(val_labels, extra["val_fused"], classes, n_bootstrap),
        "test": compute_metrics(test_labels, extra["test_fused"], classes, n_bootstrap),
        "calibration": extra["calibration"],
        "variants": {key: {k: v.record[k] for k in ("details_only_val_balanced_accuracy", "val_balanced_accuracy",
                                                      "test_balanced_accuracy")} | {"alpha": v.alpha}
                     for key, v in variants.items()},
    }
    fitted = MetadataModel(classes, sites, variants, {"model_id": model_id, "method": method,
                                                      "fitted_on": "train split, HAM10000 metadata"})
    store.write_json_atomic(folder / METADATA_FILE, fitted.to_json())
    store.update_metrics(folder, {"metadata_fusion": result})
    store.update_card(folder, {"metadata_fusion": {
        "alpha": variant.alpha, "val_balanced_accuracy": result["validation"]["balanced_accuracy"],
        "test_balanced_accuracy": result["test"]["balanced_accuracy"],
        "test_melanoma_recall": _recall(result["test"], melanoma_label(classes)),
    }})
    return result


def _recall(split_metrics: dict, name: Optional[str]) -> Optional[float]:
    per_class = split_metrics.get("per_class") or {}
    row = per_class.get(name) if isinstance(per_class, dict) else None
    return None if row is None else float(row.get("recall"))
