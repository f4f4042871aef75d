"""Shaping metrics.json["clinical"] (written by `python -m trainer clinical`) into rows and sentences for the
Evaluation page and the model cards.

The app shows the stored figures and recomputes nothing: the trainer measured them once on the test split, with
bootstrap intervals that resample whole lesions where lesion ids are known. Pure functions (dicts in, rows or
text out), no Streamlit and no TensorFlow, so the pages only lay things out.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

from .classes import display_name
from .formatting import is_number, pct, with_ci
from .metric_tables import WEAK_RECALL

SUPPORTED_SCHEMAS = (1,)
PER_CLASS_COLUMNS = {"recall": "Recall (sensitivity)", "precision": "Precision", "specificity": "Specificity",
                     "f1": "F1"}
HEADLINE_NAMES = {"balanced_accuracy": "Balanced accuracy", "accuracy": "Accuracy", "macro_f1": "Macro F1"}
MISSING = "not stored"
NEVER_PREDICTED = "never predicted"    # precision of a class no test image was called: undefined, not 0%
FEW_IMAGES = 10        # below this many test images a bootstrap interval can collapse to a point (0–0%, 100–100%)
DEGENERATE_NOTE = (f"With fewer than {FEW_IMAGES} images of a class, a bootstrap interval can collapse to a single "
                   "value (such as 0–0% or 100–100%) although the figure is very uncertain.")


# --------------------------------------------------------------------------------------------- reading


def clinical_figures(metrics: Optional[Mapping]) -> Optional[dict]:
    """metrics.json["clinical"] when present in a schema this app reads, else None (the page says how to add it)."""
    entry = (metrics or {}).get("clinical")
    if not isinstance(entry, dict) or entry.get("schema_version") not in SUPPORTED_SCHEMAS:
        return None
    return entry


def compute_command(model_id: str) -> str:
    """The command that writes the figures, for pages to quote when they are missing."""
    return f"python -m trainer clinical {model_id}"


def ordered_labels(by_label: Mapping, classes: Optional[Sequence[str]] = None) -> list[str]:
    """Labels of `by_label` in the card's class order (the order every chart and table uses), extras last."""
    wanted = [c for c in (classes or []) if c in by_label]
    return wanted + [c for c in by_label if c not in wanted]


# --------------------------------------------------------------------------------------------- formatting


def _ci_ok(ci) -> bool:
    return bool(ci) and len(ci) == 2 and all(is_number(v) for v in ci)


def span(value, ci, digits: int = 0) -> str:
    """'56% (39–73%)': a share and its interval, compact enough for a table cell."""
    text = pct(value, digits)
    return f"{text} ({pct(ci[0], digits)[:-1]}–{pct(ci[1], digits)})" if is_number(value) and _ci_ok(ci) else text


def interval(ci, digits: int = 0) -> str:
    """'39–73%', or 'not stored'."""
    return f"{pct(ci[0], digits)[:-1]}–{pct(ci[1], digits)}" if _ci_ok(ci) else MISSING


def auc_text(value, ci=None) -> str:
    """'0.92 (95% CI 0.89–0.94)': an area under the curve as a number between 0 and 1, as papers write it."""
    if not is_number(value):
        return "n/a"
    return f"{value:.2f} (95% CI {ci[0]:.2f}–{ci[1]:.2f})" if _ci_ok(ci) else f"{value:.2f}"


# --------------------------------------------------------------------------------------------- intervals


def lesion_level(clinical: Mapping) -> bool:
    """True when the intervals resample whole lesions (HAM10000: several images of one lesion are not independent)."""
    return (clinical.get("bootstrap") or {}).get("unit") == "lesion"


def bootstrap_sentence(clinical: Mapping) -> str:
    """How the intervals were made, in one sentence (the stored note says why)."""
    boot = clinical.get("bootstrap") or {}
    level = pct(boot.get("level", 0.95))
    what = (f"whole lesions ({boot.get('test_lesions', '?')} lesions in {boot.get('test_images', '?')} test images)"
            if lesion_level(clinical) else f"test images ({boot.get('test_images', '?')})")
    return (f"{level} intervals: {boot.get('method', 'percentile')} bootstrap, {boot.get('resamples', '?')} "
            f"resamples of {what}.")


