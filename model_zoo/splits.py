"""Train / validation / test splits, grouped and stratified: one rule for the trainer and the app.

HAM10000's saved split (trainer/splits/ham10000.csv) was made with it, and so are the splits of every dataset
`python -m trainer prepare` writes and of the app's quick custom models. Images that share a group (a lesion,
or a patient) always land on the same side, so no lesion is seen in training and again in testing; with no
ids at all every image is its own group and the split is plain stratified.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

SEED = 42
FOLDS = 20                                 # 14 train / 3 validation / 3 test folds = 70 / 15 / 15
VAL_FOLDS, TEST_FOLDS = (0, 1, 2), (3, 4, 5)
SMALL_FOLDS = 7                            # when no class has FOLDS images: one validation, one test fold
VAL_FRACTION = 0.15                        # of the training images, where an official test split exists
TRAIN, VAL, TEST = "train", "val", "test"


class SplitError(ValueError):
    """Too few images or groups to split; the message says what is needed."""


def fold_plan(labels: Sequence) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """(folds, validation folds, test folds): 20 folds (70/15/15) when a class has at least 20 images; else 7 folds,
    one each for validation and test (about 72/14/14), as StratifiedGroupKFold needs a class that fills the folds."""
    counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)[1]
    if len(counts) and counts.max() >= FOLDS:
        return FOLDS, VAL_FOLDS, TEST_FOLDS
    return SMALL_FOLDS, (0,), (1,)


def describe_plan(folds: int, val_folds: Sequence[int], test_folds: Sequence[int]) -> str:
    """'70/15/15' for a fold plan."""
    val, test = round(100 * len(val_folds) / folds), round(100 * len(test_folds) / folds)
    return f"{100 - val - test}/{val}/{test}"


def grouped_split(labels: Sequence, groups: Sequence, seed: int = SEED, folds: Optional[int] = None,
                  val_folds: Sequence[int] = VAL_FOLDS, test_folds: Sequence[int] = TEST_FOLDS) -> np.ndarray:
    """"train" / "val" / "test" per image: StratifiedGroupKFold folds, a few of them held out (folds=None: the
    fold_plan for these labels).

    A class none of whose images landed in training (a very small class) gets its held-out groups back in
    training: a model cannot learn a class it never sees. This never happens for HAM10000.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if folds is None:
        folds, val_folds, test_folds = fold_plan(labels)
    labels, groups = np.asarray(labels, dtype=object), np.asarray(groups, dtype=object)
    if len(set(groups)) < folds or len(labels) and np.unique(labels.astype(str), return_counts=True)[1].max() < folds:
        raise SplitError(f"{len(labels)} images in {len(set(groups))} groups (lesions, patients or single images): "
                         f"a {describe_plan(folds, val_folds, test_folds)} split needs at least {folds} groups and a "
                         f"class with at least {folds} images.")
    split = np.full(len(labels), TRAIN, dtype=object)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (_, index) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        if fold in val_folds:
            split[index] = VAL
        elif fold in test_folds:
            split[index] = TEST
    return _every_class_in_training(split, labels, groups)


def validation_from_train(labels: Sequence, groups: Sequence, seed: int = SEED,
                          fraction: float = VAL_FRACTION) -> np.ndarray:
    """"train" / "val" for the training images of a dataset with an official test split: one stratified, grouped
    fold of about `fraction` becomes validation."""
    from sklearn.model_selection import StratifiedGroupKFold

    labels, groups = np.asarray(labels, dtype=object), np.asarray(groups, dtype=object)
    folds = int(round(1 / fraction))
    if len(set(groups)) < folds or np.unique(labels.astype(str), return_counts=True)[1].max() < folds:
        raise SplitError(f"{len(labels)} training images in {len(set(groups))} groups: at least {folds} groups and a "
                         f"class with {folds} images are needed to hold out a validation split.")
    split = np.full(len(labels), TRAIN, dtype=object)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    _, val_index = next(splitter.split(np.zeros(len(labels)), labels, groups))
    split[val_index] = VAL
    return _every_class_in_training(split, labels, groups)


def _every_class_in_training(split: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Move the held-out groups of a class that has no training image back to training (whole groups)."""
    for label in sorted(set(labels), key=str):
        mine = labels == label
        if not (split[mine] == TRAIN).any():
            split[np.isin(groups, groups[mine])] = TRAIN
    return split
