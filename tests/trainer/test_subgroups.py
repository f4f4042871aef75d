"""Subgroup metrics: grouping, small-group marking, melanoma recall per group."""
import numpy as np
import pandas as pd

from trainer.subgroups import age_band, subgroup_metrics


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
