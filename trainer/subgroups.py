"""Test metrics by subgroup, with counts and CIs: HAM10000 by sex, age band and body site; the 9-class set by
image source (HAM10000 image or older ISIC archive image), where its Train folder has a shortcut; a prepared
dataset by whichever of sex, age and body site its source records.

A single average can hide a group the model fails; small groups are marked, not dropped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from model_zoo.constants import MELANOMA_LABELS

from .metrics import _balanced_accuracy, bootstrap_ci

SMALL_GROUP = 30
AGE_BANDS = [(0, 30, "<30"), (30, 45, "30-44"), (45, 60, "45-59"), (60, 75, "60-74"), (75, 200, "75+")]
PATIENT_COLUMNS = ("sex", "age", "localization")


def age_band(age) -> str:
    if age is None or (isinstance(age, float) and np.isnan(age)):
        return "unknown"
    return next(label for low, high, label in AGE_BANDS if low <= float(age) < high)


def _group_metrics(frame: pd.DataFrame, n_bootstrap: int) -> dict:
    y, p = frame["true"].to_numpy(), frame["predicted"].to_numpy()
    labels = sorted(set(y) | set(p))
    yi = np.array([labels.index(v) for v in y])
    pi = np.array([labels.index(v) for v in p])
    mel = frame["true"].isin(MELANOMA_LABELS)
    row = {"n": int(len(frame)), "small": bool(len(frame) < SMALL_GROUP),
           "accuracy": float((y == p).mean()), "balanced_accuracy": _balanced_accuracy(yi, pi),
           "balanced_accuracy_ci95": bootstrap_ci(yi, pi, _balanced_accuracy, n_bootstrap),
           "melanomas": int(mel.sum()),
           "melanoma_recall": float((frame.loc[mel, "predicted"] == frame.loc[mel, "true"]).mean()) if mel.any() else None}
    return row


def _by_columns(test: pd.DataFrame, columns: tuple[str, ...], n_bootstrap: int) -> dict:
    """{column: {group: metrics}} with the largest groups first."""
    return {column: {str(value): _group_metrics(group, n_bootstrap)
                     for value, group in sorted(test.groupby(column), key=lambda kv: -len(kv[1]))}
            for column in columns}


def subgroup_metrics(predictions: pd.DataFrame, manifest: pd.DataFrame, n_bootstrap: int = 500) -> dict:
    """{"sex": {"male": {...}, ...}, "age_band": {...}, "localization": {...}} for the test rows."""
    manifest = manifest.reindex(columns=[*manifest.columns, *(c for c in PATIENT_COLUMNS if c not in manifest)])
    test = predictions[predictions["split"] == "test"].merge(
        manifest[["image_id", *PATIENT_COLUMNS]], on="image_id", how="left")
    test["age"] = pd.to_numeric(test["age"], errors="coerce")
    test["age_band"] = test["age"].map(age_band)
    test["sex"] = test["sex"].fillna("unknown")
    test["localization"] = test["localization"].fillna("unknown")
    return _by_columns(test, ("sex", "age_band", "localization"), n_bootstrap)


def source_subgroup_metrics(predictions: pd.DataFrame, manifest: pd.DataFrame, n_bootstrap: int = 500) -> dict:
    """{"source": {"HAM10000 image": {...}, "older ISIC archive image": {...}}} for the 9-class test rows.

    In the 9-class Train folder the source predicts the class group, so this split shows the shortcut."""
    sources = manifest[["isic_id", "ham10000_dx"]].rename(columns={"isic_id": "image_id"})
    test = predictions[predictions["split"] == "test"].merge(sources, on="image_id", how="left")
    test["source"] = np.where(test["ham10000_dx"].notna(), "HAM10000 image", "older ISIC archive image")
    return _by_columns(test, ("source",), n_bootstrap)


def subgroups_for_model(model_id: str, data_dir: Optional[str] = None, zoo_root: Optional[Path] = None,
                        n_bootstrap: int = 500) -> Optional[dict]:
    """Compute and store metrics.json["subgroups"] (None for a dataset without subgroups)."""
    import model_zoo
    from model_zoo import store

    from model_zoo import datadir

    from .data import resolve_data_dir

    card = model_zoo.get_card(model_id, zoo_root)
    directory = resolve_data_dir(data_dir)
    compute = {"ham10000": subgroup_metrics, "isic_9class": source_subgroup_metrics}.get(card["dataset"])
    if compute is None and datadir.is_prepared(directory, card["dataset"]):
        compute = subgroup_metrics
    if compute is None:
        return None
    manifest = pd.read_csv(directory / card["dataset"] / "manifest.csv", dtype={"image_id": str})
    if compute is subgroup_metrics and not any(c in manifest and manifest[c].notna().any() for c in PATIENT_COLUMNS):
        return None                 # a prepared dataset whose source records no patient details
    predictions = pd.read_csv(Path(card["folder"]) / store.PREDICTIONS_FILE)
    result = compute(predictions, manifest, n_bootstrap)
    folder = Path(card["folder"])
    store.update_metrics(folder, {"subgroups": result})
    return result
