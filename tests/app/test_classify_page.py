"""AppTest of the Classify and Compare pages on the bundled zoo with real test images."""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import model_zoo
from model_zoo.classes import display_name

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180


def _app(page: str = "pages/classify.py") -> AppTest:
    return AppTest.from_file(str(ROOT / page), default_timeout=TIMEOUT)


@pytest.fixture(scope="module")
def default_card() -> dict:
    cards = [c for c in model_zoo.list_models() if c["status"] == "ok"]
    assert cards, "the bundled zoo must hold at least one usable model"
    return cards[0]


def _select_model(at: AppTest, card: dict) -> None:
    radios = [r for r in at.radio if r.key == "classify_dataset"]
    if radios:
        radios[0].set_value(card["dataset"]).run()
    picker = next(s for s in at.selectbox if s.key == "classify_model")
    picker.set_value(card).run()


def _image_for(card: dict, data_dir: Path) -> tuple[str, bytes, str]:
    rows = [r for r in model_zoo.read_predictions(card["id"]) if r["split"] == "test"]
    row = rows[len(rows) // 2]
    path = data_dir / card["dataset"] / row["path"]
    return path.name, path.read_bytes(), row["true"]


def test_entrypoint_renders_default_page():
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("Classify" in t.value for t in at.title)
    assert any("not a medical device" in w.value for w in at.warning)


@pytest.mark.parametrize("which", [0, 1])
def test_upload_shows_the_models_prediction(which, data_dir):
    cards = [c for c in model_zoo.list_models() if c["status"] == "ok"]
    card = cards[which % len(cards)]
    name, data, _ = _image_for(card, data_dir)
    expected = model_zoo.load(card["id"]).predict([data])[0]
    top = card["classes"][int(np.argmax(expected))]

    at = _app().run()
    _select_model(at, card)
    at.file_uploader(key="classify_upload").set_value((name, data, "image/jpeg")).run()
    assert not at.exception, at.exception
    headline = [s.value for s in at.subheader if s.value.startswith("Most likely")]
    assert headline == [f"Most likely: {display_name(top)} ({expected.max():.0%})"]
    assert any("Malignant or pre-malignant" in m.value for m in list(at.error) + list(at.info))
    assert len(at.get("vega_lite_chart")) == 1, "the probability bar chart"
    assert len(at.get("image")) >= 3, "the upload, the original beside the overlay, and the overlay"
    assert len(at.get("download_button")) >= 1, "PNG download of the overlay"


def test_heatmap_controls_rerun_without_error(default_card, data_dir):
    name, data, _ = _image_for(default_card, data_dir)
    at = _app().run()
    _select_model(at, default_card)
    at.file_uploader(key="classify_upload").set_value((name, data, "image/jpeg")).run()
    for method in ("gradcam++", "scorecam", "gradcam"):
        at.selectbox(key="cam_method").set_value(method).run()
        assert not at.exception, (method, at.exception)
    at.slider(key="cam_opacity").set_value(0.8).run()
    assert not at.exception
    captions = [img.caption for element in at.get("image") for img in element.proto.imgs]
    assert any(c.startswith("Grad-CAM for") for c in captions), captions


@pytest.mark.parametrize("payload, message", [
    (b"this is not an image", "not an image format"),
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "damaged|not an image"),
])
def test_bad_upload_gives_clear_message(payload, message):
    at = _app().run()
    at.file_uploader(key="classify_upload").set_value(("bad.jpg", payload, "image/jpeg")).run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert re.search(message, errors), errors


def test_batch_mode_table_and_zip(default_card, data_dir):
    rows = [r for r in model_zoo.read_predictions(default_card["id"]) if r["split"] == "test"][:4]
    files = [(Path(r["path"]).name, (data_dir / default_card["dataset"] / r["path"]).read_bytes(), "image/jpeg") for r in rows]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        for file_name, data, _ in files[:2]:
            handle.writestr(f"batch/{file_name}", data)
        handle.writestr("batch/notes.txt", b"hello")
    at = _app().run()
    at.file_uploader(key="classify_batch").set_value(files + [("broken.png", b"nope", "image/png"),
                                                              ("set.zip", archive.getvalue(), "application/zip")]).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 4 + 2 + 1 + 1
    assert (table["error"] == "").sum() == 6
    assert any("6 image(s) classified" in c.value for c in at.caption)


def test_compare_page_runs_every_model(data_dir, default_card):
    name, data, _ = _image_for(default_card, data_dir)
    at = _app("pages/compare.py").run()
    at.file_uploader(key="compare_upload").set_value((name, data, "image/jpeg")).run()
    assert not at.exception
    usable = [c for c in model_zoo.list_models() if c["status"] == "ok"]
    assert len(at.dataframe[0].value) == len(usable)


def test_low_confidence_image_is_refused_as_uncertain(default_card, data_dir):
    """Abstention as documented: below the card's threshold the page says 'refer to a clinician'."""
    model = model_zoo.load(default_card["id"])
    rows = [r for r in model_zoo.read_predictions(default_card["id"]) if r["split"] == "test"]
    paths = [data_dir / default_card["dataset"] / r["path"] for r in rows]
    arrays = model_zoo.prepare_batch(paths, model.input_size)
    probabilities, features = model.predict_with_features(arrays)
    if model.ood_detector is not None:                  # images the page refuses as non-dermoscopy never get here
        keep = ~model.ood_detector.rejects(features)
        paths, probabilities = [p for p, k in zip(paths, keep) if k], probabilities[keep]
    confidence = probabilities.max(axis=1)
    threshold = default_card["abstention"]["threshold"]
    low, high = paths[int(np.argmin(confidence))], paths[int(np.argmax(confidence))]
    assert confidence.min() < threshold <= confidence.max()
    for path, refused in ((low, True), (high, False)):
        at = _app().run()
        _select_model(at, default_card)
        at.file_uploader(key="classify_upload").set_value((path.name, path.read_bytes(), "image/jpeg")).run()
        assert not at.exception
        said = any("refer to a clinician" in e.value for e in at.error)
        assert said == refused, (path.name, refused)


def test_evaluation_calibration_tab_renders(default_card):
    at = _app("pages/evaluation.py").run()
    assert not at.exception
    assert any(m.label == "Temperature T" for m in at.metric)
    assert any("abstention threshold" in c.value for c in at.caption)


def test_patient_details_change_the_reading_as_the_fused_model_says(default_card, data_dir):
    """Age, sex and site entered on the page give exactly the fused probabilities of model_zoo.metadata."""
    from model_zoo.metadata import PatientDetails

    model = model_zoo.load(default_card["id"])
    meta = model.metadata_model
    assert meta is not None, model.metadata_status
    name, data, _ = _image_for(default_card, data_dir)
    raw = model.predict_arrays(model_zoo.prepare_batch([data], model.input_size), calibrated=False)
    details = PatientDetails(70.0, "male", "face")
    fused = meta.predict(raw, [details])[0]
    top = default_card["classes"][int(np.argmax(fused))]

    at = _app().run()
    _select_model(at, default_card)
    at.file_uploader(key="classify_upload").set_value((name, data, "image/jpeg")).run()
    at.number_input(key="details_age").set_value(70).run()
    at.selectbox(key="details_sex").set_value("male").run()
    at.selectbox(key="details_site").set_value("face").run()
    assert not at.exception, at.exception
    headline = [s.value for s in at.subheader if s.value.startswith("Most likely")]
    assert headline == [f"Most likely: {display_name(top)} ({fused.max():.0%})"]
    assert any("patient details (age 70, male, face)" in i.value for i in at.info)
