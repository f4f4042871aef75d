"""model_zoo.clinical_views: metrics.json["clinical"] into rows and sentences, worded so nothing over-promises."""
from __future__ import annotations

import pytest

from model_zoo import clinical_views as cv


@pytest.fixture
def clinical() -> dict:
    """A small, hand-made clinical entry: two classes, one never predicted, sets short of their target."""
    return {
        "schema_version": 1,
        "bootstrap": {"resamples": 1000, "level": 0.95, "method": "percentile", "unit": "lesion",
                      "test_images": 30, "test_lesions": 20, "note": "Images of one lesion are not independent."},
        "headline_ci95": {"values": {"accuracy": 0.8, "balanced_accuracy": 0.5, "macro_f1": 0.45},
                          "image": {"accuracy": [0.7, 0.9], "balanced_accuracy": [0.45, 0.55], "macro_f1": [0.4, 0.5]},
                          "lesion": {"accuracy": [0.68, 0.92], "balanced_accuracy": [0.42, 0.58], "macro_f1": [0.38, 0.52]}},
        "per_class": {
            "nevus": {"support": 27, "recall": 1.0, "precision": 0.9, "specificity": 0.0, "f1": 0.947,
                      "ci95": {"recall": [1.0, 1.0], "precision": [0.8, 1.0], "specificity": [0.0, 0.0], "f1": [0.9, 1.0]}},
            "melanoma": {"support": 3, "recall": 0.0, "precision": None, "specificity": 1.0, "f1": 0.0,
                         "ci95": {"recall": [0.0, 0.0], "precision": None, "specificity": [1.0, 1.0], "f1": [0.0, 0.0]}},
        },
        "pr_curves": {"melanoma": {"positives": 3, "prevalence": 0.1, "average_precision": 0.4,
                                   "precision": [0.1, 0.5, 1.0], "recall": [1.0, 0.67, 0.0], "threshold": [0.01, 0.4, None]}},
        "benign_malignant": {
            "malignant_classes": ["melanoma"],
            "test": {"n": 30, "positives": 3, "roc_auc": 0.8123, "roc_auc_ci95": [0.7, 0.9],
                     "roc_curve": {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.9, 1.0], "threshold": [None, 0.3, 0.0]}},
            "malignant_operating_point": {"chosen_on": "validation", "target_sensitivity": 0.9, "threshold": 0.3,
                                          "test": {"threshold": 0.3, "sensitivity": 0.67, "specificity": 0.8,
                                                   "sensitivity_ci95": [0.3, 1.0], "specificity_ci95": [0.6, 0.9],
                                                   "positives": 3, "n": 30}},
            "melanoma_alert": None,
        },
        "conformal": {"target_coverage": 0.9, "test_coverage_below_target": True, "warning": "Not exchangeable.",
                      "test": {"n": 30, "coverage": 0.7, "coverage_ci95": [0.55, 0.85], "mean_set_size": 1.5,
                               "set_size_counts": {"2": 10, "1": 20},
                               "per_class": {"nevus": {"n": 27, "coverage": 0.74, "mean_set_size": 1.4},
                                             "melanoma": {"n": 3, "coverage": 0.33, "mean_set_size": 2.0}}},
                      "levels": [{"target_coverage": 0.8, "test_coverage": 0.6, "test_mean_set_size": 1.234}]},
    }


def test_reading_and_formatting(clinical):
    assert cv.clinical_figures({"clinical": clinical}) is clinical
    assert cv.clinical_figures({"clinical": {**clinical, "schema_version": 99}}) is None
    assert cv.clinical_figures({}) is None and cv.clinical_figures(None) is None
    assert cv.span(0.56, [0.39, 0.73]) == "56% (39–73%)"
    assert cv.span(0.56, None) == "56%"
    assert cv.auc_text(0.8123, [0.7, 0.9]) == "0.81 (95% CI 0.70–0.90)"
    assert cv.auc_text(None) == "n/a"
    assert cv.fraction(0.0146) == "0.015" and cv.fraction(0.514) == "0.51"


