"""predictions.csv (one row per evaluated image) as the Evaluation page draws it: per-class ROC curves and the
most confident mistakes.

The trainer stores the test and validation curves in metrics.json, so a server normally draws those and never
imports scikit-learn; the curves are recomputed from predictions.csv only for a model evaluated before they
were stored. No Streamlit.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

from .classes import display_name
from .formatting import is_number

METRICS_SPLITS = {"test": "test", "validation": "val"}   # metrics.json key -> predictions.csv "split" value


def prediction_classes(rows: Sequence[dict]) -> list[str]:
    """Class labels from predictions.csv's p_<class> columns, in column order."""
    if not rows:
        return []
    return [key[2:] for key in rows[0] if key.startswith("p_")]


def split_rows(rows: Iterable[dict], split: str) -> list[dict]:
    """Rows of one split; accepts the metrics.json name ("validation") or the predictions.csv one ("val")."""
    wanted = METRICS_SPLITS.get(split, split)
    return [row for row in rows if str(row.get("split")) == wanted]


def stored_roc_curves(metrics: dict, split: str = "test") -> tuple[list[dict], dict]:
    """The per-class ROC curves the trainer stored (metrics.json["clinical"]["roc_curves"]), as roc_curves
    returns them; ([], {}) when absent (then roc_curves computes them from predictions.csv)."""
    key = {"val": "validation"}.get(split, split)
    stored = (metrics.get("clinical") or {}).get("roc_curves", {}).get(key, {})
    points, aucs = [], {}
    for label, curve in stored.items():
        if curve.get("auc") is None or not curve.get("fpr"):
            continue
        aucs[label] = float(curve["auc"])
        legend = f"{display_name(label)} (AUC {curve['auc']:.2f})"
        for x, y, t in zip(curve["fpr"], curve["tpr"], curve["threshold"]):
            points.append({"Class": display_name(label), "Legend": legend, "False positive rate": float(x),
                           "True positive rate": float(y), "Threshold": 1.0 if t is None else float(min(t, 1.0))})
    return points, aucs


def roc_curves(rows: Sequence[dict], split: str = "test", classes: Optional[Sequence[str]] = None,
               max_points: int = 400) -> tuple[list[dict], dict]:
    """One-vs-rest ROC curves per class from predictions.csv rows.

    Returns (points, aucs): points are rows Class / Legend ("Melanoma (AUC 0.87)") / False positive rate /
    True positive rate / Threshold; aucs maps label -> AUC. Classes absent from the split (or present in
    every row) have no curve.
    """
    import numpy as np
    from sklearn.metrics import auc, roc_curve

    rows = split_rows(rows, split)
    classes = list(classes) if classes else prediction_classes(rows)
    if not rows or not classes:
        return [], {}
    truth = np.array([str(row["true"]) for row in rows])
    points, aucs = [], {}
    for label in classes:
        column = f"p_{label}"
        if column not in rows[0]:
            continue
        positives = truth == label
        if positives.all() or not positives.any():
            continue
        scores = np.array([float(row[column]) for row in rows])
        fpr, tpr, thresholds = roc_curve(positives, scores)
        area = float(auc(fpr, tpr))
        aucs[label] = area
        if len(fpr) > max_points:      # keep the curve light for the browser (keep both ends)
            keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
            fpr, tpr, thresholds = fpr[keep], tpr[keep], thresholds[keep]
        legend = f"{display_name(label)} (AUC {area:.2f})"
        for x, y, t in zip(fpr, tpr, thresholds):
            points.append({"Class": display_name(label), "Legend": legend, "False positive rate": float(x),
                           "True positive rate": float(y), "Threshold": float(min(t, 1.0))})
    return points, aucs


def misclassified(rows: Sequence[dict], split: str = "test", limit: Optional[int] = 12) -> list[dict]:
    """Wrongly classified images of a split, most confident mistakes first.

    Each item: image_id, path, true, predicted (labels), confidence (probability of the predicted class),
    p_true (probability given to the true class).
    """
    wrong = []
    for row in split_rows(rows, split):
        true, predicted = str(row["true"]), str(row["predicted"])
        if true == predicted:
            continue
        confidence = row.get(f"p_{predicted}")
        p_true = row.get(f"p_{true}")
        wrong.append({
            "image_id": str(row.get("image_id", "")),
            "path": str(row.get("path", "")),
            "true": true,
            "predicted": predicted,
            "confidence": float(confidence) if is_number(confidence) else None,
            "p_true": float(p_true) if is_number(p_true) else None,
        })
    wrong.sort(key=lambda w: (-(w["confidence"] or 0.0), w["image_id"]))
    return wrong if limit is None else wrong[:limit]
