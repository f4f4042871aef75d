"""The evaluation views clinicians ask for, computed from a model's saved predictions (no network is re-run).

Stored in metrics.json["clinical"] (see `clinical_metrics` for the layout):
- precision-recall curves per class and their average precision (test);
- benign versus malignant: AUROC of the summed malignant / pre-malignant probability, sensitivity and specificity
  at the card's melanoma alert and at a malignant threshold chosen on validation;
- per-class 95% bootstrap intervals of recall, precision, specificity and F1 (test);
- intervals that resample whole lesions where the dataset has lesion ids (several images of one lesion are not
  independent), and the headline intervals both ways;
- split conformal prediction sets (LAC, see model_zoo/conformal.py) fitted on validation for 90% coverage and
  measured on test.
Every figure uses the CALIBRATED probabilities (the card's temperature), because those are what the app shows and
what its thresholds apply to.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from model_zoo import store
from model_zoo.calibration import apply_temperature, choose_sensitivity_threshold
from model_zoo.classes import is_concerning
from model_zoo.conformal import set_mask

from .metrics import CI_LEVEL, N_BOOTSTRAP, SEED, specificity_per_class

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
COVERAGE = 0.90
COVERAGE_LEVELS = (0.80, 0.90, 0.95)
MALIGNANT_SENSITIVITY = 0.90
CURVE_POINTS = 100
ROUND = 4
PER_CLASS_METRICS = ("recall", "precision", "specificity", "f1")
SHIFT_NOTES = {"isic_9class": "Here validation is a lesion-grouped 15% of the Kaggle Train folder, with Train's class "
                              "mix, while test is the separately compiled official Test folder (16 images of most "
                              "classes, 3 of two), so classes that are rare in validation weigh more on test."}
CONFORMAL_REFERENCE = ("LAC (Sadinle, Lei & Wasserman 2019, 'Least ambiguous set-valued classifiers with bounded "
                       "error levels', JASA) as in Angelopoulos & Bates 2021, 'A Gentle Introduction to Conformal "
                       "Prediction and Distribution-Free Uncertainty Quantification', sec. 1 (arXiv:2107.07511)")


# ---------------------------------------------------------------- inputs
def read_prediction_table(folder: Path, classes: Sequence[str]) -> pd.DataFrame:
    """predictions.csv with ids kept as text (the zoo's generic reader turns numeric-looking cells into floats)."""
    table = pd.read_csv(folder / store.PREDICTIONS_FILE, dtype={"split": str, "image_id": str, "true": str})
    missing = [c for c in classes if f"p_{c}" not in table.columns]
    if missing:
        raise ValueError(f"predictions.csv lacks probability columns for {missing}")
    return table


def split_arrays(table: pd.DataFrame, split: str, classes: Sequence[str],
                 temperature: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image ids, calibrated probabilities, integer labels) of one split ("val" or "test")."""
    rows = table[table["split"] == split]
    raw = rows[[f"p_{c}" for c in classes]].to_numpy(dtype=np.float64)
    labels = rows["true"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    if np.isnan(labels.astype(float)).any():
        raise ValueError(f"predictions.csv has {split} labels outside the card's classes")
    return rows["image_id"].to_numpy(dtype=str), apply_temperature(raw, temperature), labels.astype(int)


def card_temperature(card: dict, metrics: dict) -> float:
    """The temperature the app applies (card.json), else the one in metrics.json, else none (1.0)."""
    temperature = card.get("calibration", {}).get("temperature") or metrics.get("calibration", {}).get("temperature")
    return float(temperature or 1.0)


def melanoma_alert_threshold(card: dict, metrics: dict) -> Optional[tuple[str, float]]:
    """(class, threshold) of the melanoma alert the app raises, as fitted on validation (card first)."""
    point = card.get("melanoma_operating_point") or metrics.get("calibration", {}).get("melanoma_operating_point")
    if not point:
        return None
    threshold = point.get("validation", {}).get("threshold", point.get("test", {}).get("threshold"))
    return (point["class"], float(threshold)) if threshold is not None else None


def lesion_groups(dataset: Optional[str], image_ids: Sequence[str],
                  data_dir: Optional[str | Path] = None) -> tuple[np.ndarray, int]:
    """Each image's lesion id from the saved split (its own image id where none is known), and how many images
    had a known lesion id. Unknown dataset (or a prepared one not in the data folder): every image is its own group
    (plain image bootstrap)."""
    from .data import DataError, read_split

    image_ids = [str(i) for i in image_ids]
    try:
        split = read_split(dataset, data_dir) if dataset else None
    except (DataError, OSError):
        split = None
    if split is None:
        return np.array(image_ids), 0
    known = split.dropna(subset=["lesion_id"])
    known = known[known["lesion_id"].astype(str) != known["image_id"].astype(str)]
    lesions = dict(zip(known["image_id"].astype(str), known["lesion_id"].astype(str)))
    groups = np.array([lesions.get(i, i) for i in image_ids])
    return groups, int(sum(i in lesions for i in image_ids))


def resampling_note(dataset: Optional[str], n_images: int, n_lesions: int, n_known: int) -> str:
    """Why (and how) the intervals resample lesions rather than images, in one paragraph."""
    if n_lesions == n_images and n_known == 0:
        return f"No lesion ids are known: intervals resample the {n_images} test images."
    text = (f"The test split holds {n_images} images of {n_lesions} lesions. Several images of one lesion are not "
            "independent (same lesion, same diagnosis, similar pictures), so resampling images would treat them as "
            "separate evidence and give intervals that are too narrow. The intervals therefore resample whole "
            "lesions (cluster bootstrap on lesion_id from the saved split file).")
    if n_known < n_images:
        text += (f" Lesion ids are known for {n_known} of the {n_images} test images (those that come from "
                 "HAM10000); each other image counts as a lesion of its own because its source publishes no lesion "
                 "ids, so where two of those show one lesion the interval can still be slightly too narrow.")
    return text


# ---------------------------------------------------------------- resampling
def cluster_resamples(groups: Sequence, n_bootstrap: int = N_BOOTSTRAP, seed: int = SEED) -> list[np.ndarray]:
    """Index arrays of a cluster bootstrap: draw as many groups as there are, with replacement, and take every
    image of each drawn group (so a lesion is in or out as a whole). One group per image = ordinary bootstrap."""
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse))
    members = np.split(order, bounds[:-1])
    rng = np.random.default_rng(seed)
    return [np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
            for _ in range(n_bootstrap)]


def percentile_interval(values: Sequence, level: float = CI_LEVEL) -> Optional[list[float]]:
    """Percentile interval of bootstrap values, ignoring resamples where the statistic is undefined (NaN)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    alpha = (1 - level) / 2
    return [float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))]


