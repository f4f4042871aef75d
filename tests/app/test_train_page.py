"""AppTest of the Train page: off unless allowed; a quick custom model from an uploaded zip, published and then
used by Classify; a refused zip; a background run with its progress, log tail and cancel button."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import model_zoo
from model_zoo import jobs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model_zoo"))
from training_helpers import BACKBONE, FAKE_TRAINER, class_zip_bytes, link_backbone  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180


def _page(name: str = "train") -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT)


def _texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "info", "caption", "error", "success", "warning", "code")
             for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def allowed(tmp_zoo, tmp_path, monkeypatch):
    """Training allowed, a scratch zoo holding the backbone, scratch runs and data folders."""
    import streamlit as st

    link_backbone(tmp_zoo)
    st.cache_data.clear()                    # the zoo listing of an earlier test (app_cache.list_cards)
    st.cache_resource.clear()
    monkeypatch.setenv(jobs.TRAINING_ENV, "1")
    monkeypatch.setenv(jobs.RUNS_ENV, str(tmp_path / "runs"))
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("DERMLAB_DATA_DIR", str(tmp_path / "data"))
    return tmp_zoo


def test_training_is_off_by_default_and_the_page_says_how_to_train_locally(monkeypatch):
    monkeypatch.delenv(jobs.TRAINING_ENV, raising=False)
    at = _page().run()
    assert not at.exception
    text = _texts(at)
    assert "Training is **off** on this copy" in text and "DERMLAB_ALLOW_TRAINING=1" in text
    assert "python -m trainer prepare" in text
    assert not [b for b in at.button if b.key == "quick_fit"] and not at.file_uploader


def test_a_quick_custom_model_from_a_zip_is_fitted_published_and_used_by_classify(allowed, data_dir):
    at = _page().run()
    at.radio(key="quick_source").set_value("A zip with one folder per class").run()
    at.file_uploader(key="quick_zip").set_value(("My Clinic.zip", class_zip_bytes(data_dir, 20),
                                                 "application/zip")).run()
    assert at.text_input(key="quick_zip_name").value == "my_clinic"
    assert "60 images, 3 classes (dermatofibroma, melanoma, nevus)" in _texts(at)
    at.button(key="quick_fit").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Published **Quick model on my_clinic** (`quick_my_clinic`)" in at.success[0].value
    card = model_zoo.get_card("quick_my_clinic")
    assert card["status"] == "ok" and card["kind"] == "linear_head" and card["backbone"]["model_id"] == BACKBONE

    classify = _page("classify").run()
    classify.radio(key="classify_dataset").set_value("my_clinic").run()
    image = data_dir / "isic_9class" / "Test" / "nevus"
    path = sorted(image.iterdir())[0]
    classify.file_uploader(key="classify_upload").set_value((path.name, path.read_bytes(), "image/jpeg")).run()
    assert not classify.exception
    shown = _texts(classify)
    assert any(name in shown for name in ("Melanoma", "Dermatofibroma", "Melanocytic nevus"))


def test_a_zip_that_climbs_out_is_refused_with_its_reason(allowed, data_dir):
    at = _page().run()
    at.radio(key="quick_source").set_value("A zip with one folder per class").run()
    data = class_zip_bytes(data_dir, 3, extra={"../../etc/passwd.jpg": b"x"})
    at.file_uploader(key="quick_zip").set_value(("evil.zip", data, "application/zip")).run()
    assert "climbs out of its folder" in at.error[0].value
    assert not [b for b in at.button if b.key == "quick_fit"]


def test_a_background_run_shows_progress_and_its_log_and_can_be_cancelled(allowed, tmp_path, monkeypatch):
    folder = tmp_path / "data" / "my_set"
    folder.mkdir()
    (folder / "dataset.json").write_text(json.dumps({"name": "my_set"}))
    script = FAKE_TRAINER.format(epochs=1000, pause=0.2, code=0)
    monkeypatch.setattr(jobs, "train_command", lambda arch, dataset, model_id, run_dir, *rest:
                        [sys.executable, "-c", script, str(run_dir)])
    at = _page().run()
    assert "incomplete" in at.error[0].value             # the quick model's look at the same (fake) dataset
    at.selectbox(key="run_architecture").set_value("custom_cnn")
    at.number_input(key="run_epochs").set_value(200)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception
    assert "Started `custom_cnn_my_set-" in at.success[0].value
    job = jobs.list_jobs()[0]
    deadline = time.time() + 30
    while job.progress()[0] < 2 and time.time() < deadline:
        time.sleep(0.2)
        job = jobs.load(job.folder)
    at = _page().run()
    text = _texts(at)
    assert f"**{job.id}** — custom_cnn on my_set: **running**" in text and "epoch 2" in text
    assert at.get("progress")
    at.button(key=f"cancel_{job.id}").click().run()
    assert jobs.load(job.folder).status == "cancelled"
    assert "**cancelled**" in _texts(at)
