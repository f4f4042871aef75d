"""Serving a zoo model with the LiteRT (TensorFlow Lite) interpreter, without importing TensorFlow.

`python -m trainer export MODEL_ID` converts a model's `model.keras` into
`model.tflite` (see trainer/export.py) with one signature, "serving_default":

- input: float32 pixels (n, h, w, 3) in 0..255, prepared by model_zoo.preprocessing;
- "probabilities": the network's softmax output (before temperature scaling);
- "features": the penultimate `avg_pool` features (the OOD detector's input);
- "fmap_0", "fmap_1", ...: the CAM layers' feature maps (n, h', w', K), one per card `cam_layer`.

Beside it, `head.npz` (model_zoo.explainers.DenseHead) holds the layers after the CAM layers when
they are global average pooling + dense layers (checked numerically at export): the score's gradient
is then exact from those weights, so Grad-CAM and Grad-CAM++ need no gradient pass, and Score-CAM
needs only forward passes. All three heatmaps run with numpy (model_zoo.explainers, LiteRT section).
The card's "litert" entry records both files' sizes and sha256; anything missing or altered falls
back to Keras with the reason in `ZooModel.backend_reason` / `ZooModel.explainer_backend`.

The interpreter holds the weights (memory-mapped) and a small arena: the app then
needs ~100 MB for a model instead of TensorFlow's ~460 MB import, and starts faster.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from . import store

if TYPE_CHECKING:
    from .explainers import DenseHead

log = logging.getLogger(__name__)
LITERT_FILE = "model.tflite"
CHUNK = 8                            # images per interpreter call (zoo.PREDICT_BATCH: memory flat, same speed)
BACKEND_ENV = "DERMLAB_BACKEND"      # "keras": never use model.tflite (benchmarks, debugging)
SIGNATURE = "serving_default"


def installed() -> bool:
    """Whether the ai-edge-litert package is importable."""
    return importlib.util.find_spec("ai_edge_litert") is not None


def _checked(folder: Path, entry: dict, default: str) -> tuple[Optional[Path], str]:
    """(path, "") when the file `entry` records is present with its size and sha256, else (None, why not)."""
    path = Path(folder) / entry.get("file", default)
    if not path.is_file():
        return None, f"{path.name} is missing"
    if path.stat().st_size != entry.get("size_bytes") or store.sha256_file(path) != entry.get("sha256"):
        return None, f"{path.name} does not match its card (size or sha256): re-export it"
    return path, ""


def usable_file(folder: Path, card: dict) -> tuple[Optional[Path], str]:
    """(path, "") when the card records a model.tflite that is present and intact, else (None, why not)."""
    entry = card.get("litert")
    if not entry:
        return None, "no LiteRT export recorded in the card"
    if os.environ.get(BACKEND_ENV, "").lower() == "keras":
        return None, f"{BACKEND_ENV}=keras"
    if not installed():
        return None, "the ai-edge-litert package is not installed"
    return _checked(folder, entry, LITERT_FILE)


def load_head(folder: Path, card: dict) -> tuple[Optional["DenseHead"], str]:
    """(DenseHead, "") or (None, why Grad-CAM and Grad-CAM++ cannot run on the LiteRT export)."""
    from .explainers import HEAD_FILE, DenseHead

    entry = (card.get("litert") or {}).get("head")
    if not entry:
        return None, ("the LiteRT export records no head weights (head.npz: written when the layers after the CAM "
                      "layers are average pooling + dense layers, by `python -m trainer export`)")
    path, reason = _checked(folder, entry, HEAD_FILE)
    if path is None:
        return None, reason
    try:
        return DenseHead.load(path), ""
    except (OSError, ValueError, KeyError) as exc:
        return None, f"{path.name} is unreadable ({type(exc).__name__}: {exc})"


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:       # not Linux
        return max(1, os.cpu_count() or 1)


class LiteRTRunner:
    """One interpreter per model, shared by all app sessions: calls are serialised by a lock
    (an interpreter is not thread-safe; with 2 cores, one call at a time using both is fastest)."""

    def __init__(self, path: Path, fmap_outputs: Sequence[str] = ()):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self._interpreter = Interpreter(model_path=str(path), num_threads=_threads())
        self._runner = self._interpreter.get_signature_runner(SIGNATURE)
        self._input = next(iter(self._runner.get_input_details()))
        self.output_names = set(self._runner.get_output_details())
        self.fmap_outputs = [name for name in fmap_outputs if name in self.output_names]   # the card's, if present
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """All outputs for one batch of prepared pixels (copies: the interpreter reuses its buffers)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with self._lock:
            outputs = self._runner(**{self._input: batch})
            return {name: np.array(value, dtype=np.float32, copy=True) for name, value in outputs.items()}

    def run_chunked(self, batch: np.ndarray, chunk: int = CHUNK) -> dict[str, np.ndarray]:
        """All outputs for any number of images, CHUNK at a time (the heatmaps' forward passes)."""
        parts = [self(batch[i:i + chunk]) for i in range(0, len(batch), chunk)]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]} if parts else {}


def load_runner(folder: Path, card: dict) -> tuple[Optional[LiteRTRunner], str]:
    """(runner, "") or (None, why the Keras path is used instead)."""
    path, reason = usable_file(folder, card)
    if path is None:
        return None, reason
    try:
        return LiteRTRunner(path, card["litert"].get("fmap_outputs", [])), ""
    except Exception as exc:  # noqa: BLE001  (a file the interpreter refuses: fall back to Keras)
        log.warning("LiteRT could not open %s: %s", path, exc)
        return None, f"the LiteRT interpreter refused {path.name}: {type(exc).__name__}: {exc}"
