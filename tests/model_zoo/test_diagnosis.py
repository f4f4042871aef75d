"""model_zoo.diagnosis: one path for every page, with the same gates for single images, batches and Compare."""
from __future__ import annotations

import copy
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import ImageFilter

import model_zoo
from model_zoo import diagnosis as dg
from model_zoo.batch_export import batch_csv, batch_row, batch_table
from model_zoo.diagnosis_result import Diagnosis, ItemError
from model_zoo.metadata import PatientDetails
from model_zoo.preprocessing import load_image

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = "ensemble_224_cc_ham10000"          # HAM10000, with OOD detector and patient-details model
OTHER = "efficientnet_lite0_ham10000"


@pytest.fixture(scope="module")
def model():
    return model_zoo.load(DEFAULT)


@pytest.fixture(scope="module")
def ham_images(data_dir) -> list[Path]:
    """Eight HAM10000 test images spread over the split."""
    frame = pd.read_csv(ROOT / "trainer" / "splits" / "ham10000.csv")
    paths = [data_dir / "ham10000" / p for p in frame.loc[frame["split"] == "test", "path"]]
    return paths[:: len(paths) // 8][:8]


@pytest.fixture(scope="module")
def photo():
    """A photo of a person (matplotlib's sample image): not dermoscopy."""
    from trainer.ood_images import _photos

    return _photos()["grace_hopper"]


@pytest.fixture(scope="module")
def singles(model, ham_images) -> list[Diagnosis]:
    return [dg.diagnose(model, path, name=path.name) for path in ham_images]


def test_probabilities_equal_the_models_predict(model, ham_images, singles):
    classified = [(p, d) for p, d in zip(ham_images, singles) if not d.refused]
    assert len(classified) >= 6
    expected = model.predict([p for p, _ in classified])
    for (_, d), row in zip(classified, expected):
        np.testing.assert_allclose(d.probabilities, row, atol=1e-6)
        np.testing.assert_allclose(d.image_probabilities, row, atol=1e-6)
        assert d.top == model.classes[int(row.argmax())] and d.top_probability == pytest.approx(row.max())
        assert d.runner_up == model.classes[int(np.argsort(-row)[1])]


def test_verdicts_follow_the_card(model, singles):
    card = model.card
    for d in (s for s in singles if not s.refused):
        assert d.model_id == DEFAULT and d.model_sha256 == card["sha256"]
        assert d.not_dermoscopy.checked and d.not_dermoscopy.kind != "not_dermoscopy"
        assert d.unlike_training == (d.not_dermoscopy.score > d.not_dermoscopy.threshold)
        assert d.quality is not None and d.quality.usable
        assert d.abstention_threshold == card["abstention"]["threshold"]
        assert d.abstains == (d.top_probability < card["abstention"]["threshold"])
        threshold = card["melanoma_operating_point"]["test"]["threshold"]
        assert d.melanoma_threshold == threshold
        assert d.melanoma_alert == (d.melanoma_probability >= threshold)
        assert d.melanoma_probability == pytest.approx(d.probabilities[model.classes.index("mel")])


def test_a_photo_is_refused_with_no_classification(model, photo):
    d = dg.diagnose(model, photo, name="portrait.jpg")
    assert d.refused and d.refusal_kind == "not_dermoscopy"
    assert "does not look like a dermoscopy image" in d.refusal
    assert d.not_dermoscopy.rejected and d.not_dermoscopy.score > d.not_dermoscopy.threshold
    assert "On test, this check refused" in d.not_dermoscopy.how_decided
    assert d.probabilities is None and d.top is None and d.abstains is None and d.melanoma_alert is None
    row = batch_row(d, model.classes)
    assert row["status"] == "refused" and row["not_dermoscopy"] is True and row["prediction"] == ""
    assert all(row[f"p_{c}"] is None for c in model.classes)


def test_an_unusable_image_is_refused_for_quality(model, ham_images):
    blurred = load_image(ham_images[0]).filter(ImageFilter.GaussianBlur(5))
    d = dg.diagnose(model, blurred)
    assert d.refusal_kind == "quality" and "blurred" in d.quality.flags and "blurred" in d.refusal
    assert d.probabilities is None
    if d.not_dermoscopy.rejected:                   # blur this strong also makes the features look foreign
        assert d.refusal_reasons == ("quality", "not_dermoscopy") and "does not look like" in d.refusal
    skipped = dg.diagnose(model, blurred, check_quality=False)
    assert skipped.quality is None and "switched off" in skipped.quality_status


def test_detector_status_is_reported_when_there_is_none(model, ham_images):
    class NoDetector:
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            return getattr(self._inner, name)

        ood_detector = None
        ood_status = "no out-of-distribution detector was fitted for this model"

    d = dg.diagnose(NoDetector(model), ham_images[1])
    assert not d.not_dermoscopy.checked and not d.refused
    assert d.not_dermoscopy.note == f"Note: {NoDetector.ood_status}, so non-dermoscopy images are not refused."
    assert batch_row(d, model.classes)["not_dermoscopy"] is None


def test_patient_details_are_fused_with_the_variants_thresholds(model, ham_images):
    details = PatientDetails(age=65, sex="male", site="back")
    d = dg.diagnose(model, ham_images[2], details)
    raw = model.predict([ham_images[2]], calibrated=False)
    np.testing.assert_allclose(d.probabilities, model.metadata_model.predict(raw, [details])[0], atol=1e-5)
    np.testing.assert_allclose(d.image_probabilities, model.calibrate(raw)[0], atol=1e-6)
    assert d.details_variant == "age+sex+site" and "patient details (age 65, male, back)" in d.details_note
    summary = model.metadata_model.full.record["card_summary"]
    assert d.abstention_threshold == summary["abstention"]["threshold"] != model.card["abstention"]["threshold"]
    assert d.metrics is dg.model_metrics(model)["metadata_fusion"]
    only_age = dg.diagnose(model, ham_images[2], PatientDetails(age=65))
    assert only_age.details_variant == "age"


def test_batch_equals_single(model, ham_images, singles):
    items = [(p.name, p.read_bytes()) for p in ham_images[:4]] + [("broken.jpg", b"not an image")]
    items += [("skipped.txt", None, "Skipped: not an image file name.")] + [(p.name, p) for p in ham_images[4:]]
    results = dg.diagnose_batch(model, items, chunk=3)
    assert [r.name for r in results] == [i[0] for i in items]
    errors = [r for r in results if isinstance(r, ItemError)]
    assert [e.name for e in errors] == ["broken.jpg", "skipped.txt"] and "Skipped" in errors[1].message
    batch = [r for r in results if isinstance(r, Diagnosis)]
    for b, s in zip(batch, singles):
        assert b.name == s.name and b.refusal_kind == s.refusal_kind and b.abstains == s.abstains
        assert b.melanoma_alert == s.melanoma_alert and b.prediction_set == s.prediction_set
        assert b.not_dermoscopy.score == pytest.approx(s.not_dermoscopy.score, abs=1e-4)
        if s.probabilities is not None:
            np.testing.assert_allclose(b.probabilities, s.probabilities, atol=1e-6)
        assert b.image is None and b.array is None            # a batch keeps no pixels


def test_batch_table_carries_every_class_the_model_and_the_flags(model, ham_images, photo):
    results = dg.diagnose_batch(model, [(p.name, p) for p in ham_images[:3]] + [("photo.png", photo),
                                                                               ("bad.png", b"")])
    rows = batch_table(results)
    assert len({tuple(r) for r in rows}) == 1                 # one set of columns for every row
    for column in ("model_id", "model_sha256", "not_dermoscopy", "uncertain_refer", "quality_ok", "melanoma_alert",
                   *(f"p_{c}" for c in model.classes)):
        assert column in rows[0]
    assert all(r["model_id"] == DEFAULT and r["model_sha256"] == model.card["sha256"] for r in rows)
    classified = [r for r in rows if r["status"] == "classified"]
    assert classified and all(abs(sum(r[f"p_{c}"] for c in model.classes) - 1) < 1e-3 for r in classified)
    assert [r["status"] for r in rows[3:]] == ["refused", "error"]
    parsed = list(csv.DictReader(io.StringIO(batch_csv(results))))
    assert len(parsed) == 5 and parsed[4]["reason"] == "The file is empty."


def test_compare_refuses_for_every_model_when_one_detector_refuses(model, ham_images, photo):
    other = model_zoo.load(OTHER)

    class StrictDetector:
        """The other model, with a detector that refuses everything."""

        def __init__(self, inner):
            self._inner = inner
            self.ood_detector = copy.copy(inner.ood_detector)
            self.ood_detector.threshold = -1.0
            self.ood_detector.refuse_threshold = -1.0     # the refusal score too (see model_zoo.ood)

        def __getattr__(self, name):
            return getattr(self._inner, name)

    both = dg.diagnose_models([model, StrictDetector(other)], ham_images[3])
    assert [d.refused for d in both] == [True, True]
    assert both[0].refused_elsewhere == (OTHER,) and not both[0].not_dermoscopy.rejected
    assert OTHER in both[0].refusal and both[0].probabilities is None
    agreed = dg.diagnose_models([model, other], ham_images[3])
    for m, d in zip((model, other), agreed):
        assert not d.refused
        np.testing.assert_allclose(d.probabilities, dg.diagnose(m, ham_images[3]).probabilities, atol=1e-6)
    assert all(d.refused for d in dg.diagnose_models([model, other], photo))


def test_heatmap_of_a_diagnosis(model, singles):
    d = next(s for s in singles if not s.refused)
    heat = dg.heatmap(model, d)
    assert heat.values.shape == model.input_size and heat.target == d.top
    assert heat.method == "gradcam" and heat.label == "Grad-CAM"
    assert 0.0 <= heat.values.min() and heat.values.max() <= 1.0 and heat.values.max() > 0.5
    again = dg.heatmap(model, d.image, "nv", explainer=model.explainer("gradcam"))
    assert again.target == "nv" and again.values.shape == model.input_size


def test_conformal_set_when_the_module_and_the_fit_exist(model, ham_images):
    conformal = pytest.importorskip("model_zoo.conformal")
    metrics = {**dg.model_metrics(model), "clinical": {"conformal": {"qhat": 0.8, "target_coverage": 0.9,
                                                                     "non_empty": True}}}
    d = dg.diagnose(model, ham_images[0], metrics=metrics)
    assert d.prediction_set == conformal.prediction_set(d.probabilities, metrics, model.classes)
    assert d.prediction_set[0] == d.top and "90% coverage" in d.prediction_set_note
    assert dg.diagnose(model, ham_images[0], metrics={"validation": {}}).prediction_set is None


def test_no_conformal_module_leaves_the_set_out(model, ham_images, monkeypatch):
    monkeypatch.setitem(sys.modules, "model_zoo.conformal", None)          # import fails as if absent
    d = dg.diagnose(model, ham_images[0])
    assert d.prediction_set is None and d.prediction_set_note == "" and not d.refused


def test_test_time_augmentation_matches_the_models(model, ham_images):
    from model_zoo.preprocessing import prepare_image

    d = dg.diagnose(model, ham_images[0], tta=True)
    array = prepare_image(load_image(ham_images[0]), model.input_size)[None]
    np.testing.assert_allclose(d.probabilities, model.predict_arrays(array, tta=True)[0], atol=1e-6)
    assert d.tta


def test_unreadable_upload_raises_image_error(model):
    with pytest.raises(model_zoo.ImageError):
        dg.diagnose(model, b"GIF89a broken")


FRESH_PROCESS = """
import sys
import model_zoo
from model_zoo import case_report, diagnosis
model = model_zoo.load(sys.argv[1])
d = diagnosis.diagnose(model, sys.argv[2])
pdf = case_report.case_report(d, diagnosis.heatmap(model, d))
assert pdf.startswith(b"%PDF") and not d.refused
loaded = sorted(name for name in ("tensorflow", "keras") if name in sys.modules)
print("loaded:", loaded)
"""


def test_the_app_path_never_imports_tensorflow(ham_images):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, DEFAULT, str(ham_images[0])], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("loaded: []")
