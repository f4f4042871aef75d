"""Measure test-time augmentation (8 flips/rotations averaged) against plain prediction.

Validation decides whether TTA helps (metrics.json["tta_validation"]); test reports it once (metrics.json["tta"]).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from model_zoo import store
from model_zoo.calibration import apply_temperature, expected_calibration_error, negative_log_likelihood

from .data import fov_crop_of, load_images, resolve_data_dir
from .evaluate import card_selection
from .metrics import compute_metrics


def measure_tta(model_id: str, data_dir: Optional[str] = None, zoo_root: Optional[Path] = None,
                n_bootstrap: int = 1000) -> dict:
    """Balanced accuracy (with CI), accuracy, macro-F1, ECE and NLL on test, with and without TTA;
    stored in metrics.json["tta"]."""
    import model_zoo

    model = model_zoo.load(model_id, zoo_root)
    directory = resolve_data_dir(data_dir)
    sets = {split: load_images(model.card["dataset"], card_selection(model.card, split, directory), model.input_size,
                               directory, model.classes, fov_crop_of(model.card)) for split in ("val", "test")}
    validation = {}
    for name, tta in (("plain", False), ("tta", True)):
        raw = model.predict_arrays(sets["val"].images.astype(np.float32), calibrated=False, tta=tta)
        full = compute_metrics(sets["val"].labels, raw, model.classes, 50)
        validation[name] = {key: full[key] for key in ("accuracy", "balanced_accuracy", "macro_f1")}
    test = sets["test"]
    images = test.images.astype(np.float32)
    result = {}
    for name, tta in (("plain", False), ("tta", True)):
        raw = model.predict_arrays(images, calibrated=False, tta=tta)
        scaled = apply_temperature(raw, model.temperature)
        full = compute_metrics(test.labels, raw, model.classes, n_bootstrap)
        result[name] = {key: full[key] for key in ("accuracy", "balanced_accuracy", "macro_f1", "ci95")}
        result[name].update({"ece": expected_calibration_error(scaled, test.labels),
                             "nll": negative_log_likelihood(scaled, test.labels),
                             "ece_uncalibrated": expected_calibration_error(raw, test.labels)})
    folder = Path(model.card["folder"])
    store.update_metrics(folder, {"tta": result, "tta_validation": validation})
    return result
