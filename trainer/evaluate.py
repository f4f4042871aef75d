"""Evaluation: metrics.json and per-image predictions for a trained model."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from .data import ImageSet, fov_crop_of, load_images, resolve_data_dir, select
from .metrics import compute_metrics
from .predict import predict_set

log = logging.getLogger(__name__)


def evaluate_sets(model, sets: dict[str, ImageSet], classes: list[str], n_bootstrap: int = 1000):
    """Metrics per named split, and the probabilities used for them."""
    metrics, probabilities = {}, {}
    for name, image_set in sets.items():
        probabilities[name] = predict_set(model, image_set)
        metrics[name] = compute_metrics(image_set.labels, probabilities[name], classes, n_bootstrap)
    return metrics, probabilities


def card_selection(card: dict, split: str, data_dir: Optional[str | Path] = None):
    """A split's rows as the model saw them at training time (a quick run may have used a per-class limit)."""
    config = card.get("training", {}).get("config", {})
    return select(card["dataset"], split, bool(config.get("include_label_conflicts", False)),
                  config.get("limit_per_class"), int(config.get("seed", 42)), data_dir)


def evaluate_model(model_id: str, data_dir: Optional[str] = None, zoo_root: Optional[Path] = None,
                   n_bootstrap: int = 1000) -> dict:
    """Re-evaluate a zoo model on its dataset's validation and test splits; rewrites its metrics.json,
    predictions.csv and the card's headline, atomically."""
    import model_zoo
    from model_zoo import store

    from .publish import prediction_rows, write_predictions_csv

    loaded = model_zoo.load(model_id, zoo_root)
    card = loaded.card
    classes = loaded.classes
    directory = resolve_data_dir(data_dir)
    sets, rows = {}, {}
    for split, key in (("val", "validation"), ("test", "test")):
        rows[key] = card_selection(card, split, directory)
        sets[key] = load_images(card["dataset"], rows[key], loaded.input_size, directory, classes, fov_crop_of(card))
    metrics, probabilities = {}, {}
    for key, image_set in sets.items():
        probabilities[key] = loaded.predict_arrays(image_set.images.astype(np.float32), calibrated=False)
        metrics[key] = compute_metrics(image_set.labels, probabilities[key], classes, n_bootstrap)
    folder = model_zoo.zoo.model_folder(model_id, zoo_root)
    table = []
    for key, split in (("validation", "val"), ("test", "test")):
        paths = rows[key].set_index("image_id").loc[sets[key].image_ids, "path"].tolist()
        table += prediction_rows(split, sets[key].image_ids, paths, sets[key].labels, probabilities[key], classes)
    metrics = store.update_metrics(folder, metrics)        # other keys (calibration, ood, ...) kept
    tmp = folder / f".{store.PREDICTIONS_FILE}.tmp"
    write_predictions_csv(tmp, table, classes)
    tmp.replace(folder / store.PREDICTIONS_FILE)
    store.update_card(folder, {"headline": {
        "test_balanced_accuracy": metrics["test"]["balanced_accuracy"], "test_accuracy": metrics["test"]["accuracy"],
        "test_macro_f1": metrics["test"]["macro_f1"], "val_balanced_accuracy": metrics["validation"]["balanced_accuracy"],
    }})
    log.info("%s: test balanced accuracy %.4f", model_id, metrics["test"]["balanced_accuracy"])
    return metrics
