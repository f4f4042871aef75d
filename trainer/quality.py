"""Choose the image-quality gate's thresholds on validation images; measure them once on test.

`python -m trainer quality` measures every validation and test image of HAM10000 and the ISIC 9-class set
(and PH2, an external check, when it is there) with model_zoo.quality.measure, then:

1. per measure, puts the threshold at the pooled validation images' TAIL_SHARE quantile on the bad side,
   with the largest TAIL_SHARE (from TAIL_GRID) at which neither validation set has more than
   VALIDATION_BUDGET of its images flagged by any test (half the 2% allowed on test, kept as a margin);
2. never makes a threshold stricter than plain sense (BOUNDS): the validation images are curated
   crops from two collections, so a limit at their extreme would refuse ordinary images from other
   dermatoscopes (PH2's darkest image is darker than any validation image);
3. counts, once, how many test images the thresholds flag.

It also judges DullRazor hair removal: balanced accuracy of one zoo model on HAM10000 validation images
with and without it (paired bootstrap CI of the difference); hair removal is on by default only when
that interval is above zero. Everything goes to model_zoo/quality_thresholds.json, which the app reads.
"""
from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from model_zoo import quality
from model_zoo.preprocessing import load_image, prepare_image

from .data import read_split, refuse_test_only, resolve_data_dir

DATASETS = ("ham10000", "isic_9class")
EXTERNAL = "ph2"
TAIL_GRID = (0.01, 0.0075, 0.005, 0.004, 0.003, 0.002, 0.001, 0.0005, 0.0)
VALIDATION_BUDGET = 0.01
TEST_BUDGET = 0.02
MIN_SIDE = 100                 # px: under half a 224-px model input; every dataset image is 150 px or more
# (threshold, measure, bad side, the least strict plain-sense limit it may take)
RULES = (("min_sharpness", "sharpness", "low", None),
         ("min_brightness", "brightness", "low", 60.0),
         ("max_brightness", "brightness", "high", 235.0),
         ("max_dark_share", "dark_share", "high", 0.25),
         ("max_bright_share", "bright_share", "high", 0.25))
HAIR_CHUNK = 128
BOOTSTRAP = 2000
SEED = 42


def image_paths(dataset: str, split: str, data_dir: Path) -> list[Path]:
    """Every image of one split (label conflicts included: they are real dermoscopy images all the same)."""
    if dataset == EXTERNAL:
        manifest = pd.read_csv(data_dir / EXTERNAL / "manifest.csv")
        return [data_dir / EXTERNAL / p for p in manifest["path"]]
    frame = read_split(dataset)
    return [data_dir / dataset / p for p in frame.loc[frame["split"] == split, "path"]]


def measure_images(paths: list[Path]) -> pd.DataFrame:
    """One row of quality measures per image (two threads: decoding and OpenCV release the GIL)."""
    with ThreadPoolExecutor(2) as pool:
        rows = list(pool.map(lambda p: quality.measure(load_image(p)), paths))
    return pd.DataFrame(rows, index=[str(p) for p in paths])


def thresholds_at(pooled: pd.DataFrame, tail: float, min_side: int) -> tuple[quality.Thresholds, dict]:
    """Thresholds at one tail share of the pooled validation measures, then relaxed to BOUNDS."""
    fitted, chosen = {}, {}
    for name, column, side, bound in RULES:
        value = float(np.quantile(pooled[column], tail if side == "low" else 1.0 - tail))
        fitted[name] = value
        if bound is not None:
            value = min(value, bound) if side == "low" else max(value, bound)
        chosen[name] = value
    return quality.Thresholds(**chosen, min_side=min_side), fitted


def flag_table(frame: pd.DataFrame, limits: quality.Thresholds) -> dict:
    """n, images flagged, their share, and how many each flag caught."""
    flags = [quality.flags_for(row, limits) for row in frame.to_dict("records")]
    flagged = sum(1 for f in flags if f)
    return {"n": len(frame), "flagged": flagged, "share": flagged / max(1, len(frame)),
            "by_flag": {name: sum(name in f for f in flags) for name in quality.FLAGS}}


