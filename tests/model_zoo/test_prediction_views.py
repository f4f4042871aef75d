"""model_zoo.prediction_views: ROC curves (stored or recomputed) and mistakes from predictions.csv."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

import model_zoo
from model_zoo import prediction_views

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_samples import CLASSES, sample  # noqa: E402, F401  (sample is a fixture)


def test_roc_curves_match_sklearn_auc(sample):
    y_true, proba, metrics, rows = sample
    points, aucs = prediction_views.roc_curves(rows, "test")
    assert set(aucs) == set(CLASSES)
    for c, name in enumerate(CLASSES):
        assert aucs[name] == pytest.approx(roc_auc_score(y_true == c, proba[:, c]))
        assert aucs[name] == pytest.approx(metrics["test"]["per_class"][name]["roc_auc"])
    mel = [p for p in points if p["Class"] == "Melanoma"]
    assert mel[0]["False positive rate"] == 0 and mel[-1]["True positive rate"] == 1
    assert mel[0]["Legend"] == f"Melanoma (AUC {aucs['melanoma']:.2f})"
    assert all(0 <= p["Threshold"] <= 1 for p in points)   # sklearn's leading inf threshold is clipped
    json.dumps(points)                                      # chart data must be JSON-safe


def test_roc_curves_skip_classes_absent_from_the_split(sample):
    *_, rows = sample
    points, aucs = prediction_views.roc_curves(rows, "validation")   # "validation" means predictions.csv's "val"
    assert aucs == {}                                       # one image: no class has both positives and negatives
    assert points == []
    assert prediction_views.roc_curves([], "test") == ([], {})


def test_misclassified_most_confident_first(sample):
    *_, rows = sample
    wrong = prediction_views.misclassified(rows, "test")
    assert len(wrong) == 4
    assert all(w["true"] != w["predicted"] for w in wrong)
    confidences = [w["confidence"] for w in wrong]
    assert confidences == sorted(confidences, reverse=True)
    assert {"image_id", "path", "true", "predicted", "confidence", "p_true"} <= set(wrong[0])
    assert len(prediction_views.misclassified(rows, "test", limit=2)) == 2
    val = prediction_views.misclassified(rows, "validation")
    assert [w["image_id"] for w in val] == ["ISIC_9"] and val[0]["confidence"] == 0.99


def test_committed_models_store_per_class_roc_curves_the_evaluation_page_draws():
    """The app draws the trainer's stored curves (no scikit-learn in the server); their AUCs agree with a
    fresh computation from predictions.csv within the calibration's small reordering."""
    for card in [c for c in model_zoo.list_models() if c["status"] == "ok"]:
        metrics = model_zoo.read_metrics(card["id"])
        points, aucs = prediction_views.stored_roc_curves(metrics, "test")
        assert points and set(aucs) <= set(card["classes"]), card["id"]
        _, fresh = prediction_views.roc_curves(model_zoo.read_predictions(card["id"]), "test", card["classes"])
        for label, area in aucs.items():
            assert abs(area - fresh[label]) < 0.02, (card["id"], label, area, fresh[label])
        assert prediction_views.stored_roc_curves(metrics, "validation")[0]
    assert prediction_views.stored_roc_curves({}, "test") == ([], {})

