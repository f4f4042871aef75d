"""The evaluation views clinicians ask for, computed from a model's saved predictions (no network is re-run).

Stored in metrics.json["clinical"] (see `clinical_metrics` for the layout):
- precision-recall curves per class and their average precision (test);
- benign versus malignant: AUROC of the summed malignant / pre-malignant probability, sensitivity and specificity
  at the card's melanoma alert and at a malignant threshold chosen on validation;
- per-class 95% bootstrap intervals of recall, precision, specificity and F1 (test);
- intervals that resample whole lesions where the dataset has lesion ids (several images of one lesion are not
  independent), and the headline intervals both ways;
- split conformal prediction sets (LAC, see model_zoo/conformal.py) fitted on validation for 90% coverage and
  measured on test.
Every figure uses the CALIBRATED probabilities (the card's temperature), because those are what the app shows and
what its thresholds apply to. The statistics live in trainer/clinical_stats.py, the lesion bootstrap in
trainer/lesion_bootstrap.py and the conformal sets in trainer/conformal_fit.py; this module reads a zoo model's
predictions, assembles the block and stores it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from model_zoo import store
from model_zoo.calibration import apply_temperature

# CURVE_POINTS, PER_CLASS_METRICS and fit_conformal are not used here: they stay readable as clinical.* (tests).
from .clinical_stats import (CURVE_POINTS, PER_CLASS_METRICS, benign_malignant, headline_intervals,  # noqa: F401
                             headline_scores, per_class_intervals, pr_curves, roc_curves)
from .conformal_fit import COVERAGE, conformal, fit_conformal  # noqa: F401
from .lesion_bootstrap import cluster_resamples, lesion_groups, resampling_note
from .metrics import CI_LEVEL, N_BOOTSTRAP, SEED

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


# ---------------------------------------------------------------- inputs
def read_prediction_table(folder: Path, classes: Sequence[str]) -> pd.DataFrame:
    """predictions.csv with ids kept as text (the zoo's generic reader turns numeric-looking cells into floats)."""
    table = pd.read_csv(folder / store.PREDICTIONS_FILE, dtype={"split": str, "image_id": str, "true": str})
    missing = [c for c in classes if f"p_{c}" not in table.columns]
    if missing:
        raise ValueError(f"predictions.csv lacks probability columns for {missing}")
    return table


def split_arrays(table: pd.DataFrame, split: str, classes: Sequence[str],
                 temperature: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image ids, calibrated probabilities, integer labels) of one split ("val" or "test")."""
    rows = table[table["split"] == split]
    raw = rows[[f"p_{c}" for c in classes]].to_numpy(dtype=np.float64)
    labels = rows["true"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    if np.isnan(labels.astype(float)).any():
        raise ValueError(f"predictions.csv has {split} labels outside the card's classes")
    return rows["image_id"].to_numpy(dtype=str), apply_temperature(raw, temperature), labels.astype(int)


def card_temperature(card: dict, metrics: dict) -> float:
    """The temperature the app applies (card.json), else the one in metrics.json, else none (1.0)."""
    temperature = card.get("calibration", {}).get("temperature") or metrics.get("calibration", {}).get("temperature")
    return float(temperature or 1.0)


def melanoma_alert_threshold(card: dict, metrics: dict) -> Optional[tuple[str, float]]:
    """(class, threshold) of the melanoma alert the app raises, as fitted on validation (card first)."""
    point = card.get("melanoma_operating_point") or metrics.get("calibration", {}).get("melanoma_operating_point")
    if not point:
        return None
    threshold = point.get("validation", {}).get("threshold", point.get("test", {}).get("threshold"))
    return (point["class"], float(threshold)) if threshold is not None else None


# ---------------------------------------------------------------- the whole block
def clinical_metrics(classes: Sequence[str], val: tuple[np.ndarray, np.ndarray, np.ndarray],
                     test: tuple[np.ndarray, np.ndarray, np.ndarray], dataset: Optional[str], temperature: float,
                     melanoma_alert: Optional[tuple[str, float]] = None, n_bootstrap: int = N_BOOTSTRAP,
                     coverage: float = COVERAGE, seed: int = SEED, data_dir: Optional[str | Path] = None) -> dict:
    """metrics.json["clinical"] from (image ids, calibrated probabilities, labels) of validation and test."""
    classes = list(classes)
    (val_ids, val_p, val_y), (test_ids, test_p, test_y) = val, test
    groups, known = lesion_groups(dataset, test_ids, data_dir)
    val_groups, _ = lesion_groups(dataset, val_ids, data_dir)
    n_lesions = len(set(groups))
    by_lesion = n_lesions < len(groups) or known > 0
    resamples = cluster_resamples(groups, n_bootstrap, seed)
    image_resamples = cluster_resamples(np.arange(len(test_y)), n_bootstrap, seed) if by_lesion else resamples
    val_resamples = cluster_resamples(val_groups, n_bootstrap, seed)
    test_pred = test_p.argmax(axis=1)
    values = headline_scores(test_y, test_pred, len(classes))
    return {
        "schema_version": SCHEMA_VERSION,
        "computed_from": "predictions.csv (python -m trainer clinical); no network was re-run",
        "probabilities": "calibrated: softmax(log p / T) with the card's temperature, as the app shows them",
        "temperature": float(temperature),
        "split": "test",
        "bootstrap": {"resamples": int(n_bootstrap), "level": CI_LEVEL, "seed": seed, "method": "percentile",
                      "unit": "lesion" if by_lesion else "image", "test_images": int(len(test_y)),
                      "test_lesions": int(n_lesions), "test_images_with_lesion_id": known,
                      "note": resampling_note(dataset, len(test_y), n_lesions, known)},
        "headline_ci95": {
            "values": dict(zip(("accuracy", "balanced_accuracy", "macro_f1"), map(float, values))),
            "image": headline_intervals(test_y, test_pred, len(classes), image_resamples),
            "lesion": headline_intervals(test_y, test_pred, len(classes), resamples) if by_lesion else None,
            "note": "image: resampling test images (as metrics.test.ci95); lesion: resampling whole lesions "
                    "(see bootstrap.note). Where both exist, the lesion interval is the honest one.",
        },
        "per_class": per_class_intervals(test_y, test_pred, classes, resamples),
        "pr_curves": pr_curves(test_y, test_p, classes),
        "roc_curves": {"validation": roc_curves(val_y, val_p, classes), "test": roc_curves(test_y, test_p, classes)},
        "benign_malignant": benign_malignant((val_p, val_y), (test_p, test_y), classes, resamples, val_resamples,
                                             melanoma_alert),
        "conformal": conformal((val_p, val_y), (test_p, test_y), classes, resamples, coverage, dataset=dataset),
    }


def clinical_for_model(model_id: str, zoo_root: Optional[Path] = None, n_bootstrap: int = N_BOOTSTRAP,
                       coverage: float = COVERAGE, data_dir: Optional[str | Path] = None) -> dict:
    """Recompute metrics.json["clinical"] of a zoo model from its predictions.csv; writes metrics.json atomically
    and leaves card.json alone."""
    import model_zoo

    from .data import refuse_test_only

    folder = model_zoo.zoo.model_folder(model_id, zoo_root)
    card = store.read_json(folder / store.CARD_FILE)
    refuse_test_only(card.get("dataset"), "fitting thresholds or conformal sets")
    metrics_path = folder / store.METRICS_FILE
    metrics = store.read_json(metrics_path) if metrics_path.is_file() else {}
    classes = list(card["classes"])
    temperature = card_temperature(card, metrics)
    table = read_prediction_table(folder, classes)
    result = clinical_metrics(classes, split_arrays(table, "val", classes, temperature),
                              split_arrays(table, "test", classes, temperature), card.get("dataset"), temperature,
                              melanoma_alert_threshold(card, metrics), n_bootstrap, coverage, data_dir=data_dir)
    store.update_metrics(folder, {"clinical": result})        # re-read under the lock: other keys kept
    return result


def summary_line(model_id: str, result: dict) -> str:
    """One line of figures per model for the CLI."""
    bm, conf = result["benign_malignant"], result["conformal"]
    op = bm["malignant_operating_point"]["test"]
    mel = bm["melanoma_alert"]["test"] if bm["melanoma_alert"] else None
    lesion = result["headline_ci95"]["lesion"]
    text = (f"{model_id}: conformal {conf['target_coverage']:.0%} -> test coverage {conf['test']['coverage']:.3f}, "
            f"mean set size {conf['test']['mean_set_size']:.2f}; malignant AUROC {bm['test']['roc_auc']:.3f} "
            f"{_fmt_ci(bm['test']['roc_auc_ci95'])}, at t={op['threshold']:.3f} sens {op['sensitivity']:.3f} "
            f"{_fmt_ci(op['sensitivity_ci95'])} spec {op['specificity']:.3f} {_fmt_ci(op['specificity_ci95'])}")
    if mel:
        text += (f"; melanoma alert sens {mel['sensitivity']:.3f} {_fmt_ci(mel['sensitivity_ci95'])} "
                 f"spec {mel['specificity']:.3f} {_fmt_ci(mel['specificity_ci95'])}")
    if lesion:
        text += (f"; balanced accuracy CI image {_fmt_ci(result['headline_ci95']['image']['balanced_accuracy'])} "
                 f"lesion {_fmt_ci(lesion['balanced_accuracy'])}")
    return text


def _fmt_ci(ci: Optional[list[float]]) -> str:
    return "[n/a]" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"