def headline_interval_rows(clinical: Mapping) -> list[dict]:
    """Balanced accuracy, accuracy, macro F1 with the image-resampled and the lesion-resampled interval side by side."""
    headline = clinical.get("headline_ci95") or {}
    values, image, lesion = headline.get("values") or {}, headline.get("image") or {}, headline.get("lesion")
    rows = []
    for key, name in HEADLINE_NAMES.items():
        rows.append({"Metric": name, "Value": pct(values.get(key), 1),
                     "95% CI, images resampled": interval(image.get(key), 1),
                     "95% CI, lesions resampled": interval(lesion.get(key), 1) if lesion else "no lesion ids"})
    return rows


# --------------------------------------------------------------------------------------------- per class


def _cell(values: Mapping, key: str) -> str:
    value = values.get(key)
    if key == "precision" and value is None:          # no test image was called this class
        return NEVER_PREDICTED
    return span(value, (values.get("ci95") or {}).get(key))


def per_class_interval_rows(clinical: Mapping, classes: Optional[Sequence[str]] = None) -> list[dict]:
    """One row per class: test images, recall, precision, specificity and F1 each with its 95% interval, a weak flag."""
    per_class = clinical.get("per_class") or {}
    rows = []
    for label in ordered_labels(per_class, classes):
        values = per_class[label]
        recall, support = values.get("recall"), int(values.get("support") or 0)
        row = {"Class": display_name(label), "Test images": support}
        row.update({name: _cell(values, key) for key, name in PER_CLASS_COLUMNS.items()})
        row["Weak"] = bool(support) and is_number(recall) and recall < WEAK_RECALL
        rows.append(row)
    return rows


def weakest_class(clinical: Mapping, classes: Optional[Sequence[str]] = None) -> Optional[dict]:
    """The class with the lowest recall among classes with test images: {label, name, recall, ci, support}."""
    per_class = clinical.get("per_class") or {}
    found = [(v["recall"], i, label) for i, label in enumerate(ordered_labels(per_class, classes))
             for v in [per_class[label]] if (v.get("support") or 0) > 0 and is_number(v.get("recall"))]
    if not found:
        return None
    _, _, label = min(found)
    values = per_class[label]
    return {"label": label, "name": display_name(label), "recall": values["recall"],
            "ci": (values.get("ci95") or {}).get("recall"), "support": int(values["support"])}


def recall_interval(clinical: Mapping, label: str) -> str:
    """'39–73%': a class's stored recall interval, for a sentence that already gives the recall."""
    return interval(((clinical.get("per_class") or {}).get(label, {}).get("ci95") or {}).get("recall"))


def few_images(support: int) -> str:
    """' (too few for a reliable interval)' after a count under FEW_IMAGES, else ''."""
    return " (too few for a reliable interval)" if 0 < support < FEW_IMAGES else ""


def weakest_class_sentence(clinical: Mapping, classes: Optional[Sequence[str]] = None) -> str:
    """'Weakest class: **Melanoma**, recall 13% (95% CI 0–31%) on 16 test images.' plus the other weak classes."""
    worst = weakest_class(clinical, classes)
    if worst is None:
        return ""
    text = (f"Weakest class: **{worst['name']}**, recall {span(worst['recall'], worst['ci'])} "
            f"on {worst['support']} test images{few_images(worst['support'])}.")
    others = [r["Class"] for r in per_class_interval_rows(clinical, classes) if r["Weak"] and r["Class"] != worst["name"]]
    if others:
        text += f" Also below {pct(WEAK_RECALL)} recall: {', '.join(others)}."
    return text


# --------------------------------------------------------------------------------------------- precision-recall


def pr_curve_rows(clinical: Mapping, classes: Optional[Sequence[str]] = None) -> list[dict]:
    """One summary per class (card order): label, name, positives, average precision, chance level (prevalence)."""
    curves = clinical.get("pr_curves") or {}
    return [{"label": label, "Class": display_name(label), "Test images of the class": curves[label].get("positives"),
             "Average precision": curves[label].get("average_precision"),
             "Chance level (prevalence)": curves[label].get("prevalence")}
            for label in ordered_labels(curves, classes)]


def pr_points(curve: Mapping) -> list[dict]:
    """A stored precision-recall curve as chart rows (Recall, Precision, Threshold, Order), in stored order."""
    precision, recall = curve.get("precision") or [], curve.get("recall") or []
    thresholds = list(curve.get("threshold") or []) + [None] * len(precision)
    return [{"Recall": float(r), "Precision": float(p), "Threshold": thresholds[i], "Order": i}
            for i, (p, r) in enumerate(zip(precision, recall)) if is_number(p) and is_number(r)]