def choose(validation: dict[str, pd.DataFrame]) -> tuple[quality.Thresholds, dict]:
    """The largest tail share whose thresholds keep every validation set within VALIDATION_BUDGET."""
    for dataset in validation:
        refuse_test_only(dataset, "choosing the image-quality thresholds")
    pooled = pd.concat(validation.values())
    min_side = int(min(MIN_SIDE, pooled[["width", "height"]].min(axis=1).min()))
    for tail in TAIL_GRID:
        limits, fitted = thresholds_at(pooled, tail, min_side)
        if all(flag_table(frame, limits)["share"] <= VALIDATION_BUDGET for frame in validation.values()):
            return limits, {"tail_share": tail, "from_validation": fitted}
    raise AssertionError("a tail share of 0 flags no validation image")


def hair_check(model_id: str, data_dir: Path) -> dict:
    """Balanced accuracy on HAM10000 validation with and without remove_hair, and a paired bootstrap CI."""
    import model_zoo
    from sklearn.metrics import balanced_accuracy_score

    from .evaluate import card_selection

    model = model_zoo.load(model_id)
    rows = card_selection(model.card, "val")
    labels = np.array([model.classes.index(label) for label in rows["label"]])
    plain, cleaned, masked = [], [], []
    paths = [data_dir / model.card["dataset"] / p for p in rows["path"]]
    for start in range(0, len(paths), HAIR_CHUNK):
        images = [load_image(p) for p in paths[start:start + HAIR_CHUNK]]
        masked += [float(quality.hair_mask(image).mean() / 255) for image in images]
        for out, prepared in ((plain, images), (cleaned, [quality.remove_hair(i) for i in images])):
            batch = np.stack([prepare_image(i, model.input_size) for i in prepared])
            out.append(model.predict_arrays(batch).argmax(axis=1))
    plain_pred, cleaned_pred = np.concatenate(plain), np.concatenate(cleaned)
    rng = np.random.default_rng(SEED)
    diffs = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(labels), len(labels))
        diffs.append(balanced_accuracy_score(labels[pick], cleaned_pred[pick])
                     - balanced_accuracy_score(labels[pick], plain_pred[pick]))
    without, with_ = balanced_accuracy_score(labels, plain_pred), balanced_accuracy_score(labels, cleaned_pred)
    low, high = (float(v) for v in np.percentile(diffs, [2.5, 97.5]))
    return {"model": model_id, "split": f"{model.card['dataset']} val", "n": int(len(labels)),
            "balanced_accuracy_without": float(without), "balanced_accuracy_with": float(with_),
            "difference": float(with_ - without), "difference_ci95": [low, high],
            "predictions_changed": float(np.mean(plain_pred != cleaned_pred)),
            "mean_masked_share": float(np.mean(masked)), "default": bool(low > 0),
            "rule": "on by default only if the 95% CI of the difference is above zero"}


def run_quality(data_dir: Optional[str] = None, output: Optional[Path] = None, hair_model: Optional[str] = None) -> dict:
    """Measure, choose on validation, count on test (and PH2), judge hair removal; write the JSON."""
    import model_zoo

    folder = resolve_data_dir(data_dir)
    validation = {d: measure_images(image_paths(d, "val", folder)) for d in DATASETS}
    test = {d: measure_images(image_paths(d, "test", folder)) for d in DATASETS}
    limits, choice = choose(validation)
    test_all = flag_table(pd.concat(test.values()), limits)
    record = {
        "thresholds": quality.as_dict(limits),
        "measured_at": {"work_size": quality.WORK_SIZE, "centre_margin": quality.CENTRE_MARGIN,
                        "near_black": quality.NEAR_BLACK, "near_white": quality.NEAR_WHITE},
        "rule": (f"each threshold at the pooled validation images' tail share on its bad side, the largest tail "
                 f"share (of {list(TAIL_GRID)}) keeping every validation set within {VALIDATION_BUDGET:.0%} "
                 f"flagged; never stricter than the bounds; min_side {MIN_SIDE} px"),
        "bounds": {name: bound for name, _, _, bound in RULES if bound is not None},
        **choice,
        "validation": {d: flag_table(frame, limits) for d, frame in validation.items()},
        "test": {**{d: flag_table(frame, limits) for d, frame in test.items()}, "all": test_all},
        "test_budget": TEST_BUDGET,
        "created": dt.date.today().isoformat(),
        "command": "python -m trainer quality",
    }
    if (folder / EXTERNAL / "manifest.csv").is_file():
        record["external"] = {EXTERNAL: flag_table(measure_images(image_paths(EXTERNAL, "", folder)), limits)}
    hair_model = hair_model or model_zoo.default_model_id(model_zoo.list_models())
    if hair_model:
        record["hair_removal"] = hair_check(hair_model, folder)
    path = Path(output or quality.THRESHOLDS_FILE)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return record
