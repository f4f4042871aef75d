"""Shaping zoo files (card.json, metrics.json, history.csv, predictions.csv) into tables for the app's pages.

Small pure functions: plain dicts and lists in, plain rows (list of dicts) or text out,
so the pages only lay things out. No TensorFlow, no Streamlit.
"""
from __future__ import annotations

import math
import shlex
from typing import Iterable, Optional, Sequence

from .classes import display_name

WEAK_RECALL = 0.5                        # a class whose recall is below this is flagged on the pages
METRICS_SPLITS = {"test": "test", "validation": "val"}   # metrics.json key -> predictions.csv "split" value
MELANOMA_LABELS = ("melanoma", "mel")

# --------------------------------------------------------------------------------------------- formatting


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def pct(value, digits: int = 0) -> str:
    """0.714 -> '71%'; None / NaN -> 'n/a'."""
    return f"{100 * value:.{digits}f}%" if is_number(value) else "n/a"


def with_ci(value, ci: Optional[Sequence[float]], digits: int = 0) -> str:
    """'71% (95% CI 63–78%)', or just '71%' without an interval."""
    text = pct(value, digits)
    if ci and len(ci) == 2 and all(is_number(v) for v in ci):
        text += f" (95% CI {pct(ci[0], digits)[:-1]}–{pct(ci[1], digits)})"
    return text


def human_bytes(size) -> str:
    if not is_number(size):
        return "n/a"
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return "n/a"  # pragma: no cover


def human_seconds(seconds) -> str:
    """75 -> '1 min 15 s'; 4000 -> '1 h 07 min'."""
    if not is_number(seconds):
        return "n/a"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def dataset_label(dataset: str) -> str:
    return {"isic_9class": "ISIC 9-class", "ham10000": "HAM10000 7-class"}.get(dataset, dataset)


# --------------------------------------------------------------------------------------------- metrics

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


# --------------------------------------------------------------------------------------------- predictions


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


# --------------------------------------------------------------------------------------------- history

HISTORY_SERIES = {
    "loss": ("Loss", "training"), "val_loss": ("Loss", "validation"),
    "accuracy": ("Accuracy", "training"), "val_accuracy": ("Accuracy", "validation"),
    "balanced_accuracy": ("Balanced accuracy", "training"),
    "val_balanced_accuracy": ("Balanced accuracy", "validation"),
}


def history_long(history: Sequence[dict]) -> list[dict]:
    """history.csv rows -> long rows Epoch / Phase / Metric ("Loss", "Accuracy", ...) / Set / Value."""
    out = []
    for row in history or []:
        epoch = row.get("epoch")
        if not is_number(epoch):
            continue
        for column, (metric, which) in HISTORY_SERIES.items():
            value = row.get(column)
            if is_number(value):
                out.append({"Epoch": int(epoch), "Phase": str(row.get("phase", "")), "Metric": metric,
                            "Set": which, "Value": float(value)})
    return out


def phase_starts(history: Sequence[dict]) -> list[dict]:
    """Where a new training phase begins after the first: [{"Epoch": 3.5, "Phase": "finetune"}]."""
    starts, previous = [], None
    for row in history or []:
        phase = str(row.get("phase", ""))
        if previous is not None and phase != previous and is_number(row.get("epoch")):
            starts.append({"Epoch": float(row["epoch"]) - 0.5, "Phase": phase})
        previous = phase
    return starts


def best_epoch(history: Sequence[dict], best: Optional[dict]) -> Optional[int]:
    """The global epoch (history.csv numbering) of metrics.json's "best_epoch" {"phase", "epoch" (within phase)}."""
    if not best or not history:
        return None
    seen: dict = {}
    for row in history:
        phase = str(row.get("phase", ""))
        seen[phase] = seen.get(phase, 0) + 1
        if phase == str(best.get("phase")) and seen[phase] == best.get("epoch") and is_number(row.get("epoch")):
            return int(row["epoch"])
    return None


