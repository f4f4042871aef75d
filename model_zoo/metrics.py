"""Evaluation metrics (scikit-learn) with bootstrap confidence intervals: one metrics.json format for the trainer
and the app's quick custom models (model_zoo/quick_model.py), so every page reads either alike."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn import metrics as skm

N_BOOTSTRAP = 1000
CI_LEVEL = 0.95
SEED = 42


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(skm.balanced_accuracy_score(y_true, y_pred))


def _accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(skm.accuracy_score(y_true, y_pred))


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[int]) -> float:
    return float(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def bootstrap_ci(y_true: np.ndarray, y_pred: np.ndarray, statistic, n: int = N_BOOTSTRAP,
                 level: float = CI_LEVEL, seed: int = SEED) -> list[float]:
    """Percentile bootstrap interval of `statistic(y_true, y_pred)` over resampled images."""
    import warnings

    rng = np.random.default_rng(seed)
    size = len(y_true)
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # resamples often miss a rare class
        for _ in range(n):
            index = rng.integers(0, size, size)
            values.append(statistic(y_true[index], y_pred[index]))
    alpha = (1 - level) / 2
    return [float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))]


def specificity_per_class(confusion: np.ndarray) -> np.ndarray:
    """TN / (TN + FP) for each class, one-vs-rest, from a confusion matrix (rows = truth)."""
    total = confusion.sum()
    tp = np.diag(confusion)
    fp = confusion.sum(axis=0) - tp
    fn = confusion.sum(axis=1) - tp
    tn = total - tp - fp - fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tn + fp > 0, tn / (tn + fp), np.nan)


def compute_metrics(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str],
                    n_bootstrap: int = N_BOOTSTRAP) -> dict:
    """Everything the dashboards show for one split; JSON-serialisable.

    Args:
        y_true: (n,) integer labels in `classes` order.
        proba: (n, k) predicted probabilities.
        classes: class names in output order.
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    proba = proba / proba.sum(axis=1, keepdims=True)     # float32 softmax sums to 1 only within ~1e-7
    labels = list(range(len(classes)))
    y_pred = proba.argmax(axis=1)
    confusion = skm.confusion_matrix(y_true, y_pred, labels=labels)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    specificity = specificity_per_class(confusion)
    auc = {}
    for c, name in enumerate(classes):
        positives = (y_true == c)
        auc[name] = float(skm.roc_auc_score(positives, proba[:, c])) if 0 < positives.sum() < len(y_true) else None
    present = [v for v in auc.values() if v is not None]
    weighted = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
    macro = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": _accuracy(y_true, y_pred),
        "balanced_accuracy": _balanced_accuracy(y_true, y_pred),
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "macro_f1": float(macro[2]),
        "weighted_precision": float(weighted[0]),
        "weighted_recall": float(weighted[1]),
        "weighted_f1": float(weighted[2]),
        "log_loss": float(skm.log_loss(y_true, np.clip(proba, 1e-7, 1), labels=labels)),
        "macro_roc_auc": float(np.mean(present)) if present else None,
        "ci95": {
            "accuracy": bootstrap_ci(y_true, y_pred, _accuracy, n_bootstrap),
            "balanced_accuracy": bootstrap_ci(y_true, y_pred, _balanced_accuracy, n_bootstrap),
            "macro_f1": bootstrap_ci(y_true, y_pred, lambda t, p: _macro_f1(t, p, labels), n_bootstrap),
        },
        "per_class": {
            name: {
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "specificity": None if np.isnan(specificity[c]) else float(specificity[c]),
                "support": int(support[c]),
                "roc_auc": auc[name],
            }
            for c, name in enumerate(classes)
        },
        "confusion_matrix": confusion.tolist(),
        "classes": list(classes),
    }