def test_intervals_by_lesion_side_by_side(clinical):
    assert cv.lesion_level(clinical)
    assert "whole lesions (20 lesions in 30 test images)" in cv.bootstrap_sentence(clinical)
    rows = {r["Metric"]: r for r in cv.headline_interval_rows(clinical)}
    assert rows["Balanced accuracy"]["95% CI, images resampled"] == "45.0–55.0%"
    assert rows["Balanced accuracy"]["95% CI, lesions resampled"] == "42.0–58.0%"
    clinical["headline_ci95"]["lesion"] = None
    assert cv.headline_interval_rows(clinical)[0]["95% CI, lesions resampled"] == "no lesion ids"


def test_per_class_rows_follow_the_card_and_name_the_weakest_class(clinical):
    rows = cv.per_class_interval_rows(clinical, ["melanoma", "nevus"])
    assert [r["Class"] for r in rows] == ["Melanoma", "Melanocytic nevus (mole)"]
    assert rows[0]["Precision"] == cv.NEVER_PREDICTED and rows[0]["Weak"]
    assert rows[1]["Recall (sensitivity)"] == "100% (100–100%)" and not rows[1]["Weak"]
    assert cv.weakest_class(clinical)["label"] == "melanoma"
    assert cv.weakest_class_sentence(clinical).startswith(
        "Weakest class: **Melanoma**, recall 0% (0–0%) on 3 test images (too few for a reliable interval).")
    assert cv.recall_interval(clinical, "melanoma") == "0–0%" and cv.recall_interval(clinical, "x") == cv.MISSING


def test_curves_and_operating_points(clinical):
    summary = cv.pr_curve_rows(clinical)
    assert summary[0]["Average precision"] == 0.4 and summary[0]["Chance level (prevalence)"] == 0.1
    assert cv.pr_subtitle(summary[0]) == "AP 0.40 · chance 0.10 · 3 test images"
    points = cv.pr_points(clinical["pr_curves"]["melanoma"])
    assert [p["Order"] for p in points] == [0, 1, 2] and points[-1]["Threshold"] is None
    bm = clinical["benign_malignant"]
    assert len(cv.roc_points(bm)) == 3
    assert cv.malignant_point(bm)["False positive rate"] == pytest.approx(0.2)
    rows = cv.operating_point_rows(bm)
    assert len(rows) == 1 and rows[0]["Chosen on"] == "validation, for 90% sensitivity"
    assert rows[0]["Sensitivity (95% CI)"] == "67% (30–100%)"
    text = cv.benign_malignant_sentence(bm)
    assert "AUROC **0.81 (95% CI 0.70–0.90)**" in text and "chosen on validation for 90% sensitivity" in text


def test_conformal_shortfall_is_never_worded_as_the_target(clinical):
    conformal = clinical["conformal"]
    assert cv.below_target(conformal)
    sentence = cv.coverage_sentence(conformal)
    assert "**only 70.0% (95% CI 55.0–85.0%)**" in sentence and "**not** 90% sets" in sentence
    assert cv.coverage_gap(conformal) == "-20.0 pts vs target"
    assert [r["Diagnoses in the set"] for r in cv.set_size_rows(conformal)] == [1, 2]
    rows = cv.conformal_class_rows(conformal, ["melanoma", "nevus"])
    assert rows[0]["Below target"] and rows[0]["Class"] == "Melanoma"
    assert cv.least_covered_sentence(conformal).startswith("Least covered class: **Melanoma**, 33%")
    assert cv.level_rows(conformal) == [{"Target coverage": "80%", "Test coverage": "60.0%", "Mean set size": 1.23}]
    conformal.update(test_coverage_below_target=False, warning=None, test={**conformal["test"], "coverage": 0.91})
    assert "**not**" not in cv.coverage_sentence(conformal)
