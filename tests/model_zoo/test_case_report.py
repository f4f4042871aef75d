"""model_zoo.case_report: a one-page PDF, made in memory, that says what the page said and which model said it."""
from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pandas as pd
import pytest

import model_zoo
from model_zoo import case_report as cr
from model_zoo import diagnosis as dg
from model_zoo.classes import display_name
from model_zoo.metadata import PatientDetails

pypdf = pytest.importorskip("pypdf")
ROOT = Path(__file__).resolve().parents[2]
DEFAULT = "ensemble_224_cc_ham10000"
STAMP = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def model():
    return model_zoo.load(DEFAULT)


@pytest.fixture(scope="module")
def lesion(data_dir) -> Path:
    """A HAM10000 test image that both gates pass."""
    frame = pd.read_csv(ROOT / "trainer" / "splits" / "ham10000.csv")
    return data_dir / "ham10000" / frame.loc[frame["split"] == "test", "path"].iloc[0]


def text_of(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return re.sub(r"\s+", " ", reader.pages[0].extract_text())


@pytest.fixture(scope="module")
def report(model, lesion, tmp_path_factory):
    d = dg.diagnose(model, lesion, PatientDetails(age=60, sex="female", site="back"), name=lesion.name)
    assert not d.refused
    heat = dg.heatmap(model, d, method="gradcam")
    return d, text_of(cr.case_report(d, heat, upload_name=lesion.name, timestamp=STAMP))


def test_report_names_the_class_the_model_and_its_version(report, model):
    d, text = report
    assert f"Most likely: {display_name(d.top)}" in text
    assert DEFAULT in text and model.card["sha256"][:16] in text
    assert f"Trained on: {model.card['trained_on']['date']}" in text
    assert "2026-12-03 09:30:00 UTC" in text


def test_report_carries_the_disclaimer_and_the_heatmap_method(report):
    _, text = report
    assert "Teaching and research demo — not a medical device" in text
    assert "Heatmap method: Grad-CAM" in text


def test_report_gives_thresholds_with_their_test_figures(report):
    d, text = report
    point = d.card["melanoma_operating_point"]["test"]          # the fused model's own, since details were given
    assert f"alert threshold of {point['threshold']:.1%}" in text
    assert f"sensitivity {point['sensitivity']:.0%}" in text and f"specificity {point['specificity']:.0%}" in text
    assert f"abstention threshold of {d.abstention_threshold:.0%}" in text
    assert "age 60 years; sex female; body site back" in text and "patient details" in text
    for value in d.probabilities:
        assert f"{value:.1%}" in text


def test_report_of_a_refused_image_has_no_classification(model):
    from trainer.ood_images import _photos

    d = dg.diagnose(model, _photos()["grace_hopper"], name="portrait.jpg")
    text = text_of(cr.case_report(d, timestamp=STAMP))
    assert "Not classified" in text and "does not look like a dermoscopy image" in text
    assert "Most likely" not in text and "Heatmap method" not in text
    assert "not a medical device" in text and DEFAULT in text


def test_report_is_made_in_memory(model, lesion, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pdf = cr.case_report(dg.diagnose(model, lesion))
    assert pdf.startswith(b"%PDF") and len(pdf) < 1_500_000
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("model_id, upload, expected", [
    (DEFAULT, "ISIC_0024306.jpg", f"case_report_{DEFAULT}_ISIC_0024306.pdf"),
    ("m", "batch.zip/sub dir/lesion 1.PNG", "case_report_m_lesion_1.pdf"),
    ("m", "..\\..\\evil:name?.jpeg", "case_report_m_evil_name.pdf"),
    ("m", "", "case_report_m_image.pdf"),
    ("../x", "über.jpg", "case_report_x_ber.pdf"),
])
def test_report_filename_is_safe(model_id, upload, expected):
    assert cr.report_filename(model_id, upload) == expected