def bootstrap_values(statistic: Callable[[np.ndarray], object], resamples: Sequence[np.ndarray]) -> np.ndarray:
    """statistic(index array) for every resample, stacked (warnings of resamples that miss a class silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([statistic(index) for index in resamples], dtype=np.float64)


def _value(x) -> Optional[float]:
    return None if x is None or not np.isfinite(x) else float(x)


# ---------------------------------------------------------------- statistics
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
                   **{m: _value(point[j, c]) for j, m in enumerate(PER_CLASS_METRICS)},
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
    return {"threshold": float(threshold), "sensitivity": _value(sens), "specificity": _value(spec),
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
        "test": {"n": int(len(test_y)), "positives": int(test_pos.sum()), "roc_auc": _value(auc(test_pos, test_score)),
                 "roc_auc_ci95": percentile_interval(bootstrap_values(lambda i: auc(test_pos[i], test_score[i]),
                                                                      resamples), level),
                 "average_precision": pr_curve(test_pos, test_score)["average_precision"],
                 "roc_curve": roc_curve(test_pos, test_score)},
        "validation": {"n": int(len(val_y)), "positives": int(val_pos.sum()), "roc_auc": _value(auc(val_pos, val_score))},
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


# ---------------------------------------------------------------- conformal prediction
def fit_conformal(probabilities: np.ndarray, labels: np.ndarray, coverage: float = COVERAGE) -> float:
    """LAC qhat: the ceil((n+1)(1-alpha))/n quantile of 1 - p(true class) on held-out images (Angelopoulos &
    Bates 2021, sec. 1); 1.0 (every class) when there are too few images for the coverage asked."""
    n = len(labels)
    scores = 1.0 - np.asarray(probabilities)[np.arange(n), np.asarray(labels)]
    level = np.ceil((n + 1) * coverage) / n if n else np.inf
    return 1.0 if level > 1 else float(np.quantile(scores, level, method="higher"))


def conformal_scores(probabilities: np.ndarray, labels: np.ndarray, qhat: float, classes: Sequence[str],
                     resamples: Sequence[np.ndarray], level: float = CI_LEVEL) -> dict:
    """Coverage (share of images whose set holds the true class) and set size, overall and per true class."""
    sets = set_mask(probabilities, qhat, non_empty=True)
    covered = sets[np.arange(len(labels)), labels]
    size = sets.sum(axis=1)
    return {
        "n": int(len(labels)), "coverage": float(covered.mean()),
        "coverage_ci95": percentile_interval(bootstrap_values(lambda i: covered[i].mean(), resamples), level),
        "mean_set_size": float(size.mean()),
        "set_size_counts": {str(s): int((size == s).sum()) for s in range(1, len(classes) + 1) if (size == s).any()},
        "per_class": {name: {"n": int((labels == c).sum()),
                             "coverage": _value(covered[labels == c].mean()) if (labels == c).any() else None,
                             "mean_set_size": _value(size[labels == c].mean()) if (labels == c).any() else None}
                      for c, name in enumerate(classes)},
    }


def conformal(val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], classes: Sequence[str],
              resamples: Sequence[np.ndarray], coverage: float = COVERAGE, level: float = CI_LEVEL,
              dataset: Optional[str] = None) -> dict:
    """Fit on validation, measure on test; a few other coverage levels for the size-versus-coverage trade-off.

    `warning` is set when the test coverage's whole interval lies below the target: then validation and test are
    not exchangeable for this model and the stated coverage must not be promised on images like the test's."""
    qhat = fit_conformal(val[0], val[1], coverage)
    measured = conformal_scores(test[0], test[1], qhat, classes, resamples, level)
    below = measured["coverage_ci95"] is not None and measured["coverage_ci95"][1] < coverage
    warning = None
    if below:
        warning = (f"Test coverage {measured['coverage']:.3f} is below the {coverage:.0%} target beyond sampling "
                   "noise: validation and test images are not exchangeable for this model. "
                   + SHIFT_NOTES.get(dataset or "", ""))
    test_sets = lambda q: set_mask(test[0], q, non_empty=True)
    levels = []
    for target in sorted(set(COVERAGE_LEVELS) | {coverage}):
        q = fit_conformal(val[0], val[1], target)
        sets = test_sets(q)
        levels.append({"target_coverage": target, "qhat": q,
                       "test_coverage": float(sets[np.arange(len(test[1])), test[1]].mean()),
                       "test_mean_set_size": float(sets.sum(axis=1).mean())})
    return {
        "method": "LAC", "reference": CONFORMAL_REFERENCE,
        "score": "1 - calibrated probability of the true class",
        "rule": "the set holds every class with calibrated probability >= 1 - qhat, and always the most probable one",
        "target_coverage": coverage, "alpha": round(1 - coverage, 10), "fitted_on": "validation",
        "n_validation": int(len(val[1])), "qhat": qhat, "threshold": 1.0 - qhat, "non_empty": True,
        "note": "Coverage is guaranteed on average over images when validation and new images are exchangeable, "
                "not for each class: see test.per_class.",
        "test": measured, "test_coverage_below_target": bool(below), "warning": warning,
        "levels": levels,
    }


