"""Quick custom models: a zip of class folders checked in memory, a linear head fitted on a HAM10000 model's LiteRT
features, published to a scratch zoo and served (prediction, heatmaps, the checks on its backbone)."""
from __future__ import annotations

import io
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import model_zoo
from model_zoo import linear_head, quick_model, store
from model_zoo.class_zip import ZipError, read_class_zip

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_helpers import BACKBONE, CLASSES, class_zip_bytes, link_backbone  # noqa: E402


@pytest.fixture(scope="module")
def zip_bytes(data_dir) -> bytes:
    return class_zip_bytes(data_dir)


@pytest.fixture
def zoo(tmp_zoo) -> Path:
    link_backbone(tmp_zoo)
    return tmp_zoo


@pytest.fixture
def fitted(zoo, zip_bytes) -> Path:
    data = quick_model.from_zip(zip_bytes, "my_clinic")
    steps = []
    folder = quick_model.fit(data, model_zoo.load(BACKBONE), "quick_clinic", "My clinic",
                             progress=lambda text, share: steps.append(share))
    assert steps == sorted(steps) and steps[-1] == 1.0
    return folder


# ---------------------------------------------------------------- the zip
def test_a_zip_of_class_folders_is_read_with_its_top_folder(zip_bytes):
    found = read_class_zip(zip_bytes)
    assert found.counts() == {label: 20 for label in sorted(CLASSES)}
    assert found.skipped == [] and found.duplicates == []


@pytest.mark.parametrize("name", ["../evil/x.jpg", "lesions/../../x.jpg", "/etc/x.jpg", "C:/x.jpg", "a\\..\\x.jpg"])
def test_entries_that_climb_out_refuse_the_zip(data_dir, name):
    with pytest.raises(ZipError, match=r"climbs out of its folder \('\.\.' or an absolute path\)"):
        read_class_zip(class_zip_bytes(data_dir, 3, extra={name: b"x"}))


