"""Patient-details fusion: the encoding, the fitted models in the zoo, and the trainer command on real metadata."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

import model_zoo
from model_zoo import store
from model_zoo.metadata import METADATA_FILE, PatientDetails, encode, fuse, load_metadata_model
from trainer.metadata import details_of

ROOT = Path(__file__).resolve().parents[2]
FUSED = [c for c in model_zoo.list_models() if (Path(c["folder"]) / METADATA_FILE).is_file()]


def test_encoding_marks_what_is_missing():
    sites = ["back", "face"]
    rows = encode([PatientDetails(50.0, "female", "face"), PatientDetails(), PatientDetails(0.0, "x", "moon")], sites)
    assert rows.shape == (3, 8)
    np.testing.assert_allclose(rows[0], [0.5, 0.25, 0, 0, 1, 0, 0, 1])
    np.testing.assert_allclose(rows[1], [0, 0, 1, 0, 0, 1, 0, 0])      # no age, sex unknown, site unknown
    np.testing.assert_allclose(rows[2], [0, 0, 0, 0, 0, 1, 0, 0])      # age 0 is an age; odd values are unknown
    assert not PatientDetails(None, "unknown", None).given and PatientDetails(age=30).given


def test_alpha_zero_is_the_image_model_alone():
    p = np.random.default_rng(0).dirichlet(np.ones(7), 20)
    np.testing.assert_allclose(fuse(p, np.full((20, 7), 1 / 7), 0.0), p, atol=1e-6)
    np.testing.assert_allclose(fuse(p, np.full((20, 7), 1 / 7), 1.3), p, atol=1e-6)   # flat details change nothing


@pytest.mark.parametrize("card", FUSED, ids=[c["id"] for c in FUSED])
def test_the_app_reproduces_the_trainers_validation_figures(card, data_dir):
    """The app-side numpy fusion, on the saved validation predictions and the manifest, gives the stored
    balanced accuracy; alpha is the validation table's best; the details alone beat chance."""
    meta, why = load_metadata_model(Path(card["folder"]), card["classes"])
    assert meta is not None, why
    fusion = model_zoo.read_metrics(card["id"])["metadata_fusion"]
    best = max(fusion["alpha_selection"], key=lambda r: (round(r["val_balanced_accuracy"], 6), -r["alpha"]))
    assert meta.alpha == fusion["alpha"] == best["alpha"]
    manifest = pd.read_csv(data_dir / "ham10000" / "manifest.csv")
    rows = pd.DataFrame(model_zoo.read_predictions(card["id"]))
    val = rows[rows["split"] == "val"]
    raw = val[[f"p_{c}" for c in card["classes"]]].to_numpy(np.float64)
    labels = np.array([card["classes"].index(t) for t in val["true"]])
    fused = meta.predict(raw, details_of(val["image_id"], manifest))
    assert balanced_accuracy_score(labels, fused.argmax(1)) == pytest.approx(fusion["validation"]["balanced_accuracy"], abs=1e-6)
    assert fusion["details_only_val_balanced_accuracy"] > 2 / len(card["classes"])


def test_trainer_command_fits_and_publishes(tmp_path, data_dir):
    zoo = tmp_path / "zoo"
    shutil.copytree(store.zoo_dir() / "mobilenet_v2_ham10000", zoo / "mobilenet_v2_ham10000")
    (zoo / "mobilenet_v2_ham10000" / METADATA_FILE).unlink(missing_ok=True)
    out = subprocess.run([sys.executable, "-m", "trainer", "metadata", "mobilenet_v2_ham10000", "--zoo-dir", str(zoo),
                          "--data-dir", str(data_dir), "--bootstrap", "50"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "chosen on validation" in out.stdout
    folder = zoo / "mobilenet_v2_ham10000"
    data = json.loads((folder / METADATA_FILE).read_text())
    assert "face" in data["sites"] and data["card_summary"]["abstention"]["threshold"] > 0
    card = json.loads((folder / store.CARD_FILE).read_text())
    assert card["metadata_fusion"]["alpha"] == data["alpha"]
    refused = subprocess.run([sys.executable, "-m", "trainer", "metadata", "custom_cnn_isic_9class", "--data-dir",
                              str(data_dir)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "HAM10000 models only" in refused.stderr
