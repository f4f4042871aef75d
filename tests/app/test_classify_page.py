"""AppTest of the Classify and Compare pages on the bundled zoo with real test images."""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from PIL import Image, ImageFilter
from streamlit.testing.v1 import AppTest

import model_zoo
from model_zoo.case_report import report_filename
from model_zoo.classes import display_name
from model_zoo.clinic import batch_report_name
from model_zoo.diagnosis import diagnose, diagnose_models

pypdf = pytest.importorskip("pypdf")

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


@pytest.fixture
def downloads(monkeypatch) -> dict[str, dict]:
    """Every st.download_button the page drew, by label: {"data", "file_name"}. The pages call st.download_button
    at run time, so the spy sees what a browser would download (a deferred callable is kept as given)."""
    seen: dict[str, dict] = {}
    original = st.download_button

    def spy(label, data, file_name=None, *args, **kwargs):
        seen[label] = {"data": data, "file_name": file_name}
        return original(label, data, file_name, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", spy)
    return seen


def _payload(entry: dict) -> bytes:
    data = entry["data"]() if isinstance(entry["data"], Callable) else entry["data"]
    return data.encode() if isinstance(data, str) else data


def _pdf_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return re.sub(r"\s+", " ", reader.pages[0].extract_text())


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _portrait() -> bytes:
    """A photo of a person (matplotlib's sample data, as trainer.ood_images uses): not a dermoscopy image."""
    from trainer.ood_images import _photos

    return _png(_photos()["grace_hopper"])


def _text(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("caption", "markdown", "info", "success", "error", "warning",
                                                "subheader") for e in getattr(at, kind))


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
    model = model_zoo.load(card["id"])
    expected = diagnose(model, data, name=name)
    assert not expected.refused, expected.refusal

    at = _app().run()
    _select_model(at, card)
    at.file_uploader(key="classify_upload").set_value((name, data, "image/jpeg")).run()
    assert not at.exception, at.exception
    headline = [s.value for s in at.subheader if s.value.startswith("Most likely")]
    assert headline == [f"Most likely: {display_name(expected.top)} ({expected.top_probability:.0%})"]
    assert any("Malignant or pre-malignant" in m.value for m in list(at.error) + list(at.info))
    if expected.prediction_set is not None:     # the conformal set, beside the top class
        shown = [m.value for m in at.markdown if "cannot rule out" in m.value]
        assert shown == ["**Diagnoses the model cannot rule out at 90% coverage:** "
                         + ", ".join(display_name(c) for c in expected.prediction_set)]
        assert "Conformal set for 90% coverage" in _text(at)
    assert len(at.get("vega_lite_chart")) == 1, "the probability bar chart"
    assert len(at.get("image")) >= 3, "the upload, the original beside the overlay, and the overlay"
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download the overlay (PNG)" in labels and "Download the case report (PDF)" in labels


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
    assert any(c.value.startswith("Red areas raised") for c in at.caption)
    at.selectbox(key="cam_colormap").set_value("cividis").run()
    assert not at.exception
    assert any(c.value.startswith("Yellow areas raised") for c in at.caption), "the caption follows the colours"


def test_case_report_button_gives_a_pdf_naming_the_class_and_the_model(default_card, data_dir, downloads):
    name, data, _ = _image_for(default_card, data_dir)
    at = _app().run()
    _select_model(at, default_card)
    at.file_uploader(key="classify_upload").set_value((name, data, "image/jpeg")).run()
    at.selectbox(key="cam_method").set_value("gradcam++").run()
    assert not at.exception, at.exception
    top = [s.value for s in at.subheader if s.value.startswith("Most likely")][0]
    report = downloads["Download the case report (PDF)"]
    assert report["file_name"] == report_filename(default_card["id"], name)
    assert callable(report["data"]), "the PDF is made only when the button is clicked"
    text = _pdf_text(_payload(report))
    assert top in text, (top, text[:400])
    assert default_card["id"] in text and default_card["sha256"] in text
    assert "Heatmap method: Grad-CAM++" in text, "the heatmap shown on the page"


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


def test_a_non_dermoscopy_photo_is_refused_with_how_it_is_decided(downloads):
    at = _app().run()
    at.file_uploader(key="classify_upload").set_value(("portrait.png", _portrait(), "image/png")).run()
    assert not at.exception, at.exception
    assert any("does not look like a dermoscopy image" in e.value for e in at.error)
    assert any(c.value.startswith("How this is decided") for c in at.caption)
    assert not [s for s in at.subheader if s.value.startswith("Most likely")], "a refused image has no answer"
    assert "Not classified" in _pdf_text(_payload(downloads["Download the case report (PDF)"]))


def test_a_blurred_image_is_refused_by_the_quality_gate(default_card, data_dir):
    name, data, _ = _image_for(default_card, data_dir)
    blurred = _png(Image.open(io.BytesIO(data)).convert("RGB").filter(ImageFilter.GaussianBlur(8)))
    at = _app().run()
    _select_model(at, default_card)
    at.file_uploader(key="classify_upload").set_value(("blurred.png", blurred, "image/png")).run()
    assert not at.exception, at.exception
    assert any("looks blurred" in e.value for e in at.error), [e.value for e in at.error]
    assert any("sharpness" in c.value for c in at.caption), "how the quality gate decides"
    assert not [s for s in at.subheader if s.value.startswith("Most likely")]


def _batch_files(card: dict, data_dir: Path) -> list[tuple[str, bytes, str]]:
    """Four test images, one unreadable file, and a zip of two images and a text file."""
    rows = [r for r in model_zoo.read_predictions(card["id"]) if r["split"] == "test"][:4]
    files = [(Path(r["path"]).name, (data_dir / card["dataset"] / r["path"]).read_bytes(), "image/jpeg") for r in rows]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        for file_name, data, _ in files[:2]:
            handle.writestr(f"batch/{file_name}", data)
        handle.writestr("batch/notes.txt", b"hello")
    return files + [("broken.png", b"nope", "image/png"), ("set.zip", archive.getvalue(), "application/zip")]


def test_batch_mode_table_csv_and_reports(default_card, data_dir, downloads):
    at = _app().run()
    assert any("up to 200 images per batch" in c.value and "50 MB" in c.value for c in at.caption), "limits stated"
    at.file_uploader(key="classify_batch").set_value(_batch_files(default_card, data_dir)).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert len(table) == 4 + 2 + 1 + 1
    assert (~table["outcome"].str.startswith("not read")).sum() == 6
    assert table.set_index("file").loc["set.zip/batch/notes.txt", "outcome"] == \
        "not read: Skipped: not an image file name."
    assert any("classified (" in c.value for c in at.caption)

    csv = downloads["Download the full table (CSV)"]
    frame = pd.read_csv(io.StringIO(_payload(csv).decode()))
    assert len(frame) == 8
    for label in default_card["classes"]:                 # every class probability, not just the top two
        assert f"p_{label}" in frame
    classified = frame[frame["status"] == "classified"]
    assert not classified.empty
    assert np.allclose(classified[[f"p_{c}" for c in default_card["classes"]]].sum(axis=1), 1, atol=1e-3)
    assert (frame["model_id"] == default_card["id"]).all()
    assert (frame["model_sha256"] == default_card["sha256"]).all()
    for column in ("not_dermoscopy", "uncertain_refer", "quality_ok", "quality_flags", "melanoma_alert"):
        assert column in frame

    assert "Download the reports (zip)" not in downloads, "reports only on request"
    at.button(key="batch_reports").click().run()
    assert not at.exception, at.exception
    with zipfile.ZipFile(io.BytesIO(_payload(downloads["Download the reports (zip)"]))) as archive:
        names = archive.namelist()
        used = table[~table["outcome"].str.startswith("not read")]["file"].tolist()
        assert sorted(names) == sorted(batch_report_name(default_card["id"], n) for n in used)
        assert any(n.endswith("_set.zip_batch_" + Path(used[0]).stem + ".pdf") for n in names), names
        first = table[table["prediction"] != ""].iloc[0]
        text = _pdf_text(archive.read(batch_report_name(default_card["id"], first["file"])))
    assert f"Most likely: {first['prediction']}" in text and default_card["id"] in text


def test_compare_page_runs_every_model(data_dir, default_card):
    name, data, _ = _image_for(default_card, data_dir)
    at = _app("pages/compare.py").run()
    at.file_uploader(key="compare_upload").set_value((name, data, "image/jpeg")).run()
    assert not at.exception
    usable = [c for c in model_zoo.list_models() if c["status"] == "ok"]
    table = at.dataframe[0].value
    assert len(table) == len(usable)
    assert table["verdict"].isin(["answers", "uncertain: refer to a clinician (abstains)"]).all(), table["verdict"]


def test_compare_refuses_a_non_dermoscopy_image_for_every_model():
    at = _app("pages/compare.py").run()
    at.file_uploader(key="compare_upload").set_value(("portrait.png", _portrait(), "image/png")).run()
    assert not at.exception, at.exception
    usable = [c for c in model_zoo.list_models() if c["status"] == "ok"]
    table = at.dataframe[0].value
    assert len(table) == len(usable)
    assert (table["verdict"] == "refused: not a dermoscopy image").all(), table["verdict"].tolist()
    assert "probability" not in table and "prediction" not in table, "no answer of any model is shown"
    errors = " ".join(e.value for e in at.error)
    assert "does not look like a dermoscopy image" in errors and "Refused by the not-dermoscopy check of" in errors
    assert any(c.value.startswith("How this is decided") for c in at.caption)
    assert not any("Grad-CAM of each model" in m.value for m in at.markdown), "no heatmap of a refused image"


@pytest.fixture(scope="module")
def confidence_extremes(default_card, data_dir) -> tuple[list[Path], Path]:
    """The default model's least confident accepted test images (lowest first) and its most confident one."""
    model = model_zoo.load(default_card["id"])
    rows = [r for r in model_zoo.read_predictions(default_card["id"]) if r["split"] == "test"]
    paths = [data_dir / default_card["dataset"] / r["path"] for r in rows]
    arrays = model_zoo.prepare_batch(paths, model.input_size)
    probabilities, features = model.predict_with_features(arrays)
    if model.ood_detector is not None:                  # images the page refuses as non-dermoscopy never get here
        keep = ~model.ood_detector.rejects(features)
        paths, probabilities = [p for p, k in zip(paths, keep) if k], probabilities[keep]
    confidence = probabilities.max(axis=1)
    assert confidence.min() < default_card["abstention"]["threshold"] <= confidence.max()
    order = np.argsort(confidence)
    return [paths[i] for i in order[:8]], paths[int(order[-1])]


def test_low_confidence_image_is_refused_as_uncertain(default_card, confidence_extremes):
    """Abstention as documented: below the card's threshold the page says 'refer to a clinician'."""
    lows, high = confidence_extremes
    for path, refused in ((lows[0], True), (high, False)):
        at = _app().run()
        _select_model(at, default_card)
        at.file_uploader(key="classify_upload").set_value((path.name, path.read_bytes(), "image/jpeg")).run()
        assert not at.exception
        said = any("refer to a clinician" in e.value for e in at.error)
        assert said == refused, (path.name, refused)


def test_compare_says_which_model_abstains(default_card, confidence_extremes):
    models = [model_zoo.load(c["id"]) for c in model_zoo.list_models() if c["status"] == "ok"]
    index = next(i for i, m in enumerate(models) if m.card["id"] == default_card["id"])
    # a low-confidence image that no model's gate refuses (one refusal refuses it for every model)
    path = next((p for p in confidence_extremes[0] if not diagnose_models(models, p)[0].refused), None)
    if path is None:
        pytest.skip("every low-confidence image was refused by some model's not-dermoscopy check")
    at = _app("pages/compare.py").run()
    at.file_uploader(key="compare_upload").set_value((path.name, path.read_bytes(), "image/jpeg")).run()
    assert not at.exception, at.exception
    assert at.dataframe[0].value["verdict"].iloc[index] == "uncertain: refer to a clinician (abstains)"


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