def test_damaged_images_refuse_the_zip_or_are_left_out(data_dir, zip_bytes):
    jpeg = zipfile.ZipFile(io.BytesIO(zip_bytes)).read(zipfile.ZipFile(io.BytesIO(zip_bytes)).namelist()[0])
    data = class_zip_bytes(data_dir, 3, extra={"lesions/nevus/cut.jpg": jpeg[:len(jpeg) // 2],
                                               "lesions/nevus/copy.jpg": jpeg, "lesions/readme.txt": b"hi"})
    with pytest.raises(ZipError, match=r"1 image\(s\) cannot be opened .*lesions/nevus/cut.jpg"):
        read_class_zip(data)
    found = read_class_zip(data, skip_bad=True)
    assert sorted(name for name, _ in found.skipped) == ["lesions/nevus/cut.jpg", "lesions/readme.txt"]
    assert [removed for removed, _ in found.duplicates] == ["lesions/nevus/copy.jpg"]


@pytest.mark.parametrize("extra, message", [
    ({"lesions/vascular/": b""}, r"Class folder\(s\) without usable images: vascular"),
    ({"lesions/vascular/one.jpg": None}, r"fewer than 2 usable images: 'vascular' \(1\)"),
])
def test_empty_and_one_image_classes_refuse_the_zip(data_dir, zip_bytes, extra, message):
    jpeg = zipfile.ZipFile(io.BytesIO(zip_bytes)).read(zipfile.ZipFile(io.BytesIO(zip_bytes)).namelist()[-1])
    buffer = io.BytesIO(class_zip_bytes(data_dir, 3))
    with zipfile.ZipFile(buffer, "a") as archive:
        for name, content in extra.items():
            if name.endswith("/"):
                archive.writestr(zipfile.ZipInfo(name), b"")
            else:
                archive.writestr(name, jpeg)
    with pytest.raises(ZipError, match=message):
        read_class_zip(buffer.getvalue())


def test_too_many_images_and_reserved_names_are_refused(data_dir, zip_bytes):
    with pytest.raises(ZipError, match="more than 10 images"):
        read_class_zip(zip_bytes, limit=10)
    for name in ("ham10000", "isic_9class", "ph2"):
        with pytest.raises(quick_model.QuickModelError, match="built-in dataset"):
            quick_model.from_zip(zip_bytes, name)


# ---------------------------------------------------------------- fitted, published, served
def test_quick_model_is_published_with_a_card_that_says_how(fitted, zoo):
    card = json.loads((fitted / store.CARD_FILE).read_text())
    backbone = json.loads((zoo / BACKBONE / store.CARD_FILE).read_text())
    assert card["kind"] == "linear_head" and card["dataset"] == "my_clinic"
    assert card["classes"] == sorted(CLASSES) and card["input_size"] == backbone["input_size"]
    assert card["backbone"]["model_id"] == BACKBONE and card["backbone"]["sha256"] == backbone["litert"]["sha256"]
    assert card["sha256"] == store.sha256_file(fitted / linear_head.HEAD_FILE)
    assert card["trained_on"]["source"]["kind"] == "uploaded zip" and "stratified" in card["trained_on"]["split_file"]
    assert card["training"]["config"]["C"] in quick_model.C_GRID
    assert "logistic regression" in card["notes"] and BACKBONE in card["notes"]
    assert sum(card["trained_on"]["counts"].values()) == 60
    metrics = json.loads((fitted / store.METRICS_FILE).read_text())
    assert metrics["test"]["n"] == card["trained_on"]["counts"]["test"]
    assert card["headline"]["test_balanced_accuracy"] == metrics["test"]["balanced_accuracy"]
    assert 0 < card["calibration"]["temperature"] and "threshold" in card["abstention"]
    rows = pd.read_csv(fitted / store.PREDICTIONS_FILE)
    assert set(rows["split"]) == {"val", "test"} and {f"p_{c}" for c in CLASSES} <= set(rows.columns)
    assert card["training"]["seconds"] < 60                     # 60 images on 2 cores: seconds, not minutes


def test_quick_model_is_served_like_any_zoo_model(fitted, zoo, data_dir):
    cards = {c["id"]: c for c in model_zoo.list_models()}
    assert cards["quick_clinic"]["status"] == "ok"
    model = model_zoo.load("quick_clinic")
    assert model.backend == "litert" and model.classes == sorted(CLASSES)
    manifest = pd.read_csv(data_dir / "isic_9class" / "manifest.csv")
    paths = [data_dir / "isic_9class" / p for p in manifest.loc[manifest["split"] == "test", "path"].head(4)]
    probabilities = model.predict(paths)
    assert probabilities.shape == (4, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # the same numbers as the stored head on the backbone's features
    raw, features = model.predict_with_features(model_zoo.prepare_batch(paths, model.input_size), calibrated=False)
    head = linear_head.load_head(fitted, model.card)[0]
    np.testing.assert_allclose(raw, linear_head.softmax(head.logits(features)), atol=1e-5)
    for method in ("gradcam", "gradcam++", "scorecam"):
        assert model.explainer_backend(method) == ("litert", "")
        heat = model.explainer(method)(model_zoo.prepare_batch(paths[:1], model.input_size), 0)
        assert heat.shape == (1, *model.input_size) and 0.99 <= heat.max() <= 1.0
    assert model.ood_detector is not None


def test_a_changed_or_missing_backbone_makes_it_unavailable(fitted, zoo):
    card_path = fitted / store.CARD_FILE
    card = json.loads(card_path.read_text())
    card["backbone"]["sha256"] = "0" * 64
    card_path.write_text(json.dumps(card))
    status = {c["id"]: c for c in model_zoo.list_models()}["quick_clinic"]
    assert status["status"] == "unavailable" and "re-exported or changed" in status["status_reason"]
    with pytest.raises(model_zoo.ModelUnavailable, match="fit the quick model again"):
        model_zoo.load("quick_clinic")
    os.rename(zoo / BACKBONE, zoo / ".gone")
    assert "is not in this zoo" in {c["id"]: c for c in model_zoo.list_models()}["quick_clinic"]["status_reason"]


def test_an_existing_id_is_replaced_only_when_it_is_a_quick_model(fitted, zoo, zip_bytes):
    data = quick_model.from_zip(zip_bytes, "my_clinic")
    with pytest.raises(quick_model.QuickModelError, match="already has a model called 'quick_clinic'"):
        quick_model.fit(data, model_zoo.load(BACKBONE), "quick_clinic")
    with pytest.raises(quick_model.QuickModelError, match="already has a model called 'mobilenet_v2_ham10000'"):
        quick_model.fit(data, model_zoo.load(BACKBONE), BACKBONE, replace=True)
    assert quick_model.fit(data, model_zoo.load(BACKBONE), "quick_clinic", replace=True) == fitted


def test_quick_model_from_a_prepared_dataset_uses_its_saved_split(zoo, tmp_path, data_dir):
    from trainer.prepare import prepare

    source = tmp_path / "source"
    manifest = pd.read_csv(data_dir / "ham10000" / "manifest.csv")
    for label in ("mel", "nv", "bkl"):
        (source / label).mkdir(parents=True)
        for path in manifest.loc[manifest["label"] == label, "path"].head(25):
            os.symlink(data_dir / "ham10000" / path, source / label / Path(path).name)
    prepare(source, "folders", "three", tmp_path / "data")
    data = quick_model.from_prepared(tmp_path / "data", "three", max_per_class=10)
    split = pd.read_csv(tmp_path / "data" / "three" / "split.csv")
    assert {(e.image_id, e.split) for e in data.examples} <= set(zip(split["image_id"], split["split"]))
    assert max(data.counts().values()) <= 30
    folder = quick_model.fit(data, model_zoo.load(BACKBONE), "quick_three")
    card = json.loads((folder / store.CARD_FILE).read_text())
    assert card["trained_on"]["source"]["kind"] == "prepared dataset" and card["dataset"] == "three"
    assert pd.read_csv(folder / store.PREDICTIONS_FILE)["path"].str.startswith("images/").all()


def test_default_backbone_is_the_zoo_default_when_it_is_a_ham10000_export():
    cards = model_zoo.list_models()
    chosen = quick_model.default_backbone(cards, model_zoo.default_model_id(cards))
    assert chosen["id"] == model_zoo.default_model_id(cards) and chosen["dataset"] == "ham10000"
    assert quick_model.default_backbone([c for c in cards if c["dataset"] != "ham10000"]) is None
