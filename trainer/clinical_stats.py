"""Test statistics of the clinical views with bootstrap intervals: headline and per-class scores,
precision-recall and ROC curves, and benign versus malignant with its operating points.

Pure functions of labels and calibrated probabilities; the resamples come from trainer/lesion_bootstrap.py, so one
set of (lesion) resamples serves every interval of a model.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from sklearn import metrics as skm

from model_zoo.calibration import choose_sensitivity_threshold
from model_zoo.classes import is_concerning

from .lesion_bootstrap import bootstrap_values, finite_or_none, percentile_interval
from .metrics import CI_LEVEL, specificity_per_class

MALIGNANT_SENSITIVITY = 0.90
CURVE_POINTS = 100
ROUND = 4
PER_CLASS_METRICS = ("recall", "precision", "specificity", "f1")


def headline_scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> tuple[float, float, float]:
    """(accuracy, balanced accuracy, macro-F1) as trainer.metrics computes them."""
    labels = list(range(n_classes))
    return (skm.accuracy_score(y_true, y_pred), skm.balanced_accuracy_score(y_true, y_pred),
            skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def headline_intervals(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int,
                       resamples: Sequence[np.ndarray], level: float = CI_LEVEL) -> dict:
    """95% intervals of accuracy, balanced accuracy and macro-F1 over the given resamples."""
    values = bootstrap_values(lambda i: headline_scores(y_true[i], y_pred[i], n_classes), resamples)
    return {name: percentile_interval(values[:, j], level)
            for j, name in enumerate(("accuracy", "balanced_accuracy", "macro_f1"))}


def per_class_scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(4, k): recall, precision, specificity, F1 per class, one-vs-rest; NaN where undefined (no such image,
    or never predicted), so undefined resamples drop out of the interval instead of counting as 0."""
    labels = list(range(n_classes))
    precision, recall, f1, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                                   zero_division=np.nan)
    specificity = specificity_per_class(skm.confusion_matrix(y_true, y_pred, labels=labels))
    return np.vstack([recall, precision, specificity, f1]).astype(np.float64)


def per_class_intervals(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str],
                        resamples: Sequence[np.ndarray], level: float = CI_LEVEL) -> dict:
    """Per class: support, the four scores and their bootstrap intervals."""
    k = len(classes)
    point = per_class_scores(y_true, y_pred, k)
    values = bootstrap_values(lambda i: per_class_scores(y_true[i], y_pred[i], k), resamples)
    support = np.bincount(y_true, minlength=k)
    return {name: {"support": int(support[c]),
                   **{m: finite_or_none(point[j, c]) for j, m in enumerate(PER_CLASS_METRICS)},
                   "ci95": {m: percentile_interval(values[:, j, c], level) for j, m in enumerate(PER_CLASS_METRICS)}}
            for c, name in enumerate(classes)}


def _downsample(arrays: Sequence[np.ndarray], points: int) -> list[np.ndarray]:
    """At most `points` evenly spaced entries of parallel arrays, both ends kept."""
    n = len(arrays[0])
    keep = np.unique(np.linspace(0, n - 1, min(points, n)).round().astype(int))
    return [np.asarray(a)[keep] for a in arrays]


def _rounded(values: np.ndarray) -> list[Optional[float]]:
    return [None if not np.isfinite(v) else round(float(v), ROUND) for v in np.asarray(values, dtype=np.float64)]


def pr_curve(positive: np.ndarray, score: np.ndarray, points: int = CURVE_POINTS) -> dict:
    """Compact precision-recall curve (scikit-learn) and average precision; chance level = prevalence."""
    positive = np.asarray(positive, bool)
    if not 0 < positive.sum() < len(positive):
        return {"positives": int(positive.sum()), "prevalence": float(positive.mean()), "average_precision": None,
                "precision": [], "recall": [], "threshold": []}
    precision, recall, thresholds = skm.precision_recall_curve(positive, score, drop_intermediate=True)
    thresholds = np.append(thresholds, np.nan)          # the last point (recall 0, precision 1) has no threshold
    precision, recall, thresholds = _downsample([precision, recall, thresholds], points)
    return {"positives": int(positive.sum()), "prevalence": float(positive.mean()),
            "average_precision": float(skm.average_precision_score(positive, score)),
            "precision": _rounded(precision), "recall": _rounded(recall), "threshold": _rounded(thresholds)}


def roc_curve(positive: np.ndarray, score: np.ndarray, points: int = CURVE_POINTS) -> dict:
    """Compact ROC curve (scikit-learn); the first point's threshold (infinity) is stored as null."""
    positive = np.asarray(positive, bool)
    if not 0 < positive.sum() < len(positive):
        return {"fpr": [], "tpr": [], "threshold": []}
    fpr, tpr, thresholds = skm.roc_curve(positive, score, drop_intermediate=True)
    fpr, tpr, thresholds = _downsample([fpr, tpr, thresholds], points)
    return {"fpr": _rounded(fpr), "tpr": _rounded(tpr), "threshold": _rounded(thresholds)}