# ---------------------------------------------------------------- the whole block
def clinical_metrics(classes: Sequence[str], val: tuple[np.ndarray, np.ndarray, np.ndarray],
                     test: tuple[np.ndarray, np.ndarray, np.ndarray], dataset: Optional[str], temperature: float,
                     melanoma_alert: Optional[tuple[str, float]] = None, n_bootstrap: int = N_BOOTSTRAP,
                     coverage: float = COVERAGE, seed: int = SEED, data_dir: Optional[str | Path] = None) -> dict:
    """metrics.json["clinical"] from (image ids, calibrated probabilities, labels) of validation and test."""
    classes = list(classes)
    (val_ids, val_p, val_y), (test_ids, test_p, test_y) = val, test
    groups, known = lesion_groups(dataset, test_ids, data_dir)
    val_groups, _ = lesion_groups(dataset, val_ids, data_dir)
    n_lesions = len(set(groups))
    by_lesion = n_lesions < len(groups) or known > 0
    resamples = cluster_resamples(groups, n_bootstrap, seed)
    image_resamples = cluster_resamples(np.arange(len(test_y)), n_bootstrap, seed) if by_lesion else resamples
    val_resamples = cluster_resamples(val_groups, n_bootstrap, seed)
    test_pred = test_p.argmax(axis=1)
    values = headline_scores(test_y, test_pred, len(classes))
    return {
        "schema_version": SCHEMA_VERSION,
        "computed_from": "predictions.csv (python -m trainer clinical); no network was re-run",
        "probabilities": "calibrated: softmax(log p / T) with the card's temperature, as the app shows them",
        "temperature": float(temperature),
        "split": "test",
        "bootstrap": {"resamples": int(n_bootstrap), "level": CI_LEVEL, "seed": seed, "method": "percentile",
                      "unit": "lesion" if by_lesion else "image", "test_images": int(len(test_y)),
                      "test_lesions": int(n_lesions), "test_images_with_lesion_id": known,
                      "note": resampling_note(dataset, len(test_y), n_lesions, known)},
        "headline_ci95": {
            "values": dict(zip(("accuracy", "balanced_accuracy", "macro_f1"), map(float, values))),
            "image": headline_intervals(test_y, test_pred, len(classes), image_resamples),
            "lesion": headline_intervals(test_y, test_pred, len(classes), resamples) if by_lesion else None,
            "note": "image: resampling test images (as metrics.test.ci95); lesion: resampling whole lesions "
                    "(see bootstrap.note). Where both exist, the lesion interval is the honest one.",
        },
        "per_class": per_class_intervals(test_y, test_pred, classes, resamples),
        "pr_curves": pr_curves(test_y, test_p, classes),
        "roc_curves": {"validation": roc_curves(val_y, val_p, classes), "test": roc_curves(test_y, test_p, classes)},
        "benign_malignant": benign_malignant((val_p, val_y), (test_p, test_y), classes, resamples, val_resamples,
                                             melanoma_alert),
        "conformal": conformal((val_p, val_y), (test_p, test_y), classes, resamples, coverage, dataset=dataset),
    }


