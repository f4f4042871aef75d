"""Serving a zoo model with the LiteRT (TensorFlow Lite) interpreter, without importing TensorFlow.

`python -m trainer export MODEL_ID` converts a model's `model.keras` into
`model.tflite` (see trainer/litert_export.py) with one signature, "serving_default":

- input: float32 pixels (n, h, w, 3) in 0..255, prepared by model_zoo.preprocessing;
- "probabilities": the network's softmax output (before temperature scaling);
- "features": the penultimate `avg_pool` features (the OOD detector's input);
- "cam_0", "cam_1", ...: per CAM layer, the class maps (n, h', w', n_classes) =
  sum_k W[k, c] A_k / (h' w'), written only when the head is global average
  pooling followed by the linear `pred` layer (checked numerically at export).
  Grad-CAM's weights are then the same W[k, c] / (h' w') for every position, so
  Grad-CAM is the ReLU of these maps: exact, with no gradient pass.

The interpreter holds the weights (memory-mapped) and a small arena: the app then
needs ~100 MB for a model instead of TensorFlow's ~460 MB import, and starts faster.
TensorFlow is still imported on demand for Grad-CAM++ and Score-CAM.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Optional

import numpy as np

from . import store

log = logging.getLogger(__name__)
LITERT_FILE = "model.tflite"
BACKEND_ENV = "DERMLAB_BACKEND"      # "keras": never use model.tflite (benchmarks, debugging)
SIGNATURE = "serving_default"


def installed() -> bool:
    """Whether the ai-edge-litert package is importable."""
    return importlib.util.find_spec("ai_edge_litert") is not None


def usable_file(folder: Path, card: dict) -> tuple[Optional[Path], str]:
    """(path, "") when the card records a model.tflite that is present and intact, else (None, why not)."""
    entry = card.get("litert")
    if not entry:
        return None, "no LiteRT export recorded in the card"
    if os.environ.get(BACKEND_ENV, "").lower() == "keras":
        return None, f"{BACKEND_ENV}=keras"
    if not installed():
        return None, "the ai-edge-litert package is not installed"
    path = Path(folder) / entry.get("file", LITERT_FILE)
    if not path.is_file():
        return None, f"{path.name} is missing"
    if path.stat().st_size != entry.get("size_bytes") or store.sha256_file(path) != entry.get("sha256"):
        return None, f"{path.name} does not match its card (size or sha256): re-export it"
    return path, ""


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:       # not Linux
        return max(1, os.cpu_count() or 1)


class LiteRTRunner:
    """One interpreter per model, shared by all app sessions: calls are serialised by a lock
    (an interpreter is not thread-safe; with 2 cores, one call at a time using both is fastest)."""

    def __init__(self, path: Path, cam_outputs: int):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self.cam_outputs = int(cam_outputs)
        self._interpreter = Interpreter(model_path=str(path), num_threads=_threads())
        self._runner = self._interpreter.get_signature_runner(SIGNATURE)
        self._input = next(iter(self._runner.get_input_details()))
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """All outputs for one batch of prepared pixels (copies: the interpreter reuses its buffers)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with self._lock:
            outputs = self._runner(**{self._input: batch})
            return {name: np.array(value, dtype=np.float32, copy=True) for name, value in outputs.items()}


def load_runner(folder: Path, card: dict) -> tuple[Optional[LiteRTRunner], str]:
    """(runner, "") or (None, why the Keras path is used instead)."""
    path, reason = usable_file(folder, card)
    if path is None:
        return None, reason
    try:
        return LiteRTRunner(path, len(card["litert"].get("cam_outputs", []))), ""
    except Exception as exc:  # noqa: BLE001  (a file the interpreter refuses: fall back to Keras)
        log.warning("LiteRT could not open %s: %s", path, exc)
        return None, f"the LiteRT interpreter refused {path.name}: {type(exc).__name__}: {exc}"
