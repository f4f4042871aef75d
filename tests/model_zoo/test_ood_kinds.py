"""The dermoscopy check's three verdicts: in the training distribution, a dermoscopy image unlike the training
images (classified with a warning, the melanoma alert applied, referral advised) and not a dermoscopy image
(refused)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import model_zoo
from model_zoo import diagnosis as dg
from model_zoo.batch_export import batch_row
from model_zoo.ood import IN_DISTRIBUTION, NOT_DERMOSCOPY, UNLIKE_TRAINING, SubspaceResidualDetector

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = "ensemble_224_cc_ham10000"
PH2_IN_BAND = "IMD423"      # a PH² melanoma the committed default calls unlike its training images (mid-band)


def _toy() -> SubspaceResidualDetector:
    """Training subspace: the first two axes of R^4; residual threshold 1, relative-residual threshold 0.5."""
    return SubspaceResidualDetector(np.zeros(4), np.eye(4)[:2], threshold=1.0, refuse_threshold=0.5)


def test_each_band_gets_its_kind():
    features = np.array([[5.0, 5.0, 0.5, 0.0],      # small residual: in distribution
                         [6.0, 6.0, 2.0, 0.0],      # residual 2 > 1, but 2 / 8.7 of the features: unlike training
                         [0.5, 0.0, 1.5, 0.0]])     # residual 1.5, most of the features: not dermoscopy
    detector = _toy()
    assert detector.kinds(features) == [IN_DISTRIBUTION, UNLIKE_TRAINING, NOT_DERMOSCOPY]
    assert detector.rejects(features).tolist() == [False, False, True]
    np.testing.assert_allclose(detector.relative_scores(features)[1], 2.0 / np.linalg.norm(features[1]))


def test_an_old_single_threshold_detector_keeps_its_meaning(tmp_path):
    old = SubspaceResidualDetector(np.zeros(4), np.eye(4)[:2], threshold=1.0)
    features = np.array([[6.0, 6.0, 2.0, 0.0], [1.0, 1.0, 0.1, 0.0]])
    assert old.kinds(features) == [NOT_DERMOSCOPY, IN_DISTRIBUTION]
    np.savez(tmp_path / "old.npz", mean=old.mean, components=old.components, threshold=np.float64(1.0))
    assert SubspaceResidualDetector.load(tmp_path / "old.npz").refuse_threshold is None
    _toy().save(tmp_path / "new.npz")
    assert SubspaceResidualDetector.load(tmp_path / "new.npz").refuse_threshold == 0.5


@pytest.fixture(scope="module")
def model():
    return model_zoo.load(DEFAULT)


def test_committed_default_has_both_thresholds(model):
    detector = model.ood_detector
    assert detector is not None and detector.refuse_threshold is not None
    ood = model.card["ood"]
    assert ood["ood_rejected"] >= 0.85 and ood["ood_rejected_held_out"] >= 0.85, "non-dermoscopy still refused"
    assert ood["dermoscopy_wrongly_rejected"] <= 0.02


def test_a_dermoscopy_image_is_classified_without_warning(model, data_dir):
    frame = pd.read_csv(ROOT / "trainer" / "splits" / "ham10000.csv")
    path = data_dir / "ham10000" / frame.loc[(frame["split"] == "test") & (frame["label"] == "nv"), "path"].iloc[0]
    d = dg.diagnose(model, path)
    assert d.not_dermoscopy.kind == IN_DISTRIBUTION and not d.refused
    assert not d.unlike_training and d.ood_warning == "" and d.refer == bool(d.abstains)


def test_another_clinics_image_is_classified_with_a_warning_and_the_alert(model, data_dir):
    manifest = pd.read_csv(data_dir / "ph2" / "manifest.csv")
    path = data_dir / "ph2" / manifest.loc[manifest["image_id"] == PH2_IN_BAND, "path"].iloc[0]
    d = dg.diagnose(model, path, name=path.name)
    verdict = d.not_dermoscopy
    assert verdict.kind == UNLIKE_TRAINING and verdict.score > verdict.threshold
    assert verdict.relative_score <= verdict.refuse_threshold
    assert not d.refused and d.probabilities is not None and d.unlike_training
    assert "unlike the images this model was trained on" in d.ood_warning and "does not look like" not in d.ood_warning
    assert d.refer is True, "an image unlike the training images is always referred"
    assert d.melanoma_alert == (d.melanoma_probability >= d.melanoma_threshold), "the alert still applies"
    row = batch_row(d, model.classes)
    assert row["status"] == "classified" and row["unlike_training"] is True and row["not_dermoscopy"] is False
    assert row["refer"] is True and row["warning"] == d.ood_warning


def test_a_non_dermoscopy_image_is_refused(model):
    from trainer.ood_images import build_ood_images

    d = dg.diagnose(model, build_ood_images()["document_0"], check_quality=False)
    assert d.not_dermoscopy.kind == NOT_DERMOSCOPY and d.refused and d.refusal_kind == "not_dermoscopy"
    assert "does not look like a dermoscopy image" in d.refusal and d.probabilities is None
    assert not d.unlike_training and d.ood_warning == "" and d.refer is None
