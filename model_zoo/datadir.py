"""Where the dataset images are: one rule for the app and the trainer.

The first place that is *given* decides: an explicit argument, else $DERMLAB_DATA_DIR, else ../shared/data
beside the repository. A given place that holds no dataset is not silently replaced by the next one, so
`DERMLAB_DATA_DIR=/empty/folder` really means "no data" (the app then shows its bundled example cases, and
the trainer says what is wrong instead of training on some other copy).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

DATA_ENV = "DERMLAB_DATA_DIR"
DATASETS = ("isic_9class", "ham10000")
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
    """Whether `folder` holds `dataset` (or, with None, any known dataset)."""
    names = DATASETS if dataset is None else (dataset,)
    return any((folder / name).is_dir() for name in names)


def find_data_dir(path: Optional[str | Path] = None) -> Optional[Path]:
    """The data folder, or None when the place that decides holds no dataset."""
    folder, _ = candidate(path)
    return folder if has_dataset(folder) else None
