"""One split of metrics.json as the Evaluation page's tables: headline metrics explained, per-class rows with the
weak classes flagged, the confusion matrix in long form, and models side by side.

Dicts in, rows (lists of dicts) out, so the pages only lay them out. No numpy, no Streamlit.
"""
from __future__ import annotations

from typing import Optional, Sequence

from .classes import display_name
from .constants import melanoma_label
from .formatting import human_bytes, human_seconds, is_number, pct, with_ci

WEAK_RECALL = 0.5                        # a class whose recall is below this is flagged on the pages

METRIC_EXPLANATIONS = {
    "balanced_accuracy": ("Balanced accuracy",
                          "The average of the per-class recalls: every diagnosis counts equally, however rare. "
                          "The fairest single number when classes are imbalanced."),
    "accuracy": ("Accuracy", "Share of all images classified correctly. Dominated by the common classes."),
    "macro_f1": ("Macro F1", "F1 (the balance of precision and recall) computed per class, then averaged."),
    "macro_precision": ("Macro precision",
                        "When the model says 'class X', how often it is right — averaged over classes."),
    "macro_recall": ("Macro recall (sensitivity)",
                     "Of the images truly of class X, how many the model found — averaged over classes "
                     "(equals balanced accuracy)."),
    "weighted_f1": ("Weighted F1", "F1 averaged with each class weighted by its number of images."),
    "macro_roc_auc": ("Macro ROC AUC",
                      "How well the probabilities rank class X above the other classes, averaged over classes: "
                      "50% is chance, 100% is perfect ranking. Independent of any threshold."),
    "log_loss": ("Log loss", "Penalises confident mistakes; lower is better (not a percentage)."),
    "n": ("Images (n)", "Number of images in this split."),
}


def metric_table(split_metrics: dict) -> list[dict]:
    """Rows Metric / Value / 95% CI / What it means for one split of metrics.json."""
    if not split_metrics:
        return []
    ci95 = split_metrics.get("ci95", {}) or {}
    rows = []
    for key, (name, meaning) in METRIC_EXPLANATIONS.items():
        value = split_metrics.get(key)
        if key == "n":
            shown = str(int(value)) if is_number(value) else "n/a"
        elif key == "log_loss":
            shown = f"{value:.3f}" if is_number(value) else "n/a"
        else:
            shown = pct(value, 1)
        ci = ci95.get(key)
        ci_text = (f"{pct(ci[0], 1)} – {pct(ci[1], 1)}" if ci and len(ci) == 2 and all(is_number(v) for v in ci)
                   else "")
        rows.append({"Metric": name, "Value": shown, "95% CI": ci_text, "What it means": meaning})
    return rows


def per_class_table(split_metrics: dict, weak_recall: float = WEAK_RECALL) -> list[dict]:
    """One row per class (metrics.json order): display name, precision ... ROC AUC as fractions, a weak flag."""
    per_class = (split_metrics or {}).get("per_class", {}) or {}
    rows = []
    for label, values in per_class.items():
        recall = values.get("recall")
        support = values.get("support") or 0
        weak = bool(support) and is_number(recall) and recall < weak_recall
        rows.append({
            "Class": display_name(label),
            "label": label,
            "Precision": values.get("precision"),
            "Recall (sensitivity)": recall,
            "F1": values.get("f1"),
            "Specificity": values.get("specificity"),
            "ROC AUC": values.get("roc_auc"),
            "Support (images)": int(support),
            "Weak": weak,
        })
    return rows


def weak_classes(split_metrics: dict, weak_recall: float = WEAK_RECALL) -> list[str]:
    """Labels (with at least one image) whose recall is below `weak_recall`."""
    return [row["label"] for row in per_class_table(split_metrics, weak_recall) if row["Weak"]]


def worst_class(split_metrics: dict) -> Optional[dict]:
    """{"label", "name", "recall", "support"} of the class with the lowest recall among classes with images."""
    rows = [r for r in per_class_table(split_metrics) if r["Support (images)"] > 0 and is_number(r["Recall (sensitivity)"])]
    if not rows:
        return None
    worst = min(rows, key=lambda r: (r["Recall (sensitivity)"], r["label"]))
    return {"label": worst["label"], "name": worst["Class"], "recall": worst["Recall (sensitivity)"],
            "support": worst["Support (images)"]}


def confusion_rows(split_metrics: dict) -> list[dict]:
    """Long-format confusion matrix: True, Predicted (display names), Count, Row share (of the true class)."""
    matrix = (split_metrics or {}).get("confusion_matrix") or []
    classes = (split_metrics or {}).get("classes") or list(((split_metrics or {}).get("per_class") or {}).keys())
    if not matrix or len(matrix) != len(classes):
        return []
    rows = []
    for i, true in enumerate(classes):
        total = sum(matrix[i])
        for j, predicted in enumerate(classes):
            count = int(matrix[i][j])
            rows.append({
                "True": display_name(true),
                "Predicted": display_name(predicted),
                "Count": count,
                "Row share": count / total if total else 0.0,
                "Correct": i == j,
            })
    return rows


def class_order(split_metrics: dict) -> list[str]:
    """Display names in metrics.json class order (for chart axes)."""
    classes = (split_metrics or {}).get("classes") or list(((split_metrics or {}).get("per_class") or {}).keys())
    return [display_name(c) for c in classes]


def comparison_rows(cards: Sequence[dict], metrics_by_id: dict, split: str = "test") -> list[dict]:
    """One row per model: balanced accuracy with CI, accuracy, macro-F1, melanoma recall, training time, size."""
    rows = []
    for card in cards:
        split_metrics = (metrics_by_id.get(card["id"]) or {}).get(split) or {}
        ci95 = split_metrics.get("ci95", {}) or {}
        mel = melanoma_label(card.get("classes") or split_metrics.get("classes") or [])
        mel_recall = ((split_metrics.get("per_class") or {}).get(mel) or {}).get("recall") if mel else None
        worst = worst_class(split_metrics)
        training = card.get("training") or {}
        rows.append({
            "Model": card.get("display_name", card["id"]),
            "Balanced accuracy (95% CI)": with_ci(split_metrics.get("balanced_accuracy"), ci95.get("balanced_accuracy")),
            "Accuracy": pct(split_metrics.get("accuracy")),
            "Macro F1": pct(split_metrics.get("macro_f1")),
            "Melanoma recall": pct(mel_recall) if mel else "no melanoma class",
            "Worst class recall": f"{worst['name']}: {pct(worst['recall'])}" if worst else "n/a",
            "Training time": human_seconds(training.get("seconds")),
            "Hardware": training.get("hardware") or "n/a",
            "File size": human_bytes(card.get("size_bytes")),
        })
    return rows
