"""Calibration and decision thresholds, fitted on validation predictions and applied at prediction time.

- Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks", sec. 4.2):
  p_T = softmax(log p / T), one scalar T fitted by minimising the validation NLL.
- Expected calibration error with equal-width confidence bins (Guo et al. eq. 3), top label, and its
  sampling floor: what a perfectly calibrated model scores on a split of the same size.
- Abstention: the lowest confidence threshold whose accepted validation images reach a target accuracy.
- Melanoma operating point: the highest melanoma-vs-rest threshold with validation sensitivity >= target.
Pure numpy/scipy: no TensorFlow, so the app can use it too.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

ECE_BINS = 15
EPS = 1e-7


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T), row-wise; T = 1 returns the input (renormalised)."""
    logits = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), EPS, 1.0)) / float(temperature)
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=-1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(np.asarray(probabilities)[np.arange(len(labels)), labels], EPS, 1.0)
    return float(-np.mean(np.log(p)))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] minimising NLL on (validation) predictions."""
    from scipy.optimize import minimize_scalar

    result = minimize_scalar(lambda t: negative_log_likelihood(apply_temperature(probabilities, t), labels),
                             bounds=(0.05, 20.0), method="bounded", options={"xatol": 1e-4})
    return float(result.x)


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per confidence bin: mean confidence, accuracy and count (the reliability diagram's data)."""
    confidence = np.asarray(probabilities).max(axis=1)
    correct = np.asarray(probabilities).argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        rows.append({"low": float(low), "high": float(high), "count": int(inside.sum()),
                     "confidence": float(confidence[inside].mean()) if inside.any() else None,
                     "accuracy": float(correct[inside].mean()) if inside.any() else None})
    return rows


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over bins of |accuracy - confidence| weighted by the bin's share of images."""
    total = len(labels)
    return float(sum(r["count"] / total * abs(r["accuracy"] - r["confidence"])
                     for r in reliability_bins(probabilities, labels, bins) if r["count"]))


