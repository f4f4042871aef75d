"""Calibration, abstention and melanoma thresholds: the maths, and on the real zoo models."""
from __future__ import annotations

import numpy as np
import pytest

import model_zoo
from model_zoo.calibration import (apply_temperature, choose_abstention_threshold, choose_sensitivity_threshold,
                                   ece_sampling_floor, expected_calibration_error, fit_temperature, negative_log_likelihood,
                                   reliability_bins)
from model_zoo.inference import abstains, read

CARDS = [c for c in model_zoo.list_models() if c["status"] == "ok"]


def _overconfident(n: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4)) + 1.0 * np.eye(4)[labels]
    logits *= 4.0                                         # far too sharp
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True), labels


def test_temperature_scaling_fixes_overconfidence():
    p, y = _overconfident()
    t = fit_temperature(p[:1000], y[:1000])
    assert t > 2.0
    held_out = apply_temperature(p[1000:], t)
    assert negative_log_likelihood(held_out, y[1000:]) < negative_log_likelihood(p[1000:], y[1000:])
    assert expected_calibration_error(held_out, y[1000:]) < expected_calibration_error(p[1000:], y[1000:])
    np.testing.assert_allclose(apply_temperature(p, t).argmax(1), p.argmax(1))   # ranking kept


def test_ece_by_hand():
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    # bins: 0.9 -> accuracy 0.5 (gap 0.4, weight 0.5); 0.6 -> accuracy 1.0 (gap 0.4, weight 0.5)
    assert expected_calibration_error(p, y) == pytest.approx(0.4)
    assert sum(r["count"] for r in reliability_bins(p, y)) == 4


def test_ece_sampling_floor_shrinks_with_the_number_of_images():
    """A calibrated model's ECE is pure noise: about 0.1 on 118 images, a third of that on 1,500."""
    p, _ = _overconfident(1500)
    small, large = ece_sampling_floor(p[:118]), ece_sampling_floor(p)
    assert 0.05 < small["median"] < 0.2 and small["n"] == 118
    assert large["median"] < small["median"] / 2 and large["median"] <= large["p95"]
    labels = (np.random.default_rng(1).random((1500, 1)) > p.cumsum(axis=1)).sum(axis=1)   # calibrated by construction
    assert expected_calibration_error(p, labels) <= large["p95"] * 1.5


def test_thresholds_meet_their_targets_on_the_fitting_data():
    p, y = _overconfident()
    choice = choose_abstention_threshold(p, y, 0.9)
    accepted = p.max(1) >= choice["threshold"]
    assert (p.argmax(1)[accepted] == y[accepted]).mean() >= 0.9
    scores, positive = p[:, 2], y == 2
    t = choose_sensitivity_threshold(scores, positive, 0.9)
    assert (scores[positive] >= t).mean() >= 0.9


@pytest.mark.parametrize("card", CARDS, ids=[c["id"] for c in CARDS])
def test_real_model_calibration_lowers_held_out_nll(card):
    """Cross-fitted on the model's validation predictions: fit T on one half, score the other half.
    A model that is already calibrated (T near 1) may gain nothing; it must not lose more than 0.01 nats."""
    rows = [r for r in model_zoo.read_predictions(card["id"]) if r["split"] == "val"]
    classes = card["classes"]
    p = np.array([[r[f"p_{c}"] for c in classes] for r in rows])
    y = np.array([classes.index(r["true"]) for r in rows])
    order = np.random.default_rng(0).permutation(len(y))
    gains = []
    for fit, score in ((order[::2], order[1::2]), (order[1::2], order[::2])):
        t = fit_temperature(p[fit], y[fit])
        gains.append(negative_log_likelihood(p[score], y[score]) - negative_log_likelihood(apply_temperature(p[score], t), y[score]))
    assert min(gains) >= -0.01, gains
    if abs(card["calibration"]["temperature"] - 1.0) > 0.2:      # clearly miscalibrated: scaling must help
        assert sum(gains) > 0, gains


@pytest.mark.parametrize("card", CARDS, ids=[c["id"] for c in CARDS])
def test_card_holds_validation_fitted_thresholds(card):
    assert 0.05 <= card["calibration"]["temperature"] <= 20
    assert 0.0 < card["abstention"]["threshold"] <= 1.0
    low = read(np.full(len(card["classes"]), 1.0 / len(card["classes"])), card["classes"])
    assert abstains(low, card), "a uniform answer must be refused"
    if "melanoma_operating_point" in card:
        assert card["melanoma_operating_point"]["validation"]["sensitivity"] >= 0.9
