"""model_zoo.card_views, training_recipes' table row and subgroup_views: what the Model cards and Train pages show of a card."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from model_zoo import card_views, subgroup_views, training_recipes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_samples import make_card  # noqa: E402


def test_card_details_and_training_summary():
    card = make_card()
    details = {r["Field"]: r["Value"] for r in card_views.card_details(card)}
    assert details["Parameters"] == "2,269,513"
    assert details["Input size (px)"] == "192 x 192"
    assert details["Pretrained weights"].startswith("ImageNet")
    assert details["sha256 of model.keras"] == "ab" * 32
    assert details["Model file size"] == "9.1 MB"
    assert "fine-tuning" in details["Training time"]
    assert details["Hardware"] == "2 CPU cores, no GPU"
    assert details["Served by"].startswith("Keras") and "Evaluated on" not in details
    gpu = {**card, "training": {**card["training"], "hardware": "1 x GPU (NVIDIA H200); Keras jax backend",
                                "backend": "jax", "evaluated_on": "2 CPU cores, no GPU"}}
    gpu_details = {r["Field"]: r["Value"] for r in card_views.card_details(gpu)}
    assert gpu_details["Keras backend"] == "jax" and gpu_details["Evaluated on"] == "2 CPU cores, no GPU"
    exported = {r["Field"]: r["Value"] for r in card_views.card_details(
        {**card, "litert": {"file": "model.tflite", "size_bytes": 9_000_000, "max_probability_diff": 2e-6,
                            "checked_on": "16 validation images", "fmap_outputs": ["fmap_0"],
                            "head": {"file": "head.npz"}}})}
    assert exported["Served by"].startswith("LiteRT") and "2e-06" in exported["Served by"] and "Grad-CAM" in exported["Served by"]
    summary = training_recipes.training_summary(card)
    assert summary["Input size (px)"] == 192 and "Dropout" not in summary
    # a nearly empty card still renders
    assert card_views.card_details({"id": "x"}) == [{"Field": "Model id", "Value": "x"}]
    assert training_recipes.training_summary({}) == {}


def test_recipe_row_and_card_json():
    row = training_recipes.recipe_row(make_card())
    assert row["Epochs (head + main)"] == "3 + 15"
    assert row["Dataset"] == "ISIC 9-class" and row["Training time"] == "20 min 34 s"
    scratch = training_recipes.recipe_row(make_card(pretrained="none (trained from scratch)"))
    assert scratch["Epochs (head + main)"] == "15"
    ensemble = training_recipes.recipe_row(make_card(architecture="ensemble", members=[{"id": "a"}, {"id": "b"}]))
    assert ensemble["Epochs (head + main)"] == ensemble["Augmentation"] == "each of the 2 members' own"
    assert "—" not in ensemble["Learning rate (fine-tune)"]
    stored = json.loads(card_views.card_json(make_card()))
    assert "status" not in stored and "folder" not in stored and stored["id"] == "m1"


def test_weakest_subgroup_ignores_small_groups_and_rows_show_cis():
    row = {"n": 40, "small": False, "accuracy": 0.7, "balanced_accuracy": 0.6, "balanced_accuracy_ci95": [0.5, 0.7],
           "melanomas": 5, "melanoma_recall": 0.4}
    groups = {"sex": {"male": row, "female": {**row, "balanced_accuracy": 0.8}},
              "localization": {"ear": {**row, "n": 9, "small": True, "balanced_accuracy": 0.1},
                               "back": {**row, "balanced_accuracy": 0.55, "melanoma_recall": None}}}
    weakest = subgroup_views.weakest_subgroup(groups)
    assert (weakest["column"], weakest["group"], weakest["balanced_accuracy"]) == ("Body site", "back", 0.55)
    rows = subgroup_views.subgroup_rows(groups, "localization")
    assert [r["small group"] for r in rows] == ["small", ""]
    assert rows[1]["melanoma recall"] == "n/a" and "50" in rows[0]["balanced accuracy"]
    assert subgroup_views.weakest_subgroup({}) is None

