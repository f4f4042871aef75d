"""trainer.external on a tiny PH²-like folder: every figure stored under metrics.json["external"]["ph2"], through
model_zoo.diagnosis, with nothing else in metrics.json rewritten."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import model_zoo
from model_zoo import store
from model_zoo.preprocessing import load_image, prepare_image
from trainer.cli import main
from trainer.external import ExternalError, external_for_model, summary_line

MODEL = "efficientnet_lite0_ham10000"          # the smallest committed HAM10000 model


@pytest.fixture(scope="module")
def fake_ph2(data_dir, tmp_path_factory):
    """Six HAM10000 test images filed as PH² would file them, and a photo of a person that the gate refuses."""
    from trainer.ood_images import build_ood_images

    root = tmp_path_factory.mktemp("data")
    (root / "ph2" / "images").mkdir(parents=True)
    split = pd.read_csv(store.PACKAGE_DIR.parent / "trainer" / "splits" / "ham10000.csv")
    test = split[split["split"] == "test"]
    picks = pd.concat([test[test["label"] == "nv"].head(3), test[test["label"] == "mel"].head(3)])
    rows = []
    for i, row in enumerate(picks.itertuples()):
        target = f"images/IMD{i:03d}.jpg"
        shutil.copyfile(data_dir / "ham10000" / row.path, root / "ph2" / target)
        diagnosis = "melanoma" if row.label == "mel" else ("common nevus" if i % 2 else "atypical nevus")
        rows.append({"path": target, "label": row.label, "split": "test", "image_id": f"IMD{i:03d}",
                     "ph2_diagnosis": diagnosis})
    build_ood_images()["grace_hopper"].save(root / "ph2" / "images" / "IMD900.png")
    rows.append({"path": "images/IMD900.png", "label": "nv", "split": "test", "image_id": "IMD900",
                 "ph2_diagnosis": "common nevus"})
    pd.DataFrame(rows).to_csv(root / "ph2" / "manifest.csv", index=False)
    return root


@pytest.fixture
def zoo_copy(tmp_zoo):
    shutil.copytree(store.PACKAGE_DIR / "models" / MODEL, tmp_zoo / MODEL)
    return tmp_zoo


def test_external_figures_are_stored_and_nothing_else_changes(fake_ph2, zoo_copy):
    before = store.read_json(zoo_copy / MODEL / store.METRICS_FILE)
    result = external_for_model(MODEL, "ph2", fake_ph2, zoo_copy, n_bootstrap=50)
    after = store.read_json(zoo_copy / MODEL / store.METRICS_FILE)
    assert after["external"]["ph2"] == json.loads(json.dumps(result))
    assert {k: v for k, v in after.items() if k != "external"} == {k: v for k, v in before.items() if k != "external"}
    others = {k: v for k, v in (before.get("external") or {}).items() if k != "ph2"}
    assert {k: v for k, v in after["external"].items() if k != "ph2"} == others, "no other key is rewritten"
    assert result["n"] == 7 and result["counts"] == {"atypical nevus": 2, "common nevus": 2, "melanoma": 3}

    # the figures gates aside equal the model's own predictions
    model = model_zoo.load(MODEL, zoo_copy)
    manifest = pd.read_csv(fake_ph2 / "ph2" / "manifest.csv")
    arrays = np.stack([prepare_image(load_image(fake_ph2 / "ph2" / p), model.input_size) for p in manifest["path"]])
    p_mel = model.predict_arrays(arrays)[:, model.classes.index("mel")]
    positive = (manifest["label"] == "mel").to_numpy()
    every = result["all_images"]
    assert every["melanoma_auroc"] == pytest.approx(roc_auc_score(positive, p_mel))
    low, high = every["melanoma_auroc_ci95"]
    assert 0.0 <= low <= high <= 1.0
    threshold = model.card["melanoma_operating_point"]["test"]["threshold"]
    alert = every["alert"]
    assert alert["threshold"] == threshold and alert["caught"] == int((p_mel[positive] >= threshold).sum())
    assert alert["sensitivity"] == pytest.approx(np.mean(p_mel[positive] >= threshold))
    assert alert["specificity"] == pytest.approx(np.mean(p_mel[~positive] < threshold))

    # the gate: the photo is refused as not dermoscopy, and the served figures leave it out
    gate = result["gate"]
    assert gate["by_group"]["common nevus"]["not_dermoscopy"] >= 1
    assert sum(gate["overall"][k] for k in ("quality", "not_dermoscopy", "unlike_training", "in_distribution")) == 7
    assert gate["refused_not_dermoscopy"] == pytest.approx(gate["overall"]["not_dermoscopy"] / 7)
    refused = gate["overall"]["not_dermoscopy"] + gate["overall"]["quality"]
    assert result["as_served"]["n"] == 7 - refused == result["abstention"]["classified"]
    assert 0.0 <= result["abstention"]["coverage"] <= 1.0
    assert result["backend"] == "litert" and result["fov_crop"] is False
    assert "AUROC" in summary_line(MODEL, result)


def test_command_line(fake_ph2, zoo_copy, capsys):
    args = ["external", MODEL, "--data-dir", str(fake_ph2), "--zoo-dir", str(zoo_copy), "--bootstrap", "20"]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith(f"{MODEL}: AUROC")
    assert main(args + ["--fov-crop"]) == 0
    assert "ph2+fov_crop" in store.read_json(zoo_copy / MODEL / store.METRICS_FILE)["external"]
    assert main(["external", MODEL, "--all", "--zoo-dir", str(zoo_copy)]) == 2


def test_a_model_without_melanoma_and_nevus_is_refused(fake_ph2, tmp_zoo):
    shutil.copytree(store.PACKAGE_DIR / "models" / "custom_cnn_isic_9class", tmp_zoo / "custom_cnn_isic_9class")
    with pytest.raises(ExternalError, match="HAM10000 classes"):
        external_for_model("custom_cnn_isic_9class", "ph2", fake_ph2, tmp_zoo, n_bootstrap=10)
