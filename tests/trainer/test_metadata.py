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
from model_zoo.metadata import METADATA_FILE, PatientDetails, encode, fuse, given_fields, load_metadata_model
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
    assert encode([PatientDetails(site="face")], sites, ("site",)).tolist() == [[0.0, 1.0]]
    assert given_fields(PatientDetails(40.0, "unknown", "back")) == ("age", "site")


@pytest.mark.parametrize("card", FUSED, ids=[c["id"] for c in FUSED])
def test_an_empty_field_is_left_out_not_guessed(card):
    """Age alone uses the age-only variant: not the full model with sex and site set to HAM's 'unknown'."""
    meta, why = load_metadata_model(Path(card["folder"]), card["classes"])
    assert meta is not None, why
    assert len(meta.variants) == 7 and meta.variant_for(PatientDetails()) is None
    raw = np.random.default_rng(0).dirichlet(np.ones(len(card["classes"])), 1)
    age_only = meta.predict(raw, [PatientDetails(age=72.0)])
    variant = meta.variants["age"]
    expected = fuse(raw, variant.details_probabilities([PatientDetails(age=72.0)], meta.sites), variant.alpha,
                    variant.temperature)
    np.testing.assert_allclose(age_only, expected, atol=1e-6)
    guessed = fuse(raw, meta.full.details_probabilities([PatientDetails(72.0, "unknown", "unknown")], meta.sites),
                   meta.full.alpha, meta.full.temperature)
    assert np.abs(age_only - guessed).max() > 1e-3
    np.testing.assert_allclose(meta.predict(raw, [PatientDetails()]), raw / raw.sum(), atol=1e-6)


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
    assert meta.full.alpha == fusion["alpha"] == best["alpha"]
    manifest = pd.read_csv(data_dir / "ham10000" / "manifest.csv")
    rows = pd.DataFrame(model_zoo.read_predictions(card["id"]))
    val = rows[rows["split"] == "val"]
    raw = val[[f"p_{c}" for c in card["classes"]]].to_numpy(np.float64)
    labels = np.array([card["classes"].index(t) for t in val["true"]])
    full = meta.full            # the trainer scores every validation image with all three fields (HAM's "unknown" included)
    fused = fuse(raw, full.details_probabilities(details_of(val["image_id"], manifest), meta.sites), full.alpha,
                 full.temperature)
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
    full = data["variants"]["age+sex+site"]
    assert "face" in data["sites"] and full["card_summary"]["abstention"]["threshold"] > 0 and len(data["variants"]) == 7
    card = json.loads((folder / store.CARD_FILE).read_text())
    assert card["metadata_fusion"]["alpha"] == full["alpha"]
    refused = subprocess.run([sys.executable, "-m", "trainer", "metadata", "custom_cnn_isic_9class", "--data-dir",
                              str(data_dir)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "HAM10000 models only" in refused.stderr