def clinical_for_model(model_id: str, zoo_root: Optional[Path] = None, n_bootstrap: int = N_BOOTSTRAP,
                       coverage: float = COVERAGE, data_dir: Optional[str | Path] = None) -> dict:
    """Recompute metrics.json["clinical"] of a zoo model from its predictions.csv; writes metrics.json atomically
    and leaves card.json alone."""
    import model_zoo

    from .data import refuse_test_only

    folder = model_zoo.zoo.model_folder(model_id, zoo_root)
    card = store.read_json(folder / store.CARD_FILE)
    refuse_test_only(card.get("dataset"), "fitting thresholds or conformal sets")
    metrics_path = folder / store.METRICS_FILE
    metrics = store.read_json(metrics_path) if metrics_path.is_file() else {}
    classes = list(card["classes"])
    temperature = card_temperature(card, metrics)
    table = read_prediction_table(folder, classes)
    result = clinical_metrics(classes, split_arrays(table, "val", classes, temperature),
                              split_arrays(table, "test", classes, temperature), card.get("dataset"), temperature,
                              melanoma_alert_threshold(card, metrics), n_bootstrap, coverage, data_dir=data_dir)
    metrics = store.read_json(metrics_path) if metrics_path.is_file() else {}    # the latest, just before writing
    metrics["clinical"] = result
    store.write_json_atomic(metrics_path, metrics)
    return result


def summary_line(model_id: str, result: dict) -> str:
    """One line of figures per model for the CLI."""
    bm, conf = result["benign_malignant"], result["conformal"]
    op = bm["malignant_operating_point"]["test"]
    mel = bm["melanoma_alert"]["test"] if bm["melanoma_alert"] else None
    lesion = result["headline_ci95"]["lesion"]
    text = (f"{model_id}: conformal {conf['target_coverage']:.0%} -> test coverage {conf['test']['coverage']:.3f}, "
            f"mean set size {conf['test']['mean_set_size']:.2f}; malignant AUROC {bm['test']['roc_auc']:.3f} "
            f"{_fmt_ci(bm['test']['roc_auc_ci95'])}, at t={op['threshold']:.3f} sens {op['sensitivity']:.3f} "
            f"{_fmt_ci(op['sensitivity_ci95'])} spec {op['specificity']:.3f} {_fmt_ci(op['specificity_ci95'])}")
    if mel:
        text += (f"; melanoma alert sens {mel['sensitivity']:.3f} {_fmt_ci(mel['sensitivity_ci95'])} "
                 f"spec {mel['specificity']:.3f} {_fmt_ci(mel['specificity_ci95'])}")
    if lesion:
        text += (f"; balanced accuracy CI image {_fmt_ci(result['headline_ci95']['image']['balanced_accuracy'])} "
                 f"lesion {_fmt_ci(lesion['balanced_accuracy'])}")
    return text


def _fmt_ci(ci: Optional[list[float]]) -> str:
    return "[n/a]" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"
