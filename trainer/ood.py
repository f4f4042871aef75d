"""Fit and evaluate the out-of-distribution checks of a zoo model (see model_zoo/ood.py).

The subspace is fitted on training features only; both thresholds come from validation images alone:

- `threshold` (residual norm): ACCEPT_RATE of validation dermoscopy passes; above it, "unlike the training
  images" (classified, with a warning);
- `refuse_threshold` (relative residual): REFUSE_RATE of validation dermoscopy passes; above it, "not a
  dermoscopy image" (refused).

The relative residual was chosen among five candidate scores on half of the non-dermoscopy set (the
even-numbered images of trainer/ood_images.py); the other half is held out and reported separately
(benchmarks/ood_refusal_scores.py, docs/experiments.md). It does not suit every network: where it refuses
less than MIN_FIT_REFUSAL of that fit half (the small from-scratch CNN), the model keeps the single residual
threshold, above which an image is refused as before. PH² is never used here.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from model_zoo import store
from model_zoo.ood import KINDS, NOT_DERMOSCOPY, OOD_FILE, UNLIKE_TRAINING, SubspaceResidualDetector
from model_zoo.preprocessing import prepare_image

from .data import fov_crop_of, load_images, resolve_data_dir, select

log = logging.getLogger(__name__)
PCA_DIMS = 64
ACCEPT_RATE = 0.95            # share of validation dermoscopy images the residual threshold lets through unflagged
REFUSE_RATE = 0.995           # share of validation dermoscopy images the refusal threshold lets through
MIN_FIT_REFUSAL = 0.9         # the relative score must refuse this share of the non-dermoscopy fit half to be used
METHOD = ("residual outside the training features' principal subspace (ViM, Wang et al. 2022): its norm flags "
          "images unlike the training images; its share of the feature norm refuses non-dermoscopy images")
CARD_KEYS = ("method", "pca_dims", "threshold", "threshold_rule", "refuse_threshold", "refuse_rule", "auroc",
             "ood_rejected", "ood_rejected_held_out", "ood_flagged", "dermoscopy_wrongly_rejected",
             "dermoscopy_unlike")


def _features(model, images: np.ndarray, batch: int = 64) -> np.ndarray:
    chunks = [model.predict_with_features(images[i:i + batch].astype(np.float32))[1] for i in range(0, len(images), batch)]
    return np.concatenate(chunks)


def fit_detector(train_features: np.ndarray, val_features: np.ndarray) -> SubspaceResidualDetector:
    """Principal subspace of the training features; both thresholds from validation dermoscopy images."""
    from sklearn.decomposition import PCA

    dims = min(PCA_DIMS, train_features.shape[1], len(train_features) - 1)
    pca = PCA(n_components=dims, random_state=0).fit(train_features)
    detector = SubspaceResidualDetector(pca.mean_, pca.components_, threshold=np.inf)
    detector.threshold = float(np.quantile(detector.scores(val_features), ACCEPT_RATE))
    detector.refuse_threshold = float(np.quantile(detector.relative_scores(val_features), REFUSE_RATE))
    return detector


def keep_refusal_if_it_works(detector: SubspaceResidualDetector, ood_features: np.ndarray,
                             ood_names: Sequence[str]) -> str:
    """Drop the relative-residual refusal (back to one threshold) when it refuses less than MIN_FIT_REFUSAL of the
    non-dermoscopy fit half; returns the rule in words."""
    fit = ~held_out(ood_names)
    refused = float(np.mean(detector.relative_scores(ood_features[fit]) > detector.refuse_threshold))
    if refused >= MIN_FIT_REFUSAL:
        return f"{REFUSE_RATE:.1%} of validation dermoscopy images not refused"
    detector.refuse_threshold = None
    return (f"not used: the relative residual refused only {refused:.0%} of the non-dermoscopy fit half (under "
            f"{MIN_FIT_REFUSAL:.0%}), so every image above the residual threshold is refused, as before")


def held_out(names: Sequence[str]) -> np.ndarray:
    """Mask of the non-dermoscopy images held out from the choice of score (the odd-numbered ones)."""
    return np.arange(len(names)) % 2 == 1


def _shares(kinds: Sequence[str]) -> dict:
    return {kind: float(np.mean([k == kind for k in kinds])) if len(kinds) else 0.0 for kind in KINDS}


def evaluate_detector(detector: SubspaceResidualDetector, dermoscopy_features: np.ndarray,
                      ood_features: np.ndarray, ood_names: list[str],
                      dermoscopy_labels: Optional[Sequence[str]] = None) -> dict:
    """AUROC of the residual (OOD = positive) and what each verdict gets: test dermoscopy (by class when labels
    are given) and the non-dermoscopy set (all of it and its held-out half)."""
    from sklearn.metrics import roc_auc_score

    inside, outside = detector.scores(dermoscopy_features), detector.scores(ood_features)
    labels = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    test_kinds, ood_kinds = detector.kinds(dermoscopy_features), detector.kinds(ood_features)
    refused = np.array([k == NOT_DERMOSCOPY for k in ood_kinds])
    result = {
        "auroc": float(roc_auc_score(labels, np.r_[inside, outside])),
        "auroc_relative": float(roc_auc_score(labels, np.r_[detector.relative_scores(dermoscopy_features),
                                                            detector.relative_scores(ood_features)])),
        "ood_images": int(len(outside)), "dermoscopy_images": int(len(inside)),
        "ood_rejected": float(refused.mean()),
        "ood_rejected_held_out": float(refused[held_out(ood_names)].mean()),
        "ood_held_out_images": int(held_out(ood_names).sum()),
        "ood_flagged": float(np.mean([k != "in_distribution" for k in ood_kinds])),
        "dermoscopy_wrongly_rejected": _shares(test_kinds)[NOT_DERMOSCOPY],
        "dermoscopy_unlike": _shares(test_kinds)[UNLIKE_TRAINING],
        "accepted_ood": [name for name, r in zip(ood_names, refused) if not r],
        "ood_kinds": dict(zip(ood_names, ood_kinds)),
    }
    if dermoscopy_labels is not None:
        result["test_by_class"] = {label: {kind: int(sum(1 for k, y in zip(test_kinds, dermoscopy_labels)
                                                         if y == label and k == kind)) for kind in KINDS}
                                   for label in sorted(set(dermoscopy_labels))}
    return result


def fit_ood_for_model(model_id: str, data_dir: Optional[str] = None, zoo_root: Optional[Path] = None) -> dict:
    """Fit on training features, thresholds on validation, evaluate on test vs the non-dermoscopy set; store it."""
    import model_zoo

    from .ood_images import build_ood_images

    model = model_zoo.load(model_id, zoo_root)
    card, folder = model.card, Path(model.card["folder"])
    config = card.get("training", {}).get("config", {})
    directory = resolve_data_dir(data_dir)
    sets = {split: load_images(card["dataset"], select(card["dataset"], split, bool(config.get("include_label_conflicts")),
                                                       config.get("limit_per_class"), int(config.get("seed", 42)),
                                                       data_dir=directory),
                               model.input_size, directory, model.classes, fov_crop=fov_crop_of(card))
            for split in ("train", "val", "test")}
    features = {split: _features(model, s.images) for split, s in sets.items()}
    detector = fit_detector(features["train"], features["val"])
    others = build_ood_images()
    ood_arrays = np.stack([prepare_image(image, model.input_size) for image in others.values()])
    test_labels = [model.classes[i] for i in sets["test"].labels]
    ood_features = _features(model, ood_arrays)
    refuse_rule = keep_refusal_if_it_works(detector, ood_features, list(others))
    result = evaluate_detector(detector, features["test"], ood_features, list(others), test_labels)
    result.update({"method": METHOD, "pca_dims": int(detector.components.shape[0]), "threshold": detector.threshold,
                   "threshold_rule": f"{ACCEPT_RATE:.0%} of validation dermoscopy images not flagged",
                   "refuse_threshold": detector.refuse_threshold, "refuse_rule": refuse_rule})
    detector.save(folder / OOD_FILE)
    _store(folder, result)
    log.info("%s: OOD AUROC %.3f; refuses %.0f%% of non-dermoscopy (held-out half %.0f%%) and %.1f%% of dermoscopy "
             "test; %.1f%% of dermoscopy test flagged unlike training", model_id, result["auroc"],
             100 * result["ood_rejected"], 100 * result["ood_rejected_held_out"],
             100 * result["dermoscopy_wrongly_rejected"], 100 * result["dermoscopy_unlike"])
    return result


def _store(folder: Path, result: dict) -> None:
    """The card's compact "ood" entry (the app reads it) and metrics.json["ood"], each written atomically."""
    summary = {k: result[k] for k in CARD_KEYS}
    summary["sha256"] = store.sha256_file(folder / OOD_FILE)
    store.update_card(folder, {"ood": summary})
    store.update_metrics(folder, {"ood": result})