def roc_curves(y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[str],
               points: int = CURVE_POINTS) -> dict:
    """One-vs-rest ROC curve and AUROC per class: the Evaluation page draws these instead of computing them
    (the app then never imports scikit-learn)."""
    curves = {}
    for c, name in enumerate(classes):
        positive = y_true == c
        curve = roc_curve(positive, probabilities[:, c], points)
        auc = skm.roc_auc_score(positive, probabilities[:, c]) if 0 < positive.sum() < len(positive) else None
        curves[name] = {"auc": None if auc is None else float(auc), **curve}
    return curves


def pr_curves(y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[str],
              points: int = CURVE_POINTS) -> dict:
    """One-vs-rest precision-recall curve per class."""
    return {name: pr_curve(y_true == c, probabilities[:, c], points) for c, name in enumerate(classes)}


def sensitivity_specificity(positive: np.ndarray, flagged: np.ndarray) -> tuple[float, float]:
    """(sensitivity, specificity) with scikit-learn's recall of each side; NaN where a side is absent."""
    specificity, sensitivity = skm.recall_score(np.asarray(positive, int), np.asarray(flagged, int), labels=[0, 1],
                                                average=None, zero_division=np.nan)
    return sensitivity, specificity


def operating_point(score: np.ndarray, positive: np.ndarray, threshold: float, resamples: Sequence[np.ndarray],
                    level: float = CI_LEVEL) -> dict:
    """Sensitivity and specificity of `score >= threshold` with bootstrap intervals (the keys of
    model_zoo.calibration.binary_rates, so the app can show both alike)."""
    positive, flagged = np.asarray(positive, bool), np.asarray(score) >= threshold
    sens, spec = sensitivity_specificity(positive, flagged)
    values = bootstrap_values(lambda i: sensitivity_specificity(positive[i], flagged[i]), resamples)
    return {"threshold": float(threshold), "sensitivity": finite_or_none(sens), "specificity": finite_or_none(spec),
            "sensitivity_ci95": percentile_interval(values[:, 0], level),
            "specificity_ci95": percentile_interval(values[:, 1], level),
            "positives": int(positive.sum()), "n": int(len(positive))}


def malignant_mask(classes: Sequence[str]) -> np.ndarray:
    """Which classes are malignant or pre-malignant (melanoma, BCC, SCC, actinic keratosis / akiec)."""
    return np.array([is_concerning(c) for c in classes])


def benign_malignant(val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                     classes: Sequence[str], resamples: Sequence[np.ndarray], val_resamples: Sequence[np.ndarray],
                     melanoma_alert: Optional[tuple[str, float]], target_sensitivity: float = MALIGNANT_SENSITIVITY,
                     level: float = CI_LEVEL) -> dict:
    """Malignant (incl. pre-malignant) vs benign from the summed probability; test resampled by `resamples`."""
    mask = malignant_mask(classes)
    (val_p, val_y), (test_p, test_y) = val, test
    val_score, test_score = val_p[:, mask].sum(axis=1), test_p[:, mask].sum(axis=1)
    val_pos, test_pos = mask[val_y], mask[test_y]
    auc = lambda pos, s: skm.roc_auc_score(pos, s) if 0 < pos.sum() < len(pos) else np.nan
    threshold = choose_sensitivity_threshold(val_score, val_pos, target_sensitivity)
    result = {
        "malignant_classes": [c for c, m in zip(classes, mask) if m],
        "score": "sum of the calibrated probabilities of the malignant and pre-malignant classes",
        "test": {"n": int(len(test_y)), "positives": int(test_pos.sum()), "roc_auc": finite_or_none(auc(test_pos, test_score)),
                 "roc_auc_ci95": percentile_interval(bootstrap_values(lambda i: auc(test_pos[i], test_score[i]),
                                                                      resamples), level),
                 "average_precision": pr_curve(test_pos, test_score)["average_precision"],
                 "roc_curve": roc_curve(test_pos, test_score)},
        "validation": {"n": int(len(val_y)), "positives": int(val_pos.sum()), "roc_auc": finite_or_none(auc(val_pos, val_score))},
        "malignant_operating_point": {
            "chosen_on": "validation", "target_sensitivity": target_sensitivity, "threshold": float(threshold),
            "rule": f"highest threshold on the summed malignant probability whose validation sensitivity is >= "
                    f"{target_sensitivity:.0%} (the rule of the melanoma alert)",
            "validation": operating_point(val_score, val_pos, threshold, val_resamples, level),
            "test": operating_point(test_score, test_pos, threshold, resamples, level),
        },
        "melanoma_alert": None,
    }
    if melanoma_alert and melanoma_alert[0] in classes:
        name, mel_threshold = melanoma_alert
        c = list(classes).index(name)
        result["melanoma_alert"] = {
            "class": name, "source": "card.json melanoma_operating_point (chosen on validation)",
            "test": operating_point(test_p[:, c], test_y == c, mel_threshold, resamples, level)}
    return result
