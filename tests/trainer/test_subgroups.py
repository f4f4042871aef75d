"""Subgroup metrics: grouping, small-group marking, melanoma recall per group."""
import numpy as np
import pandas as pd

from trainer.subgroups import age_band, source_subgroup_metrics, subgroup_metrics


def test_age_bands():
    assert [age_band(a) for a in (5, 30, 44.9, 45, 80, np.nan)] == ["<30", "30-44", "30-44", "45-59", "75+", "unknown"]


def test_subgroup_metrics_by_hand():
    predictions = pd.DataFrame({
        "split": ["test"] * 6 + ["val"],
        "image_id": [f"i{k}" for k in range(7)],
        "true": ["mel", "mel", "nv", "nv", "mel", "nv", "nv"],
        "predicted": ["mel", "nv", "nv", "nv", "mel", "mel", "nv"],
    })
    manifest = pd.DataFrame({"image_id": [f"i{k}" for k in range(7)],
                             "sex": ["male", "male", "male", "female", "female", "female", "male"],
                             "age": [50, 50, 20, 70, 70, np.nan, 40], "localization": ["back"] * 7})
    result = subgroup_metrics(predictions, manifest, n_bootstrap=20)
    male, female = result["sex"]["male"], result["sex"]["female"]
    assert male["n"] == 3 and female["n"] == 3 and male["small"]
    assert male["melanoma_recall"] == 0.5 and female["melanoma_recall"] == 1.0
    assert male["accuracy"] == 2 / 3
    assert result["age_band"]["unknown"]["n"] == 1
    assert "val" not in str(result)


def test_source_subgroups_split_the_9class_test_rows_by_image_source():
    predictions = pd.DataFrame({
        "split": ["test"] * 4 + ["val"],
        "image_id": ["ISIC_0024400", "ISIC_0024500", "ISIC_0000001", "ISIC_0000002", "ISIC_0024600"],
        "true": ["dermatofibroma", "melanoma", "melanoma", "nevus", "nevus"],
        "predicted": ["dermatofibroma", "melanoma", "nevus", "nevus", "melanoma"],
    })
    manifest = pd.DataFrame({"isic_id": ["ISIC_0024400", "ISIC_0024500", "ISIC_0000001", "ISIC_0000002", "ISIC_0024600"],
                             "ham10000_dx": ["df", "mel", np.nan, np.nan, "nv"]})
    result = source_subgroup_metrics(predictions, manifest, n_bootstrap=20)
    ham, older = result["source"]["HAM10000 image"], result["source"]["older ISIC archive image"]
    assert ham["n"] == 2 and ham["accuracy"] == 1.0 and ham["melanoma_recall"] == 1.0
    assert older["n"] == 2 and older["accuracy"] == 0.5 and older["melanoma_recall"] == 0.0
    assert list(result) == ["source"]
