"""Intervals that resample whole lesions: each test image's lesion id, the cluster bootstrap over them, and
percentile intervals of any statistic.

Several images of one lesion are not independent, so resampling images alone gives intervals that are too narrow;
where no lesion ids are known every image is its own group (the ordinary bootstrap).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from .metrics import CI_LEVEL, N_BOOTSTRAP, SEED


def lesion_groups(dataset: Optional[str], image_ids: Sequence[str],
                  data_dir: Optional[str | Path] = None) -> tuple[np.ndarray, int]:
    """Each image's lesion id from the saved split (its own image id where none is known), and how many images
    had a known lesion id. Unknown dataset (or a prepared one not in the data folder): every image is its own group
    (plain image bootstrap)."""
    from .data import DataError, read_split

    image_ids = [str(i) for i in image_ids]
    try:
        split = read_split(dataset, data_dir) if dataset else None
    except (DataError, OSError):
        split = None
    if split is None:
        return np.array(image_ids), 0
    known = split.dropna(subset=["lesion_id"])
    known = known[known["lesion_id"].astype(str) != known["image_id"].astype(str)]
    lesions = dict(zip(known["image_id"].astype(str), known["lesion_id"].astype(str)))
    groups = np.array([lesions.get(i, i) for i in image_ids])
    return groups, int(sum(i in lesions for i in image_ids))


def resampling_note(dataset: Optional[str], n_images: int, n_lesions: int, n_known: int) -> str:
    """Why (and how) the intervals resample lesions rather than images, in one paragraph."""
    if n_lesions == n_images and n_known == 0:
        return f"No lesion ids are known: intervals resample the {n_images} test images."
    text = (f"The test split holds {n_images} images of {n_lesions} lesions. Several images of one lesion are not "
            "independent (same lesion, same diagnosis, similar pictures), so resampling images would treat them as "
            "separate evidence and give intervals that are too narrow. The intervals therefore resample whole "
            "lesions (cluster bootstrap on lesion_id from the saved split file).")
    if n_known < n_images:
        text += (f" Lesion ids are known for {n_known} of the {n_images} test images (those that come from "
                 "HAM10000); each other image counts as a lesion of its own because its source publishes no lesion "
                 "ids, so where two of those show one lesion the interval can still be slightly too narrow.")
    return text


def cluster_resamples(groups: Sequence, n_bootstrap: int = N_BOOTSTRAP, seed: int = SEED) -> list[np.ndarray]:
    """Index arrays of a cluster bootstrap: draw as many groups as there are, with replacement, and take every
    image of each drawn group (so a lesion is in or out as a whole). One group per image = ordinary bootstrap."""
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse))
    members = np.split(order, bounds[:-1])
    rng = np.random.default_rng(seed)
    return [np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
            for _ in range(n_bootstrap)]


def percentile_interval(values: Sequence, level: float = CI_LEVEL) -> Optional[list[float]]:
    """Percentile interval of bootstrap values, ignoring resamples where the statistic is undefined (NaN)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    alpha = (1 - level) / 2
    return [float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))]


def bootstrap_values(statistic: Callable[[np.ndarray], object], resamples: Sequence[np.ndarray]) -> np.ndarray:
    """statistic(index array) for every resample, stacked (warnings of resamples that miss a class silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([statistic(index) for index in resamples], dtype=np.float64)


def finite_or_none(x) -> Optional[float]:
    """A float for JSON, or None for a missing or undefined (NaN, infinite) value."""
    return None if x is None or not np.isfinite(x) else float(x)
