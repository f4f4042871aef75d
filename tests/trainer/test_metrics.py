"""metrics.compute_metrics against scikit-learn computed independently."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from trainer.metrics import compute_metrics


def test_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + np.eye(4)[y] * 1.5
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = compute_metrics(y, proba, ["a", "b", "c", "d"], n_bootstrap=200)
    pred = proba.argmax(1)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["per_class"]["b"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y == 1, proba[:, 1]))
    cm = skm.confusion_matrix(y, pred)
    assert m["confusion_matrix"] == cm.tolist()
    tn = cm.sum() - cm[2].sum() - cm[:, 2].sum() + cm[2, 2]
    assert m["per_class"]["c"]["specificity"] == pytest.approx(tn / (tn + cm[:, 2].sum() - cm[2, 2]))
    low, high = m["ci95"]["balanced_accuracy"]
    assert low < m["balanced_accuracy"] < high


def test_absent_class_has_no_auc():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]])
    m = compute_metrics(y, proba, ["a", "b", "c"], n_bootstrap=20)
    assert m["per_class"]["c"]["roc_auc"] is None
    assert m["per_class"]["c"]["support"] == 0