PHASE_NAMES = {"head": "head only (backbone frozen)", "finetune": "fine-tuning", "full": "from scratch"}


# --------------------------------------------------------------------------------------------- comparison


def melanoma_label(classes: Sequence[str]) -> Optional[str]:
    return next((c for c in MELANOMA_LABELS if c in (classes or [])), None)


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


# --------------------------------------------------------------------------------------------- model cards

DATASET_FACTS = {
    "isic_9class": {
        "name": "ISIC 9-class (Kaggle \"Skin cancer ISIC The International Skin Imaging Collaboration\")",
        "source": "ISIC Archive images, via the Kaggle 9-class set (copy from the public GitHub repository "
                  "AmitBytesSage/Melanoma-Skin-Cancer-Detection-Model); 2200 images after de-duplication "
                  "(2082 train, 118 test).",
        "splits": [
            "The official **Test** folder (118 images) is the test set, untouched during training and model choice.",
            "Validation is a stratified 15% of the official Train folder, grouped by HAM10000 lesion where known.",
            "**43** Train images whose HAM10000 lesion also has an image in Test are excluded "
            "(`excluded_lesion_leak`), so no test lesion is seen in training.",
            "The 59 images flagged `label_conflict` (mostly *seborrheic keratosis*) are left out of training and "
            "validation unless the model was trained with `--include-label-conflicts`.",
        ],
        "limitations": [
            "Low resolution: the images are **180 x 180 px** copies whose original aspect ratio (mostly 4:3) was "
            "**not kept** — the lesions are squashed, and fine dermoscopic structures are lost.",
            "Label noise: the source set is noisy; **seborrheic keratosis is unreliable** (all its train images were "
            "also filed as melanoma or carry the ISIC 2019 label MEL).",
            "Tiny test classes: the test set has only **3 seborrheic keratosis** and **3 vascular lesion** images "
            "(16 for the other classes), so per-class figures for those classes are very uncertain.",
            "A shortcut the validation split cannot show: all 32 test melanomas and nevi are among the oldest ISIC "
            "archive images (ISIC_0000000 to ISIC_0000056); in Train that batch holds 22 nevi and **no melanoma** "
            "(the first training melanoma is ISIC_0000139). "
            "Pretrained models learn the batch's look as 'nevus' and miss most test melanomas (EfficientNet-Lite0: "
            "2 of 16, against 87% of the validation melanomas). Compare the per-class test recall with validation before trusting either.",
            "The same shortcut, wider: in Train, every actinic keratosis, basal cell carcinoma, dermatofibroma, "
            "pigmented benign keratosis, squamous cell carcinoma and vascular lesion is a HAM10000 image, and every "
            "melanoma, seborrheic keratosis and all nevi but 1 come from older archive batches, so an image's "
            "source predicts its class group. **14** test images of those six classes come from the older batches; "
            "EfficientNet-Lite0 gets 3 of them right and calls 8 melanoma or nevus (43 of the 69 test HAM10000 "
            "images right).",
        ],
        "license": "Images from the **ISIC Archive** (International Skin Imaging Collaboration), published per image "
                   "under CC-0, CC-BY or CC-BY-NC 4.0; the HAM10000 images among them are CC BY-NC 4.0. Treat the "
                   "set as **non-commercial, attribution required**.",
    },
    "ham10000": {
        "name": "HAM10000 (\"Human Against Machine with 10000 training images\")",
        "source": "HAM10000, complete (10013 images after dropping 2 duplicates, 7470 lesions, 7 classes) with its "
                  "original metadata (age, sex, body site); copy from the public GitHub repository "
                  "mmalek06/bounding-box-detection-ham1000.",
        "splits": [
            "HAM10000 has no official split: stratified **70 / 15 / 15** train / validation / test, "
            "**grouped by lesion_id** (7007 / 1503 / 1503 images), so no lesion is on two sides.",
            "The model is chosen on validation only; test figures were computed once, after training.",
        ],
        "limitations": [
            "Low resolution: the images are **200 x 150 px** copies (one third of the 600 x 450 originals, "
            "aspect ratio kept, JPEG quality about 75).",
            "Strong class imbalance: two thirds of the images are melanocytic nevi; rare classes "
            "(dermatofibroma, vascular lesions) have few test images.",
        ],
        "license": "HAM10000 is published under **CC BY-NC 4.0**: non-commercial use, attribution required.",
    },
}
HAM10000_CITATION = ("Tschandl P., Rosendahl C., Kittler H. *The HAM10000 dataset, a large collection of "
                     "multi-source dermatoscopic images of common pigmented skin lesions.* Scientific Data 5, "
                     "180161 (2018). doi:10.1038/sdata.2018.161")
