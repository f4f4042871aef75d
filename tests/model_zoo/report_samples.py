"""Sample metrics, predictions and a card shared by the tests of the modules that shape zoo files for the pages
(metric_tables, prediction_views, card_views, training_recipes, dataset_prose); not a test module."""
from __future__ import annotations

import numpy as np
import pytest

from trainer.metrics import compute_metrics

CLASSES = ["melanoma", "nevus", "vascular lesion"]


@pytest.fixture(scope="module")
def sample():
    """12 images, 3 classes: melanoma mostly missed (recall 1/4), nevus perfect, vascular 3/4."""
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    predicted = [1, 1, 1, 0, 1, 1, 1, 1, 2, 2, 2, 0]
    rng = np.random.default_rng(0)
    proba = rng.uniform(0.0, 0.2, (12, 3))
    for i, p in enumerate(predicted):
        proba[i, p] = 0.6 + 0.03 * i
    proba /= proba.sum(axis=1, keepdims=True)
    metrics = {"test": compute_metrics(y_true, proba, CLASSES, n_bootstrap=50)}
    rows = []
    for i, (t, p) in enumerate(zip(y_true, proba)):
        row = {"split": "test" if i < 12 else "val", "image_id": f"ISIC_{i:07d}", "path": f"Test/x/ISIC_{i:07d}.jpg",
               "true": CLASSES[t], "predicted": CLASSES[int(p.argmax())]}
        row.update({f"p_{c}": float(v) for c, v in zip(CLASSES, p)})
        rows.append(row)
    rows.append({"split": "val", "image_id": "ISIC_9", "path": "v.jpg", "true": "nevus", "predicted": "melanoma",
                 "p_melanoma": 0.99, "p_nevus": 0.005, "p_vascular lesion": 0.005})
    return y_true, proba, metrics, rows


def make_card(model_id="m1", dataset="isic_9class", classes=CLASSES, **extra):
    card = {
        "id": model_id, "display_name": f"Model {model_id}", "architecture": "mobilenet_v2",
        "architecture_description": "MobileNetV2", "dataset": dataset, "classes": list(classes),
        "input_size": [192, 192], "pretrained": "ImageNet (offline copy)", "parameters": 2_269_513,
        "preprocessing": {"shared_function": "prepare_image", "input": "RGB 0..255", "inside_model": "x/127.5-1"},
        "trained_on": {"split_file": "trainer/splits/isic_9class.csv", "date": "2025-01-01",
                       "counts": {"train": 1750, "val": 289, "test": 118, "skipped_unreadable": {}},
                       "label_conflicts_in_training": False},
        "training": {"seconds": 1234.5, "phases": {"head": 200.0, "finetune": 1034.5},
                     "hardware": "2 CPU cores, no GPU", "strategy": "_DefaultDistributionStrategy",
                     "config": {"architecture": "mobilenet_v2", "dataset": dataset, "model_id": model_id,
                                "display_name": f"Model {model_id} (x)", "imagenet_weights": "auto",
                                "input_size": 192, "batch_size": 32, "head_epochs": 3, "epochs": 15,
                                "learning_rate": 0.001, "fine_tune_learning_rate": 0.0003, "dropout": None,
                                "label_smoothing": 0.1, "include_label_conflicts": False, "mixed_precision": False,
                                "augment": "default", "balance": "class_weight", "seed": 42}},
        "size_bytes": 9_500_000, "sha256": "ab" * 32, "status": "ok", "status_reason": "", "folder": "/x",
    }
    card.update(extra)
    return card