def fraction(value) -> str:
    """0.514 -> '0.51', 0.0146 -> '0.015': two decimals, three below 0.1 so a rare class's chance level is not 0.01."""
    if not is_number(value):
        return "n/a"
    return f"{value:.3f}" if abs(value) < 0.1 else f"{value:.2f}"


def pr_subtitle(row: Mapping) -> str:
    """'AP 0.51 · chance 0.111 · 167 test images' under a class's precision-recall curve."""
    return (f"AP {fraction(row.get('Average precision'))} · chance {fraction(row.get('Chance level (prevalence)'))} · "
            f"{row.get('Test images of the class', '?')} test images")


# --------------------------------------------------------------------------------------------- benign vs malignant


def malignant_names(bm: Mapping) -> str:
    """'Actinic keratosis, Basal cell carcinoma and Melanoma'."""
    names = [display_name(c) for c in bm.get("malignant_classes") or []]
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


def roc_points(bm: Mapping) -> list[dict]:
    """The stored benign-versus-malignant test ROC curve as chart rows (False positive rate, True positive rate)."""
    curve = (bm.get("test") or {}).get("roc_curve") or {}
    fpr, tpr = curve.get("fpr") or [], curve.get("tpr") or []
    thresholds = list(curve.get("threshold") or []) + [None] * len(fpr)
    return [{"False positive rate": float(x), "True positive rate": float(y), "Threshold": thresholds[i]}
            for i, (x, y) in enumerate(zip(fpr, tpr)) if is_number(x) and is_number(y)]


def _point_row(name: str, what: str, chosen: str, point: Mapping) -> dict:
    return {"Threshold": name, "Detects": what, "Chosen on": chosen,
            "Cut-off": pct(point.get("threshold"), 1),
            "Sensitivity (95% CI)": span(point.get("sensitivity"), point.get("sensitivity_ci95")),
            "Specificity (95% CI)": span(point.get("specificity"), point.get("specificity_ci95")),
            "Positives / test images": f"{point.get('positives', '?')} / {point.get('n', '?')}"}


def operating_point_rows(bm: Mapping) -> list[dict]:
    """Test sensitivity and specificity, with intervals, at the malignant threshold and at the melanoma alert."""
    rows = []
    op = bm.get("malignant_operating_point") or {}
    if op.get("test"):
        target = pct(op.get("target_sensitivity"))
        rows.append(_point_row("Malignant threshold", "any malignant or pre-malignant class (summed probability)",
                               f"{op.get('chosen_on', 'validation')}, for {target} sensitivity", op["test"]))
    alert = bm.get("melanoma_alert") or {}
    if alert.get("test"):
        chosen = "validation" if "validation" in str(alert.get("source", "")) else str(alert.get("source", "?"))
        rows.append(_point_row("Melanoma alert", f"{display_name(alert.get('class', 'melanoma'))} (its own probability)",
                               chosen, alert["test"]))
    return rows


def malignant_point(bm: Mapping) -> Optional[dict]:
    """The malignant threshold's test point on the ROC curve (1 − specificity, sensitivity), for the chart."""
    test = (bm.get("malignant_operating_point") or {}).get("test") or {}
    if not (is_number(test.get("sensitivity")) and is_number(test.get("specificity"))):
        return None
    return {"False positive rate": 1.0 - test["specificity"], "True positive rate": test["sensitivity"],
            "Label": (f"malignant threshold {pct(test.get('threshold'), 1)}: sensitivity {pct(test['sensitivity'])}, "
                      f"specificity {pct(test['specificity'])}")}


def benign_malignant_sentence(bm: Mapping) -> str:
    """One paragraph for the model card: AUROC with interval, then the malignant threshold's test figures."""
    test = bm.get("test") or {}
    text = (f"**Benign versus malignant** ({malignant_names(bm)} counted as malignant or pre-malignant): AUROC "
            f"**{auc_text(test.get('roc_auc'), test.get('roc_auc_ci95'))}** on {test.get('n', '?')} test images "
            f"({test.get('positives', '?')} malignant).")
    op = bm.get("malignant_operating_point") or {}
    if op.get("test"):
        t = op["test"]
        text += (f" At the threshold chosen on {op.get('chosen_on', 'validation')} for "
                 f"{pct(op.get('target_sensitivity'))} sensitivity: test sensitivity "
                 f"{span(t.get('sensitivity'), t.get('sensitivity_ci95'))}, specificity "
                 f"{span(t.get('specificity'), t.get('specificity_ci95'))}.")
    alert = (bm.get("melanoma_alert") or {}).get("test")
    if alert:
        text += (f" Melanoma alert: sensitivity {span(alert.get('sensitivity'), alert.get('sensitivity_ci95'))}, "
                 f"specificity {span(alert.get('specificity'), alert.get('specificity_ci95'))}.")
    return text