COMMON_LIMITATIONS = [
    "Skin-tone and population bias: the images come mostly from fair-skinned patients in Europe and Australia; "
    "performance on darker skin types and other populations is unknown and likely worse.",
    "Dermoscopy only: the model has never seen clinical (non-dermoscopic) photos, phone pictures or "
    "non-lesion images, and will still output a confident-looking answer for them.",
    "Small data and low resolution compared with clinical practice; the test sets are small, so the confidence "
    "intervals are wide.",
    "The classes are a fixed list: a lesion of any other kind is forced into one of them.",
]
INTENDED_USE = [
    "Teaching and research: showing how convolutional neural networks classify dermoscopy images.",
    "Comparing architectures and training recipes on the same data and splits.",
    "Discussing failure modes: class imbalance, label noise, low resolution, where the model looks (Grad-CAM).",
]
OUT_OF_SCOPE = [
    "Diagnosis, triage or screening of patients, or any decision about care — this is **not a medical device**.",
    "Photos that are not dermoscopy images (clinical or phone photos, histology, other body imaging).",
    "Skin types and populations not represented in the training data.",
    "Any commercial use (the data licences are non-commercial).",
]
TRAINING_KEYS = {
    "architecture": "Architecture", "input_size": "Input size (px)", "batch_size": "Batch size",
    "head_epochs": "Head epochs (frozen backbone)", "epochs": "Epochs (fine-tuning / from scratch)",
    "learning_rate": "Learning rate", "fine_tune_learning_rate": "Fine-tune learning rate",
    "fine_tune_fraction": "Unfrozen share of backbone", "lr_schedule": "LR schedule",
    "label_smoothing": "Label smoothing", "augment": "Augmentation", "balance": "Class balancing",
    "early_stopping_patience": "Early-stopping patience", "imagenet_weights": "ImageNet weights option",
    "include_label_conflicts": "Label-conflict images used", "limit_per_class": "Limit per class",
    "mixed_precision": "Mixed precision", "loss": "Loss", "focal_gamma": "Focal gamma", "mix": "Batch mixing",
    "hair": "Share of images given drawn hair",
    "color_constancy": "Colour constancy", "extra_train": "Extra training data", "seed": "Seed",
    "exclude_lesions_of": "Lesions left out (held out by)", "init_from": "Backbone started from",
}


def training_config(card: dict) -> dict:
    """A copy of the training configuration recorded in a card ({} when there is none)."""
    return dict(((card or {}).get("training") or {}).get("config") or {})


def training_summary(card: dict) -> dict:
    """The key training settings of a card as {label: value} (only those recorded)."""
    config = training_config(card)
    return {label: config[key] for key, label in TRAINING_KEYS.items() if key in config and config[key] is not None}


def fmt_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return " x ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "n/a" if value is None or value == "" else str(value)


