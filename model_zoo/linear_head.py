"""A "features + linear head" model: a new classifier on a zoo model's frozen features, served without TensorFlow.

The app's quick custom models are made this way (model_zoo/quick_model.py): a LiteRT-exported zoo model (the
backbone) gives each image's penultimate `features` (the pooled CAM-layer maps), and one dense layer turns
them into the new classes. Its zoo folder holds:

- card.json with "kind": "linear_head", "model_file": "linear_head.npz" (its size and sha256, as any model
  file) and "backbone": the backbone's model id and the size and sha256 of its model.tflite;
- linear_head.npz: the dense layer in model_zoo.explainers.DenseHead's format (kernel (K, C), bias (C,)).

The backbone's model.tflite is used in place, not copied (a model is then ~50 kB, not ~20 MB): the backbone
must stay in the same zoo, unchanged, or the model is reported unavailable with the reason. As the features are
the pooled CAM maps, the head is also exactly the "layers after the CAM layers": Grad-CAM and Grad-CAM++ are
exact on LiteRT, and Score-CAM runs on the new probabilities.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from . import store
from .explainers import DenseHead

KIND = "linear_head"
HEAD_FILE = "linear_head.npz"
FEATURES_OUTPUT = "features"


def is_linear_head(card: dict) -> bool:
    return (card or {}).get("kind") == KIND


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.asarray(logits, np.float64) - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def backbone_file(folder: Path, card: dict) -> tuple[Optional[Path], str]:
    """(the backbone's model.tflite, "") when it is in the same zoo as recorded, else (None, why not)."""
    entry = card.get("backbone") or {}
    model_id = entry.get("model_id", "")
    path = Path(folder).parent / model_id / entry.get("file", "model.tflite")
    if not model_id or not path.is_file():
        return None, (f"its backbone {model_id!r} (model.tflite) is not in this zoo; the quick model reuses that "
                      "file and cannot run without it")
    if path.stat().st_size != entry.get("size_bytes") or store.sha256_file(path) != entry.get("sha256"):
        return None, (f"the backbone {model_id!r} was re-exported or changed since this model was fitted on its "
                      "features (sha256 differs): fit the quick model again")
    return path, ""


def check(folder: Path, card: dict) -> tuple[str, str]:
    """("ok", "") or ("unavailable", reason): the head file as its card records it, and the backbone's file."""
    path = Path(folder) / card.get("model_file", HEAD_FILE)
    if not path.is_file():
        return "unavailable", f"{path.name} is missing."
    if path.stat().st_size != card.get("size_bytes") or store.sha256_file(path) != card.get("sha256"):
        return "unavailable", f"{path.name} does not match the size and sha256 in its card: it was changed or damaged."
    backbone, why = backbone_file(folder, card)
    return ("ok", "") if backbone is not None else ("unavailable", why[0].upper() + why[1:] + ".")


def save_head(path: Path, kernel: np.ndarray, bias: np.ndarray) -> None:
    """One dense layer (no hidden layers) in DenseHead's file format."""
    DenseHead((np.asarray(kernel, np.float64),), (np.asarray(bias, np.float64),), ()).save(path)


def load_head(folder: Path, card: dict) -> tuple[Optional[DenseHead], str]:
    """(DenseHead, "") or (None, why not)."""
    path = Path(folder) / card.get("model_file", HEAD_FILE)
    try:
        return DenseHead.load(path), ""
    except (OSError, ValueError, KeyError) as exc:
        return None, f"{path.name} is unreadable ({type(exc).__name__}: {exc})"


class LinearHeadRunner:
    """The backbone's LiteRT runner with "probabilities" replaced by the head's: the same outputs otherwise
    (features, fmap_*), so prediction, the OOD detector and every heatmap work as for an exported model."""

    def __init__(self, backbone, head: DenseHead):
        self.backbone, self.head = backbone, head
        self.path = backbone.path
        self.output_names = backbone.output_names
        self.fmap_outputs = backbone.fmap_outputs

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.backbone(batch)
        outputs["probabilities"] = softmax(self.head.logits(outputs[FEATURES_OUTPUT]))
        return outputs

    def run_chunked(self, batch: np.ndarray, chunk: Optional[int] = None) -> dict[str, np.ndarray]:
        from .litert import CHUNK

        chunk = chunk or CHUNK
        parts = [self(batch[i:i + chunk]) for i in range(0, len(batch), chunk)]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]} if parts else {}


def load_runner(folder: Path, card: dict) -> tuple[Optional[LinearHeadRunner], str]:
    """(runner, "") or (None, why this model cannot be served here)."""
    from . import litert

    if not litert.installed():
        return None, "the ai-edge-litert package is not installed (a quick custom model runs on LiteRT only)"
    path, why = backbone_file(folder, card)
    if path is None:
        return None, why
    head, why = load_head(folder, card)
    if head is None:
        return None, why
    backbone_card = store.read_json(path.parent / store.CARD_FILE)
    try:
        backbone = litert.LiteRTRunner(path, (backbone_card.get("litert") or {}).get("fmap_outputs", []))
    except Exception as exc:  # noqa: BLE001  (a file the interpreter refuses)
        return None, f"the LiteRT interpreter refused the backbone's {path.name}: {type(exc).__name__}: {exc}"
    if FEATURES_OUTPUT not in backbone.output_names:
        return None, f"the backbone's {path.name} has no '{FEATURES_OUTPUT}' output"
    return LinearHeadRunner(backbone, head), ""
