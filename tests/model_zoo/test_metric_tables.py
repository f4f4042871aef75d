"""model_zoo.metric_tables: one split of metrics.json as tables, weak and worst classes, models side by side."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from model_zoo import constants, formatting, metric_tables

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_samples import CLASSES, make_card, sample  # noqa: E402, F401  (sample is a fixture)


def test_metric_table_has_every_metric_with_ci_and_explanation(sample):
    _, _, metrics, _ = sample
    rows = metric_tables.metric_table(metrics["test"])
    by_name = {r["Metric"]: r for r in rows}
    assert {"Balanced accuracy", "Accuracy", "Macro F1", "Macro precision", "Macro recall (sensitivity)",
            "Weighted F1", "Macro ROC AUC", "Log loss", "Images (n)"} <= set(by_name)
    assert by_name["Accuracy"]["Value"] == formatting.pct(metrics["test"]["accuracy"], 1)
    assert by_name["Balanced accuracy"]["95% CI"].count("%") == 2
    assert by_name["Weighted F1"]["95% CI"] == ""
    assert by_name["Images (n)"]["Value"] == "12"
    assert all(r["What it means"] for r in rows)
    assert metric_tables.metric_table({}) == []


def test_per_class_flags_weak_classes_and_names_the_worst(sample):
    _, _, metrics, _ = sample
    rows = metric_tables.per_class_table(metrics["test"])
    assert [r["label"] for r in rows] == CLASSES
    assert [r["Class"] for r in rows] == ["Melanoma", "Melanocytic nevus (mole)", "Vascular lesion"]
    assert [r["Weak"] for r in rows] == [True, False, False]
    assert rows[0]["Recall (sensitivity)"] == pytest.approx(0.25)
    assert rows[0]["Support (images)"] == 4
    assert metric_tables.weak_classes(metrics["test"]) == ["melanoma"]
    worst = metric_tables.worst_class(metrics["test"])
    assert worst == {"label": "melanoma", "name": "Melanoma", "recall": pytest.approx(0.25), "support": 4}
    assert metric_tables.worst_class({}) is None


def test_absent_class_is_not_called_weak_or_worst():
    split = {"per_class": {"a": {"recall": 0.0, "support": 0}, "b": {"recall": 0.8, "support": 5}}}
    assert metric_tables.weak_classes(split) == []
    assert metric_tables.worst_class(split)["label"] == "b"


def test_confusion_rows_counts_and_row_shares(sample):
    _, _, metrics, _ = sample
    rows = metric_tables.confusion_rows(metrics["test"])
    assert len(rows) == 9
    cell = next(r for r in rows if r["True"] == "Melanoma" and r["Predicted"] == "Melanocytic nevus (mole)")
    assert cell["Count"] == 3 and cell["Row share"] == pytest.approx(0.75) and not cell["Correct"]
    for true in {r["True"] for r in rows}:
        assert sum(r["Row share"] for r in rows if r["True"] == true) == pytest.approx(1.0)
    assert sum(r["Count"] for r in rows) == 12
    assert metric_tables.class_order(metrics["test"])[0] == "Melanoma"
    assert metric_tables.confusion_rows({}) == []


def test_comparison_rows(sample):
    _, _, metrics, _ = sample
    cards = [make_card("m1"), make_card("m2", classes=["nevus", "other"])]
    rows = metric_tables.comparison_rows(cards, {"m1": metrics, "m2": {}})
    assert [r["Model"] for r in rows] == ["Model m1", "Model m2"]
    assert rows[0]["Balanced accuracy (95% CI)"].startswith(formatting.pct(metrics["test"]["balanced_accuracy"]))
    assert "95% CI" in rows[0]["Balanced accuracy (95% CI)"]
    assert rows[0]["Melanoma recall"] == "25%"
    assert rows[0]["Worst class recall"] == "Melanoma: 25%"
    assert rows[0]["Training time"] == "20 min 34 s" and rows[0]["File size"] == "9.1 MB"
    assert rows[1]["Melanoma recall"] == "no melanoma class" and rows[1]["Accuracy"] == "n/a"
    assert constants.melanoma_label(["akiec", "mel", "nv"]) == "mel"
    assert constants.melanoma_label(["nevus"]) is None