def card_details(card: dict) -> list[dict]:
    """Model-details rows (Field, Value) of a card, tolerant of missing fields."""
    training = card.get("training") or {}
    pre = card.get("preprocessing") or {}
    preprocessing = "; ".join(str(v) for v in (pre.get("shared_function"), pre.get("input"), pre.get("inside_model")) if v)
    params = card.get("parameters")
    phases = training.get("phases") or {}
    phase_text = ", ".join(f"{PHASE_NAMES.get(k, k)} {human_seconds(v)}" for k, v in phases.items())
    rows = [
        ("Model id", card.get("id")),
        ("Name", card.get("display_name")),
        ("Architecture", " — ".join(str(v) for v in (card.get("architecture"), card.get("architecture_description")) if v)),
        ("Parameters", f"{params:,}" if is_number(params) else None),
        ("Input size (px)", card.get("input_size")),
        ("Classes", ", ".join(display_name(c) for c in card.get("classes") or [])),
        ("Preprocessing", preprocessing),
        ("Pretrained weights", card.get("pretrained")),
        ("Training time", human_seconds(training.get("seconds")) + (f" ({phase_text})" if phase_text else "")
         if is_number(training.get("seconds")) else None),
        ("Hardware", training.get("hardware")),
        ("Keras backend", training.get("backend")),
        ("Evaluated on", training.get("evaluated_on")),
        ("Distribution strategy", training.get("strategy")),
        ("Trained on (date)", (card.get("trained_on") or {}).get("date")),
        ("Model file size", human_bytes(card.get("size_bytes")) if is_number(card.get("size_bytes")) else None),
        (f"sha256 of {card.get('model_file', 'model.keras')}", card.get("sha256")),
        ("Served by", serving_text(card) if card.get("sha256") else None),
        ("Members (ensemble)", "; ".join(_member_text(m) for m in card.get("members") or [])),
        ("Grad-CAM layer", ", ".join(card["cam_layer"]) if isinstance(card.get("cam_layer"), list) else card.get("cam_layer")),
        ("Notes", card.get("notes")),
    ]
    return [{"Field": k, "Value": fmt_value(v)} for k, v in rows if v not in (None, "", [])]


def serving_text(card: dict) -> str:
    """How the app runs this model: LiteRT (with its size and how closely it matches Keras) or Keras."""
    if card.get("kind") == "linear_head":
        backbone = card.get("backbone") or {}
        return (f"LiteRT, without TensorFlow: the {backbone.get('model_id')} export's {backbone.get('output')} "
                f"output, then {card.get('model_file')} (one dense layer, numpy); Grad-CAM, Grad-CAM++ and "
                "Score-CAM from the backbone's feature maps")
    entry = card.get("litert")
    if not entry:
        return "Keras (TensorFlow); `python -m trainer export` would add a LiteRT file"
    diff = entry.get("max_probability_diff")
    check = f", probabilities within {diff:.0e} of Keras on {entry.get('checked_on')}" if is_number(diff) else ""
    heatmaps = ("Grad-CAM, Grad-CAM++ and Score-CAM" if entry.get("head") else "Score-CAM") if entry.get("fmap_outputs") else ""
    cams = f", {heatmaps} from its feature maps" if heatmaps else ""
    return f"LiteRT, without TensorFlow ({entry.get('file', 'model.tflite')}, {human_bytes(entry.get('size_bytes'))}{check}{cams})"


def _member_text(member: dict) -> str:
    score = member.get("val_balanced_accuracy")
    name = member.get("display_name") or member.get("id")
    return f"{name} ({member.get('id')}, validation balanced accuracy {score:.3f})" if is_number(score) else str(name)


SUBGROUP_COLUMNS = {"sex": "Sex", "age_band": "Age band", "localization": "Body site", "source": "Image source"}
SUBGROUP_NOTES = {      # what a dataset's subgroup table cannot show, or why it is there
    "ham10000": "HAM10000 comes mostly from fair-skinned patients in Austria and Australia, so skin types outside "
                "that range are not represented at all.",
    "isic_9class": "The Train folder takes each class from one image source (bar 1 nevus), so a model can learn the "
                   "source instead of the lesion; the older archive test images show what that costs (see the model "
                   "card's known limitations).",
}