# --------------------------------------------------------------------------------------------- conformal sets


def below_target(conformal: Mapping) -> bool:
    """True when test coverage fell short of the target beyond noise (the stored flag or a stored warning)."""
    return bool(conformal.get("test_coverage_below_target") or conformal.get("warning"))


def coverage_gap(conformal: Mapping) -> Optional[str]:
    """'-17.8 pts vs target': test coverage minus the target, for a metric's delta."""
    coverage, target = (conformal.get("test") or {}).get("coverage"), conformal.get("target_coverage")
    if not (is_number(coverage) and is_number(target)):
        return None
    return f"{100 * (coverage - target):+.1f} pts vs target"


COVERAGE_NOTE = ("Coverage is promised on average over images, and only when new images resemble the validation "
                 "images (exchangeability); it is not promised for each class.")


def coverage_sentence(conformal: Mapping) -> str:
    """What the sets achieved on test, worded so that a shortfall is never read as the target."""
    test = conformal.get("test") or {}
    target = pct(conformal.get("target_coverage"))
    achieved = with_ci(test.get("coverage"), test.get("coverage_ci95"), 1)
    size = test.get("mean_set_size")
    size_text = f"{size:.2f}" if is_number(size) else "n/a"
    if below_target(conformal):
        return (f"Prediction sets aimed at {target} coverage held the true diagnosis for **only {achieved}** of "
                f"{test.get('n', '?')} test images (mean {size_text} diagnoses per set): **not** {target} sets "
                "for this model.")
    return (f"Prediction sets aimed at {target} coverage held the true diagnosis for **{achieved}** of "
            f"{test.get('n', '?')} test images, with {size_text} diagnoses per set on average.")


def set_size_rows(conformal: Mapping) -> list[dict]:
    """Set-size distribution on test: Diagnoses in the set, Images, Share."""
    counts = (conformal.get("test") or {}).get("set_size_counts") or {}
    total = sum(int(v) for v in counts.values()) or 1
    return [{"Diagnoses in the set": int(k), "Images": int(v), "Share": int(v) / total}
            for k, v in sorted(counts.items(), key=lambda kv: int(kv[0]))]


def conformal_class_rows(conformal: Mapping, classes: Optional[Sequence[str]] = None) -> list[dict]:
    """Per-class test coverage (an average can hide a class covered far less), flagged when below the target."""
    per_class = (conformal.get("test") or {}).get("per_class") or {}
    target = conformal.get("target_coverage")
    rows = []
    for label in ordered_labels(per_class, classes):
        values = per_class[label]
        coverage = values.get("coverage")
        rows.append({"Class": display_name(label), "Test images": int(values.get("n") or 0), "Coverage": coverage,
                     "Mean set size": values.get("mean_set_size"),
                     "Below target": is_number(coverage) and is_number(target) and coverage < target})
    return rows


def least_covered_sentence(conformal: Mapping, classes: Optional[Sequence[str]] = None) -> str:
    """'Least covered: Actinic keratosis, 72% of 50 test images.'"""
    rows = [r for r in conformal_class_rows(conformal, classes) if r["Test images"] and is_number(r["Coverage"])]
    if not rows:
        return ""
    worst = min(rows, key=lambda r: r["Coverage"])
    return f"Least covered class: **{worst['Class']}**, {pct(worst['Coverage'])} of {worst['Test images']} test images."


def level_rows(conformal: Mapping) -> list[dict]:
    """Other coverage targets fitted the same way: target, test coverage, mean set size."""
    return [{"Target coverage": pct(level.get("target_coverage")), "Test coverage": pct(level.get("test_coverage"), 1),
             "Mean set size": round(level["test_mean_set_size"], 2) if is_number(level.get("test_mean_set_size")) else None}
            for level in conformal.get("levels") or []]
