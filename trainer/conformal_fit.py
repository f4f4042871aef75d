"""Split conformal prediction sets (LAC, model_zoo/conformal.py): fitted on validation for a target coverage and
measured on test, overall and per true class, with a warning when test falls short beyond sampling noise."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from model_zoo.conformal import set_mask

from .lesion_bootstrap import bootstrap_values, finite_or_none, percentile_interval
from .metrics import CI_LEVEL

COVERAGE = 0.90
COVERAGE_LEVELS = (0.80, 0.90, 0.95)
SHIFT_NOTES = {"isic_9class": "Here validation is a lesion-grouped 15% of the Kaggle Train folder, with Train's class "
                              "mix, while test is the separately compiled official Test folder (16 images of most "
                              "classes, 3 of two), so classes that are rare in validation weigh more on test."}
CONFORMAL_REFERENCE = ("LAC (Sadinle, Lei & Wasserman 2019, 'Least ambiguous set-valued classifiers with bounded "
                       "error levels', JASA) as in Angelopoulos & Bates 2021, 'A Gentle Introduction to Conformal "
                       "Prediction and Distribution-Free Uncertainty Quantification', sec. 1 (arXiv:2107.07511)")


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
                             "coverage": finite_or_none(covered[labels == c].mean()) if (labels == c).any() else None,
                             "mean_set_size": finite_or_none(size[labels == c].mean()) if (labels == c).any() else None}
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
