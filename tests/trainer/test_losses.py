"""The training loss option: focal loss must reduce to cross-entropy at gamma 0, and must shift the
weight of the batch from the images the model already gets right to the ones it gets wrong."""
from __future__ import annotations

import numpy as np
import pytest

from trainer.cli import build_parser, config_from_args
from trainer.config import TrainConfig
from trainer.fit_setup import make_loss

TRUTH = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
PROBA = np.array([[0.95, 0.03, 0.02],      # easy: right and confident
                  [0.10, 0.85, 0.05],      # easy
                  [0.60, 0.30, 0.10],      # hard: wrong
                  [0.40, 0.35, 0.25]],     # hard: right, barely
                 dtype="float32")


def per_image(config: TrainConfig) -> np.ndarray:
    return np.asarray(make_loss(config, reduction=None)(TRUTH, PROBA))


def test_focal_at_gamma_zero_is_cross_entropy():
    base = TrainConfig("mobilenet_v2", "ham10000", label_smoothing=0.1)
    focal = TrainConfig("mobilenet_v2", "ham10000", label_smoothing=0.1, loss="focal", focal_gamma=0.0)
    np.testing.assert_allclose(per_image(focal), per_image(base), rtol=1e-5)


def test_focal_moves_the_weight_to_hard_images():
    ce = per_image(TrainConfig("mobilenet_v2", "ham10000"))
    focal = per_image(TrainConfig("mobilenet_v2", "ham10000", loss="focal", focal_gamma=2.0))
    assert np.all(focal < ce)
    share = lambda losses: losses[2:].sum() / losses.sum()     # noqa: E731 - the hard images' share
    assert share(focal) > share(ce) + 0.05
    np.testing.assert_allclose(focal, ce * (1 - (PROBA * TRUTH).sum(1)) ** 2, rtol=1e-5)


def test_cli_passes_the_loss_and_rejects_unknown_ones():
    args = build_parser().parse_args(["train", "-a", "mobilenet_v2", "-d", "ham10000", "--loss", "focal",
                                      "--focal-gamma", "1.5"])
    config = config_from_args(args)
    assert (config.loss, config.focal_gamma) == ("focal", 1.5)
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss(TrainConfig("mobilenet_v2", "ham10000", loss="hinge"))