def subgroup_rows(groups: dict, column: str) -> list[dict]:
    """Display rows of one subgroup dimension (metrics.json["subgroups"][column]), small groups marked."""
    return [{"group": name, "images": r["n"], "small group": "small" if r["small"] else "",
             "accuracy": pct(r["accuracy"]),
             "balanced accuracy": with_ci(r["balanced_accuracy"], r["balanced_accuracy_ci95"]),
             "melanoma recall": "n/a" if r["melanoma_recall"] is None else f"{pct(r['melanoma_recall'])} of {r['melanomas']}"}
            for name, r in (groups or {}).get(column, {}).items()]


def weakest_subgroup(groups: dict) -> Optional[dict]:
    """The group (not marked small) with the lowest balanced accuracy: {"column", "group", "n", "balanced_accuracy"}."""
    candidates = [{"column": SUBGROUP_COLUMNS.get(column, column), "group": name, "n": r["n"],
                   "balanced_accuracy": r["balanced_accuracy"]}
                  for column, rows in (groups or {}).items() if isinstance(rows, dict)
                  for name, r in rows.items()
                  if isinstance(r, dict) and not r.get("small") and is_number(r.get("balanced_accuracy"))]
    return min(candidates, key=lambda c: c["balanced_accuracy"]) if candidates else None


def split_counts(card: dict) -> list[dict]:
    """Images per split from card["trained_on"]["counts"]: rows Split / Images."""
    counts = (card.get("trained_on") or {}).get("counts") or {}
    names = {"train": "Training", "val": "Validation", "validation": "Validation", "test": "Test"}
    def name(key: str) -> str:
        if key.startswith("train_of_which_"):          # extra training data from another dataset
            return f"Training: of which from {key.removeprefix('train_of_which_')}"
        return names.get(key, key)

    return [{"Split": name(k), "Images": int(v)} for k, v in counts.items() if is_number(v)]


def dataset_facts(dataset: str) -> dict:
    """Source, split, limitation and licence text for a dataset (empty lists for unknown datasets)."""
    return DATASET_FACTS.get(dataset, {"name": dataset, "source": "", "splits": [], "limitations": [], "license": ""})


def limitations(card: dict) -> list[str]:
    """Known limitations: dataset-specific first, then common ones, then the model's own weak classes."""
    items = list(dataset_facts(card.get("dataset", "")).get("limitations", [])) + COMMON_LIMITATIONS
    if (card.get("trained_on") or {}).get("label_conflicts_in_training"):
        items.append("This model was trained **with** the label-conflict images (noisy labels included on purpose).")
    return items


def license_text(dataset: str) -> str:
    """Markdown: licence of the data and the citation to give."""
    text = dataset_facts(dataset).get("license") or "Licence: see the dataset's SOURCE.md."
    return f"{text}\n\nCite HAM10000 as: {HAM10000_CITATION}"


# --------------------------------------------------------------------------------------------- training recipes

CLI_FLAGS = [  # (config key, CLI flag); booleans become bare flags
    ("model_id", "--model-id"), ("input_size", "--input-size"), ("batch_size", "--batch-size"),
    ("head_epochs", "--head-epochs"), ("epochs", "--epochs"), ("learning_rate", "--learning-rate"),
    ("fine_tune_learning_rate", "--fine-tune-learning-rate"), ("fine_tune_fraction", "--fine-tune-fraction"),
    ("lr_schedule", "--lr-schedule"), ("warmup_epochs", "--warmup-epochs"), ("weight_decay", "--weight-decay"),
    ("label_smoothing", "--label-smoothing"), ("dropout", "--dropout"), ("dense_units", "--dense-units"),
    ("augment", "--augment"), ("balance", "--balance"), ("early_stopping_patience", "--early-stopping-patience"),
    ("limit_per_class", "--limit-per-class"), ("seed", "--seed"), ("bootstrap", "--bootstrap"),
    ("include_label_conflicts", "--include-label-conflicts"), ("mixed_precision", "--mixed-precision"),
    ("loss", "--loss"), ("focal_gamma", "--focal-gamma"), ("mix", "--mix"), ("hair", "--hair"),
    ("device_shift", "--device-shift"), ("fov_crop", "--fov-crop"), ("color_constancy", "--color-constancy"),
    ("extra_train", "--extra-train"), ("extra_per_class", "--extra-per-class"), ("max_minutes", "--max-minutes"),
    ("exclude_lesions_of", "--exclude-lesions-of"), ("init_from", "--init-from"),
]
QUIET_VALUES = {"loss": "crossentropy", "mix": "none", "hair": 0.0,   # the defaults of options most runs never touch
                "device_shift": 0.0}


