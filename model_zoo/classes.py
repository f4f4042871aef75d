"""Class names, plain-language descriptions and the malignant / benign grouping (assets/classes.json)."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "classes.json"
CONCERNING = ("malignant", "pre-malignant")


@lru_cache(maxsize=1)
def _table() -> dict:
    return {k: v for k, v in json.loads(ASSETS.read_text()).items() if not k.startswith("_")}


def class_info(label: str) -> dict:
    """{"name", "group", "description"} for a label; a neutral fallback for unknown labels."""
    return _table().get(label, {"name": label, "group": "unknown", "description": ""})


def display_name(label: str) -> str:
    return class_info(label)["name"]


def is_concerning(label: str) -> bool:
    """Malignant or pre-malignant (melanoma, BCC, SCC, actinic keratosis / akiec)."""
    return class_info(label)["group"] in CONCERNING


def concerning_probability(probabilities: np.ndarray, classes: list[str]) -> float:
    """Total probability of the malignant or pre-malignant classes."""
    mask = np.array([is_concerning(c) for c in classes])
    return float(np.asarray(probabilities)[..., mask].sum(axis=-1))
