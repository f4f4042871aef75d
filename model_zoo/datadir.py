"""Where the dataset images are: one rule for the app and the trainer.

The first place that is *given* decides: an explicit argument, else $DERMLAB_DATA_DIR, else ../shared/data
beside the repository. A given place that holds no dataset is not silently replaced by the next one, so
`DERMLAB_DATA_DIR=/empty/folder` really means "no data" (the app then shows its bundled example cases, and
the trainer says what is wrong instead of training on some other copy).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

DATA_ENV = "DERMLAB_DATA_DIR"
DATASETS = ("isic_9class", "ham10000")
TEST_ONLY = ("ph2",)                      # external test sets: scored once (`python -m trainer external`), nothing else
RESERVED = DATASETS + TEST_ONLY           # built-in names a prepared dataset may not take
PREPARED_FILE = "dataset.json"            # marks a folder written by `python -m trainer prepare`
PREPARED_SPLIT = "split.csv"              # a prepared dataset's saved split (the built-ins' live in trainer/splits)
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"

ARGUMENT, ENVIRONMENT, DEFAULT = "argument", "environment", "default"


def candidate(path: Optional[str | Path] = None) -> tuple[Path, str]:
    """The one folder to look in and where it came from (ARGUMENT, ENVIRONMENT or DEFAULT)."""
    if path:
        return Path(path).expanduser(), ARGUMENT
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser(), ENVIRONMENT
    return DEFAULT_DATA_DIR, DEFAULT


def has_dataset(folder: Path, dataset: Optional[str] = None) -> bool:
    """Whether `folder` holds `dataset` (or, with None, any built-in or prepared dataset)."""
    names = DATASETS if dataset is None else (dataset,)
    return any((folder / name).is_dir() for name in names) or (dataset is None and bool(prepared_datasets(folder)))


def is_prepared(folder: Path, dataset: str) -> bool:
    """Whether `folder/dataset` was written by `python -m trainer prepare` (it holds dataset.json)."""
    return dataset not in RESERVED and (Path(folder) / dataset / PREPARED_FILE).is_file()


def prepared_datasets(folder: Optional[Path]) -> list[str]:
    """Names of the prepared datasets in `folder`, sorted (hidden and half-written folders left out)."""
    if folder is None or not Path(folder).is_dir():
        return []
    return sorted(p.name for p in Path(folder).iterdir()
                  if not p.name.startswith(".") and p.is_dir() and is_prepared(folder, p.name))


def name_problem(name: str) -> Optional[str]:
    """Why `name` cannot name a new dataset (None when it can): a built-in's name, or unusual characters."""
    if name in RESERVED:
        return (f"{name!r} is the name of a built-in dataset ({', '.join(RESERVED)}); choose another name, "
                f"e.g. {name}_mine.")
    if not NAME_PATTERN.match(name or ""):
        return (f"{name!r} is not a usable dataset name: use 1-64 lower-case letters, digits, '_' or '-', "
                "starting with a letter or digit.")
    return None


def test_only_problem(dataset: Optional[str], purpose: str = "training") -> Optional[str]:
    """Why `dataset` may not be used for `purpose` (None when it may): an external test set is only scored."""
    if dataset not in TEST_ONLY:
        return None
    return (f"{dataset!r} is an external test set only (PH², another clinic and dermatoscope) and cannot be used for "
            f"{purpose}: never train on it, tune, calibrate or fit thresholds with it, or choose models or examples "
            "with it, so that its figures stay an honest external test. Score a model on it with "
            f"`python -m trainer external MODEL_ID --dataset {dataset}`.")


def find_data_dir(path: Optional[str | Path] = None) -> Optional[Path]:
    """The data folder, or None when the place that decides holds no dataset."""
    folder, _ = candidate(path)
    return folder if has_dataset(folder) else None