def _flag_value(config: dict, key: str):
    """The value to print for `key`, or None when the flag is left out (unset, off, or a quiet default)."""
    value = config.get(key)
    if value is None or value is False or QUIET_VALUES.get(key) == value:
        return None
    if key == "focal_gamma" and config.get("loss") != "focal":
        return None
    return value


def train_command(card: dict) -> str:
    """A `python -m trainer train ...` command that repeats the card's recorded configuration ("" for a quick
    custom model: the app fits those, see its card's notes)."""
    config = training_config(card)
    if card.get("kind") == "linear_head":
        return ""
    if config.get("architecture") == "ensemble" and config.get("members"):
        name = f" --display-name {shlex.quote(str(card['display_name']))}" if card.get("display_name") else ""
        return f"python -m trainer ensemble {','.join(config['members'])} --model-id {card.get('id')}{name}"
    if not config.get("model_id") and card.get("id"):
        config["model_id"] = card["id"]             # publish to the same zoo folder
    arch = config.get("architecture") or card.get("architecture")
    dataset = config.get("dataset") or card.get("dataset")
    if not arch or not dataset:
        return ""
    parts = ["python -m trainer train", f"-a {arch}", f"-d {dataset}"]
    if config.get("display_name"):
        parts.append(f"--display-name {shlex.quote(str(config['display_name']))}")
    if config.get("imagenet_weights") in ("none", "imagenet"):
        parts.append(f"--imagenet-weights {config['imagenet_weights']}")
    for key, flag in CLI_FLAGS:
        value = _flag_value(config, key)
        if value is None:
            continue
        parts.append(flag if value is True else f"{flag} {value}")
    lines, line = [], ""
    for part in parts:                       # wrap for display
        if line and len(line) + len(part) > 90:
            lines.append(line + " \\")
            line = "  " + part
        else:
            line = f"{line} {part}" if line else part
    lines.append(line)
    return "\n".join(lines)


def recipe_row(card: dict) -> dict:
    """One row of the training-recipe table of the Train page."""
    config = training_config(card)
    training = card.get("training") or {}

    def get(key):
        value = config.get(key)
        return "—" if value is None else fmt_value(value)

    pretrained = str(card.get("pretrained") or "")
    members = len(card.get("members") or [])
    per_member = f"each of the {members} members' own" if members else None
    return {
        "Model": card.get("display_name") or card.get("id"),
        "Dataset": dataset_label(card.get("dataset", "")),
        "Input (px)": get("input_size"),
        "Epochs (head + main)": per_member or (f"{get('head_epochs')} + {get('epochs')}"
                                               if pretrained and "scratch" not in pretrained.lower() else get("epochs")),
        "Learning rate (fine-tune)": per_member or f"{get('learning_rate')} ({get('fine_tune_learning_rate')})",
        "Augmentation": per_member or get("augment"),
        "Balance": per_member or get("balance"),
        "Training time": human_seconds(training.get("seconds")),
        "Hardware": training.get("hardware") or "n/a",
        "Status": card.get("status", "ok"),
    }


RUNTIME_CARD_FIELDS = ("folder", "status", "status_reason")


def card_json(card: dict) -> str:
    """The card as stored in card.json (without the fields the zoo adds when listing)."""
    import json

    return json.dumps({k: v for k, v in (card or {}).items() if k not in RUNTIME_CARD_FIELDS}, indent=2) + "\n"
