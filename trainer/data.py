"""Datasets, saved splits and the decode-once tf.data pipeline.

Images are read from a data directory (CLI flag, env DERMLAB_DATA_DIR, or
../shared/data beside the repository); only ids, labels and split names are
stored in the repository (trainer/splits/*.csv). A dataset made by
`python -m trainer prepare` keeps its split beside its images (NAME/split.csv).
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from model_zoo import datadir, splits
from model_zoo.preprocessing import ImageError, load_image, prepare_image

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
SPLITS_DIR = Path(__file__).resolve().parent / "splits"
DATA_ENV = datadir.DATA_ENV
DATASETS = datadir.DATASETS
SEED = 42
ISIC_VAL_FRACTION = 0.15
HAM_FOLDS = 20                         # 14 train / 3 validation / 3 test folds = 70 / 15 / 15
HAM_VAL_FOLDS, HAM_TEST_FOLDS = (0, 1, 2), (3, 4, 5)
DECODE_THREADS = 8


# HAM10000 diagnosis -> isic_9class label, for using HAM10000 as extra 9-class training data. akiec is left out:
# HAM10000 files actinic keratoses and intraepithelial carcinoma (Bowen's disease) together, and the 9-class set
# splits them into "actinic keratosis" and "squamous cell carcinoma" (its HAM10000 akiec images go to both).
HAM_TO_ISIC9 = {"mel": "melanoma", "nv": "nevus", "bcc": "basal cell carcinoma", "bkl": "pigmented benign keratosis",
                "df": "dermatofibroma", "vasc": "vascular lesion"}
# isic_9class label -> HAM10000 diagnosis, the other way. Left out: seborrheic keratosis (every one of its images
# was also filed as melanoma, see the data's SOURCE.md) and squamous cell carcinoma (invasive SCC is not akiec).
# In practice this adds the 9-class set's own melanoma and nevus images (older ISIC archive ids), none from HAM10000.
ISIC9_TO_HAM = {"melanoma": "mel", "nevus": "nv", "basal cell carcinoma": "bcc", "pigmented benign keratosis": "bkl",
                "dermatofibroma": "df", "vascular lesion": "vasc", "actinic keratosis": "akiec"}
EXTRA_SOURCES = {("isic_9class", "ham10000"): HAM_TO_ISIC9, ("ham10000", "isic_9class"): ISIC9_TO_HAM}


class DataError(RuntimeError):
    """A missing or unusable data directory; the message tells the user what to do."""


class ExternalOnlyError(DataError):
    """An external test set (PH²) asked for something other than being scored once."""


def refuse_test_only(dataset: Optional[str], purpose: str = "training") -> None:
    """Raise ExternalOnlyError when `dataset` is an external test set: it is never trained on, tuned, calibrated on,
    used for thresholds or to choose models, so that its figures stay an honest external test."""
    problem = datadir.test_only_problem(dataset, purpose)
    if problem:
        raise ExternalOnlyError(problem)


def resolve_data_dir(path: Optional[str | Path] = None) -> Path:
    """The data directory: argument, then $DERMLAB_DATA_DIR, then ../shared/data beside the repo.

    The first one given decides (model_zoo.datadir): a $DERMLAB_DATA_DIR without data is an error, not a
    silent switch to ../shared/data, so the app and the trainer agree on where the images are.
    """
    folder, origin = datadir.candidate(path)
    if datadir.has_dataset(folder):
        return folder
    if origin == datadir.ARGUMENT:
        raise DataError(f"Data directory {folder} has no isic_9class/ or ham10000/ folder, nor a prepared dataset.")
    if origin == datadir.ENVIRONMENT:
        raise DataError(f"{DATA_ENV}={folder} has no isic_9class/ or ham10000/ folder, nor a prepared dataset. Set "
                        "it to the folder that holds them (for example ../shared/data), or pass --data-dir.")
    raise DataError(
        f"No data directory found. Pass --data-dir, or set {DATA_ENV} to the folder that holds "
        "isic_9class/ and ham10000/ (for example ../shared/data)."
    )


def split_file(dataset: str, data_dir: Optional[str | Path] = None) -> Path:
    """Where the saved split of `dataset` lives: trainer/splits/ for a built-in dataset, else beside the images
    of a prepared dataset in the data directory (argument, then $DERMLAB_DATA_DIR, then ../shared/data)."""
    if dataset in DATASETS:
        return SPLITS_DIR / f"{dataset}.csv"
    refuse_test_only(dataset, "a training, validation or test split")
    folder, _ = datadir.candidate(data_dir)
    if dataset in datadir.RESERVED or not datadir.is_prepared(folder, dataset):
        raise DataError(f"Unknown dataset {dataset!r}: not one of {', '.join(DATASETS)} and no prepared dataset of "
                        f"that name in {folder}. Make one with `python -m trainer prepare SOURCE --format ... "
                        f"--name {dataset}`, or pass the --data-dir that holds it.")
    return folder / dataset / datadir.PREPARED_SPLIT


def split_label(dataset: str, data_dir: Optional[str | Path] = None) -> str:
    """How a model card names its split file: repository-relative, or NAME/split.csv in the data folder."""
    if dataset in DATASETS:
        return str(split_file(dataset).relative_to(REPO_ROOT))
    return f"{dataset}/{datadir.PREPARED_SPLIT} in the data folder (made by python -m trainer prepare)"


# ---------------------------------------------------------------- making splits
def make_isic_9class_split(data_dir: Path) -> pd.DataFrame:
    """Official Test stays test; validation is a stratified 15% of Train (grouped by lesion).

    Train images of a HAM10000 lesion that also has an image in Test are marked
    `excluded_lesion_leak`, so the test set holds no lesion seen in training.
    """
    manifest = pd.read_csv(data_dir / "isic_9class" / "manifest.csv")
    overlap = pd.read_csv(data_dir / "isic_9class_vs_ham10000_overlap.csv")
    lesion = dict(zip(overlap["isic_id"], overlap["ham10000_lesion_id"]))
    frame = pd.DataFrame({
        "image_id": manifest["isic_id"],
        "path": manifest["path"],
        "label": manifest["label"],
        "lesion_id": manifest["isic_id"].map(lesion).fillna(manifest["isic_id"]),
        "label_conflict": manifest["label_conflict"].astype(int),
        "split": manifest["split"],
    })
    train = frame["split"] == "train"
    frame.loc[train, "split"] = splits.validation_from_train(frame.loc[train, "label"], frame.loc[train, "lesion_id"],
                                                             SEED, ISIC_VAL_FRACTION)
    test_lesions = set(frame.loc[frame["split"] == "test", "lesion_id"])
    leak = frame["split"].isin(["train", "val"]) & frame["lesion_id"].isin(test_lesions)
    frame.loc[leak, "split"] = "excluded_lesion_leak"
    return frame.sort_values(["split", "label", "image_id"]).reset_index(drop=True)


def make_ham10000_split(data_dir: Path) -> pd.DataFrame:
    """Stratified 70/15/15 train/validation/test, grouped by lesion_id (no lesion on two sides)."""
    manifest = pd.read_csv(data_dir / "ham10000" / "manifest.csv")
    frame = pd.DataFrame({
        "image_id": manifest["image_id"],
        "path": manifest["path"],
        "label": manifest["label"],
        "lesion_id": manifest["lesion_id"],
        "label_conflict": 0,
    })
    frame["split"] = splits.grouped_split(frame["label"], frame["lesion_id"], SEED, HAM_FOLDS, HAM_VAL_FOLDS,
                                          HAM_TEST_FOLDS)
    return frame.sort_values(["split", "label", "image_id"]).reset_index(drop=True)


def write_splits(data_dir: Optional[Path] = None) -> list[Path]:
    """Regenerate trainer/splits/*.csv from the manifests (deterministic: fixed seed)."""
    data_dir = resolve_data_dir(data_dir)
    SPLITS_DIR.mkdir(exist_ok=True)
    written = []
    for dataset, maker in (("isic_9class", make_isic_9class_split), ("ham10000", make_ham10000_split)):
        path = split_file(dataset)
        maker(data_dir).to_csv(path, index=False)
        written.append(path)
    return written


# ---------------------------------------------------------------- reading splits
def read_split(dataset: str, data_dir: Optional[str | Path] = None) -> pd.DataFrame:
    """The saved split table of `dataset` (image_id, path, label, lesion_id, label_conflict, split)."""
    path = split_file(dataset, data_dir)
    return _read_split_file(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _read_split_file(path: str, mtime_ns: int) -> pd.DataFrame:
    """Cached per file version: a dataset prepared again under the same name is read afresh."""
    return pd.read_csv(path, dtype={"image_id": str, "lesion_id": str, "path": str, "label": str})


def class_names(dataset: str, data_dir: Optional[str | Path] = None) -> list[str]:
    """Output order of the classes: sorted label names."""
    return sorted(read_split(dataset, data_dir)["label"].unique())


def select(dataset: str, split: str, include_label_conflicts: bool = False, limit_per_class: Optional[int] = None,
           seed: int = SEED, data_dir: Optional[str | Path] = None) -> pd.DataFrame:
    """Rows of one split; label-conflict images are dropped from train/val unless asked for."""
    frame = read_split(dataset, data_dir)
    rows = frame[frame["split"] == split]
    if split in ("train", "val") and not include_label_conflicts:
        rows = rows[rows["label_conflict"] == 0]
    if limit_per_class:
        rows = rows.sample(frac=1.0, random_state=seed).groupby("label").head(limit_per_class)
    return rows.reset_index(drop=True)


def held_out_ids(dataset: str) -> tuple[set[str], set[str]]:
    """(lesion ids, image ids) of every image outside `dataset`'s training split: validation, test, and
    the training images excluded for sharing a lesion with them."""
    frame = read_split(dataset)
    held_out = frame[frame["split"] != "train"]
    return set(held_out["lesion_id"]), set(held_out["image_id"])


def without_lesions_of(rows: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """`rows` minus every image whose lesion (or the image itself) is held out by `dataset`.

    A model trained on what is left has never seen a lesion of `dataset`'s validation or test split, so it
    can start a `dataset` model (--init-from) without leaking them (HAM10000 holds 69 of the 9-class Test
    images; see docs/experiments.md).
    """
    lesions, images = held_out_ids(dataset)
    return rows[~rows["lesion_id"].isin(lesions) & ~rows["image_id"].isin(images)].reset_index(drop=True)


def extra_training_rows(dataset: str, source: str, per_class: Optional[int] = None, seed: int = SEED) -> pd.DataFrame:
    """Images of `source` relabelled into `dataset`'s classes, safe to add to `dataset`'s training split.

    Left out: classes without a clean counterpart (see the mappings above), images with a label conflict,
    images that are themselves in `dataset` (any split), and every image of a lesion that has an image in
    `dataset`'s validation or test split (or was excluded there for leaking), so neither evaluation split
    holds a lesion seen in training.
    `per_class` caps each class (a random sample), to keep the training time in hand.
    """
    mapping = EXTRA_SOURCES.get((dataset, source))
    if mapping is None:
        raise ValueError(f"No label mapping from {source!r} to {dataset!r}; known: "
                         f"{', '.join(f'{s} -> {d}' for d, s in EXTRA_SOURCES)}")
    target, extra = read_split(dataset), read_split(source)
    rows = without_lesions_of(extra[extra["label"].isin(mapping) & (extra["label_conflict"] == 0)
                                    & ~extra["image_id"].isin(set(target["image_id"]))], dataset).copy()
    rows["label"] = rows["label"].map(mapping)
    rows["split"] = "train"
    if per_class:
        rows = rows.sample(frac=1.0, random_state=seed).groupby("label").head(per_class)
    return rows.sort_values(["label", "image_id"]).reset_index(drop=True)


def concat_sets(first: "ImageSet", second: "ImageSet") -> "ImageSet":
    """One ImageSet holding both (same classes and image size)."""
    if first.classes != second.classes:
        raise ValueError("Cannot join image sets with different classes")
    return ImageSet(np.concatenate([first.images, second.images]), np.concatenate([first.labels, second.labels]),
                    first.image_ids + second.image_ids, first.classes, first.skipped + second.skipped)


@dataclass
class ImageSet:
    """Decoded, resized images of one split, with integer labels in class order."""

    images: np.ndarray                 # (n, h, w, 3) uint8
    labels: np.ndarray                 # (n,) int32
    image_ids: list[str]
    classes: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (path, reason) of unreadable files

    def __len__(self) -> int:
        return len(self.labels)


def fov_crop_of(card: dict) -> bool:
    """Whether a model was trained on images cut to the dermatoscope's field of view (its card records it)."""
    return bool((card.get("preprocessing") or {}).get("field_of_view_crop"))


def load_images(dataset: str, rows: pd.DataFrame, size: Sequence[int], data_dir: Path,
                classes: Optional[list[str]] = None, fov_crop: bool = False) -> ImageSet:
    """Decode each image once with the shared preprocessing (the app's exact path), in threads.

    Unreadable files are skipped and reported in `ImageSet.skipped`, never fatal. fov_crop: cut each image to
    its dermatoscope's round field of view first (model_zoo.preprocessing.crop_to_field_of_view).
    """
    classes = classes or class_names(dataset, data_dir)
    index = {name: i for i, name in enumerate(classes)}
    root = Path(data_dir) / dataset

    def decode(path: str):
        try:
            return prepare_image(load_image(root / path), size, fov_crop).astype(np.uint8), None
        except (ImageError, OSError) as exc:
            return None, str(exc)

    with ThreadPoolExecutor(DECODE_THREADS) as pool:
        results = list(pool.map(decode, rows["path"]))
    keep = [i for i, (array, _) in enumerate(results) if array is not None]
    skipped = [(rows["path"].iloc[i], results[i][1]) for i in range(len(results)) if results[i][0] is None]
    for path, reason in skipped:
        log.warning("Skipped unreadable image %s: %s", path, reason)
    height, width = int(size[0]), int(size[1])
    images = np.stack([results[i][0] for i in keep]) if keep else np.zeros((0, height, width, 3), np.uint8)
    labels = np.array([index[rows["label"].iloc[i]] for i in keep], dtype=np.int32)
    ids = [rows["image_id"].iloc[i] for i in keep]
    return ImageSet(images, labels, ids, list(classes), skipped)


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """'Balanced' class weights (scikit-learn), for classes present in `labels`."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    table = {int(c): float(w) for c, w in zip(present, weights)}
    return {c: table.get(c, 1.0) for c in range(num_classes)}


# ---------------------------------------------------------------- tf.data
def make_dataset(image_set: ImageSet, batch_size: int, training: bool, augment=None, balance: str = "none",
                 seed: int = SEED, mix=None):
    """tf.data pipeline: in-memory decoded images -> cache -> shuffle -> batch -> augment (parallel) -> one-hot
    -> mix (MixUp / CutMix, see augment.make_mixer) -> prefetch.

    With balance="sampling", each class is drawn equally often (an infinite
    stream; pass steps_per_epoch to fit). On Keras' JAX or PyTorch backend the same steps run as a
    keras.utils.PyDataset instead (batches.ArrayBatches), without TensorFlow.
    """
    from .distribute import backend_name

    if backend_name() != "tensorflow":
        from .batches import ArrayBatches

        return ArrayBatches(image_set, batch_size, training, augment, balance, seed, mix)
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    num_classes = len(image_set.classes)

    def one_hot(x, y):
        return x, tf.one_hot(y, num_classes)

    if training and balance == "sampling":
        per_class = []
        for c in range(num_classes):
            idx = np.flatnonzero(image_set.labels == c)
            if len(idx):
                per_class.append(
                    tf.data.Dataset.from_tensor_slices((image_set.images[idx], image_set.labels[idx]))
                    .cache().shuffle(len(idx), seed=seed).repeat()
                )
        ds = tf.data.Dataset.sample_from_datasets(per_class, seed=seed)
    else:
        ds = tf.data.Dataset.from_tensor_slices((image_set.images, image_set.labels)).cache()
        if training:
            ds = ds.shuffle(len(image_set), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=False).map(
        lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=autotune
    )
    if training and augment is not None:
        shape = [None, *image_set.images.shape[1:]]        # the fused transform loses the static size; CutMix needs it
        ds = ds.map(lambda x, y: (tf.ensure_shape(augment(x, training=True), shape), y), num_parallel_calls=autotune)
    ds = ds.map(one_hot, num_parallel_calls=autotune)
    if training and mix is not None:
        ds = ds.map(mix, num_parallel_calls=autotune)
    return ds.prefetch(autotune)