def ece_sampling_floor(probabilities: np.ndarray, draws: int = 200, seed: int = 0) -> dict:
    """The ECE a perfectly calibrated model with these confidences shows on this many images, by chance alone.

    Labels are drawn from the model's own probabilities (so it is calibrated by construction) and the
    ECE is measured as usual: median and 95th percentile over `draws`. On 118 images this is ~0.10,
    so an ECE goal of 0.05 cannot be told from noise there; on 1,500 images it is ~0.025.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    cumulative = probabilities.cumsum(axis=1)
    values = []
    for _ in range(draws):
        labels = (rng.random((len(probabilities), 1)) > cumulative).sum(axis=1).clip(0, probabilities.shape[1] - 1)
        values.append(expected_calibration_error(probabilities, labels))
    return {"median": float(np.median(values)), "p95": float(np.percentile(values, 95)), "draws": draws,
            "n": int(len(probabilities))}


def risk_coverage(probabilities: np.ndarray, labels: np.ndarray) -> list[dict]:
    """Accuracy of the accepted images as the confidence threshold rises (one point per distinct confidence)."""
    confidence = np.asarray(probabilities).max(axis=1)
    correct = (np.asarray(probabilities).argmax(axis=1) == np.asarray(labels)).astype(float)
    order = np.argsort(-confidence)
    cumulative = np.cumsum(correct[order])
    n = len(labels)
    points = []
    for k in range(1, n + 1):
        if k < n and confidence[order[k]] == confidence[order[k - 1]]:
            continue
        points.append({"threshold": float(confidence[order[k - 1]]), "coverage": k / n, "accuracy": float(cumulative[k - 1] / k)})
    return points


def choose_abstention_threshold(probabilities: np.ndarray, labels: np.ndarray, target_accuracy: float) -> dict:
    """Lowest threshold whose accepted (confidence >= threshold) images have accuracy >= target."""
    feasible = [p for p in risk_coverage(probabilities, labels) if p["accuracy"] >= target_accuracy]
    if not feasible:
        return {"threshold": 1.0, "coverage": 0.0, "accuracy": None, "target_accuracy": target_accuracy}
    best = max(feasible, key=lambda p: p["coverage"])
    return {**best, "target_accuracy": target_accuracy}


def selective_scores(probabilities: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """Coverage and accuracy on accepted images at a fixed threshold (for the test split)."""
    confidence = np.asarray(probabilities).max(axis=1)
    accepted = confidence >= threshold
    correct = np.asarray(probabilities).argmax(axis=1) == np.asarray(labels)
    return {"coverage": float(accepted.mean()), "accuracy": float(correct[accepted].mean()) if accepted.any() else None,
            "n_accepted": int(accepted.sum()), "n": int(len(labels))}


def choose_sensitivity_threshold(scores: np.ndarray, positive: np.ndarray, sensitivity: float) -> float:
    """Highest threshold t with sensitivity(score >= t) >= target on (validation) data."""
    positives = np.sort(np.asarray(scores)[np.asarray(positive, bool)])[::-1]
    if len(positives) == 0:
        return 0.5
    needed = int(np.ceil(sensitivity * len(positives)))
    return float(positives[needed - 1])


def binary_rates(scores: np.ndarray, positive: np.ndarray, threshold: float, n_bootstrap: int = 1000,
                 seed: int = 42) -> dict:
    """Sensitivity and specificity at `threshold`, with percentile bootstrap 95% intervals."""
    scores, positive = np.asarray(scores), np.asarray(positive, bool)

    def rates(s, p):
        flagged = s >= threshold
        sens = flagged[p].mean() if p.any() else np.nan
        spec = (~flagged[~p]).mean() if (~p).any() else np.nan
        return sens, spec

    sens, spec = rates(scores, positive)
    rng = np.random.default_rng(seed)
    samples = np.array([rates(scores[i], positive[i]) for i in
                        (rng.integers(0, len(scores), len(scores)) for _ in range(n_bootstrap))])
    ci = lambda column: [float(np.nanquantile(samples[:, column], 0.025)), float(np.nanquantile(samples[:, column], 0.975))]
    return {"threshold": float(threshold), "sensitivity": float(sens), "specificity": float(spec),
            "sensitivity_ci95": ci(0), "specificity_ci95": ci(1), "positives": int(positive.sum()), "n": int(len(scores))}


def calibrate(val_probabilities: np.ndarray, val_labels: np.ndarray, test_probabilities: np.ndarray,
              test_labels: np.ndarray, classes: Sequence[str], melanoma: Optional[str],
              abstention_accuracy: float = 0.80, melanoma_sensitivity: float = 0.90, n_bootstrap: int = 1000) -> dict:
    """Everything fitted on validation, then measured once on test. JSON-serialisable."""
    temperature = fit_temperature(val_probabilities, val_labels)
    val_t = apply_temperature(val_probabilities, temperature)
    test_t = apply_temperature(test_probabilities, temperature)
    result = {
        "method": "temperature scaling fitted on the validation split",
        "temperature": temperature,
        "ece_bins": ECE_BINS,
        "test": {
            "ece_before": expected_calibration_error(test_probabilities, test_labels),
            "ece_after": expected_calibration_error(test_t, test_labels),
            "nll_before": negative_log_likelihood(test_probabilities, test_labels),
            "nll_after": negative_log_likelihood(test_t, test_labels),
            "reliability_before": reliability_bins(test_probabilities, test_labels),
            "reliability_after": reliability_bins(test_t, test_labels),
            "risk_coverage": risk_coverage(test_t, test_labels),
            "ece_floor": ece_sampling_floor(test_t),
        },
        "validation": {
            "ece_before": expected_calibration_error(val_probabilities, val_labels),
            "ece_after": expected_calibration_error(val_t, val_labels),
            "nll_before": negative_log_likelihood(val_probabilities, val_labels),
            "nll_after": negative_log_likelihood(val_t, val_labels),
            "ece_floor": ece_sampling_floor(val_t),
        },
    }
    abstain = choose_abstention_threshold(val_t, val_labels, abstention_accuracy)
    result["abstention"] = {"chosen_on": "validation", **abstain,
                            "test": selective_scores(test_t, test_labels, abstain["threshold"])}
    if melanoma in classes:
        index = list(classes).index(melanoma)
        threshold = choose_sensitivity_threshold(val_t[:, index], val_labels == index, melanoma_sensitivity)
        result["melanoma_operating_point"] = {
            "class": melanoma, "target_sensitivity": melanoma_sensitivity, "chosen_on": "validation",
            "validation": binary_rates(val_t[:, index], val_labels == index, threshold, n_bootstrap),
            "test": binary_rates(test_t[:, index], test_labels == index, threshold, n_bootstrap),
        }
    return result


def card_summary(result: dict) -> dict:
    """The compact part of the calibration result that rides in card.json (the app reads it)."""
    summary = {
        "calibration": {
            "temperature": result["temperature"],
            "test_ece_before": result["test"]["ece_before"], "test_ece_after": result["test"]["ece_after"],
            "test_nll_before": result["test"]["nll_before"], "test_nll_after": result["test"]["nll_after"],
            "test_ece_floor": result["test"]["ece_floor"]["median"],
        },
        "abstention": {k: result["abstention"][k] for k in ("threshold", "coverage", "accuracy", "target_accuracy")}
        | {"test": result["abstention"]["test"]},
    }
    if "melanoma_operating_point" in result:
        summary["melanoma_operating_point"] = result["melanoma_operating_point"]
    return summary
