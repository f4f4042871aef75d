"""Fit and evaluate the out-of-distribution detector of a zoo model (see model_zoo/ood.py).

The detector is fitted on training features only; its threshold comes from validation images.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from model_zoo import store
from model_zoo.ood import OOD_FILE, SubspaceResidualDetector
from model_zoo.preprocessing import prepare_image

from .data import load_images, resolve_data_dir, select

log = logging.getLogger(__name__)
PCA_DIMS = 64
ACCEPT_RATE = 0.95            # share of validation dermoscopy images the threshold lets through


def _features(model, images: np.ndarray, batch: int = 64) -> np.ndarray:
    chunks = [model.predict_with_features(images[i:i + batch].astype(np.float32))[1] for i in range(0, len(images), batch)]
    return np.concatenate(chunks)


def fit_detector(train_features: np.ndarray, val_features: np.ndarray) -> SubspaceResidualDetector:
    """Principal subspace of the training features; threshold from validation dermoscopy images."""
    from sklearn.decomposition import PCA

    dims = min(PCA_DIMS, train_features.shape[1], len(train_features) - 1)
    pca = PCA(n_components=dims, random_state=0).fit(train_features)
    detector = SubspaceResidualDetector(pca.mean_, pca.components_, threshold=np.inf)
    detector.threshold = float(np.quantile(detector.scores(val_features), ACCEPT_RATE))
    return detector


def evaluate_detector(detector: SubspaceResidualDetector, dermoscopy_features: np.ndarray,
                      ood_features: np.ndarray, ood_names: list[str]) -> dict:
    """AUROC (OOD = positive) and rejection rates at the threshold."""
    from sklearn.metrics import roc_auc_score

    inside, outside = detector.scores(dermoscopy_features), detector.scores(ood_features)
    labels = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    rejected = outside > detector.threshold
    return {
        "auroc": float(roc_auc_score(labels, np.r_[inside, outside])),
        "ood_images": int(len(outside)), "dermoscopy_images": int(len(inside)),
        "ood_rejected": float(rejected.mean()), "dermoscopy_wrongly_rejected": float((inside > detector.threshold).mean()),
        "accepted_ood": [name for name, r in zip(ood_names, rejected) if not r],
    }


def fit_ood_for_model(model_id: str, data_dir: Optional[str] = None, zoo_root: Optional[Path] = None) -> dict:
    """Fit on training features, threshold on validation, evaluate on test vs the non-dermoscopy set; store it."""
    import model_zoo

    from .ood_images import build_ood_images

    model = model_zoo.load(model_id, zoo_root)
    card, folder = model.card, Path(model.card["folder"])
    config = card.get("training", {}).get("config", {})
    directory = resolve_data_dir(data_dir)
    sets = {split: load_images(card["dataset"], select(card["dataset"], split, bool(config.get("include_label_conflicts")),
                                                       config.get("limit_per_class"), int(config.get("seed", 42)),
                                                       data_dir=directory),
                               model.input_size, directory, model.classes) for split in ("train", "val", "test")}
    features = {split: _features(model, s.images) for split, s in sets.items()}
    detector = fit_detector(features["train"], features["val"])
    others = build_ood_images()
    ood_arrays = np.stack([prepare_image(image, model.input_size) for image in others.values()])
    result = evaluate_detector(detector, features["test"], _features(model, ood_arrays), list(others))
    result.update({"method": "residual norm outside the training features' principal subspace (ViM, Wang et al. 2022)",
                   "pca_dims": int(detector.components.shape[0]), "threshold": detector.threshold,
                   "threshold_rule": f"{ACCEPT_RATE:.0%} of validation dermoscopy images accepted"})
    detector.save(folder / OOD_FILE)
    card_on_disk = store.read_json(folder / store.CARD_FILE)
    card_on_disk["ood"] = {k: result[k] for k in ("method", "pca_dims", "threshold", "threshold_rule", "auroc",
                                                   "ood_rejected", "dermoscopy_wrongly_rejected")}
    card_on_disk["ood"]["sha256"] = store.sha256_file(folder / OOD_FILE)
    store.write_json_atomic(folder / store.CARD_FILE, card_on_disk)
    metrics = store.read_json(folder / store.METRICS_FILE)
    metrics["ood"] = result
    store.write_json_atomic(folder / store.METRICS_FILE, metrics)
    log.info("%s: OOD AUROC %.3f, rejects %.0f%% of non-dermoscopy, %.0f%% of dermoscopy test", model_id,
             result["auroc"], 100 * result["ood_rejected"], 100 * result["dermoscopy_wrongly_rejected"])
    return result
