"""The zoo's public API: list trained models, load one, predict.

Used by the app and by outside scripts; never imports the trainer.
"""
from __future__ import annotations

import csv
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import store
from .preprocessing import ImageSource, prepare_batch

log = logging.getLogger(__name__)
# Images per forward pass. On 2 CPU cores the forward pass costs the same per image from 8 up
# (docs/benchmarks.md), while activation memory grows with the chunk: 8 keeps a batch of 100 about
# 260 MB below 32.
PREDICT_BATCH = 8
# Optional packages Keras imports at start-up when they are installed, for features the app never
# uses (keras.wrappers' scikit-learn estimators, keras.visualization's pyplot galleries). Skipping
# them while Keras is first imported saves about 1 s and 60 MB per process (docs/benchmarks.md).
KERAS_SKIPPED_EXTRAS = ("sklearn", "matplotlib.pyplot")
KERAS_EXTRAS_ENV = "DERMLAB_KERAS_EXTRAS"     # "1": import Keras with its extras (the old way, for benchmarks)


class ModelUnavailable(RuntimeError):
    """A model that cannot be used: missing, damaged or tampered file. The message says why."""


def _headline(card: dict) -> float:
    return float(card.get("headline", {}).get("test_balanced_accuracy") or 0.0)


def list_models(root: Optional[Path] = None) -> list[dict]:
    """Cards of every model in the zoo: the default model first, then by dataset and test balanced accuracy.

    Each card gains `status` ("ok" or "unavailable") and `status_reason`, checked
    cheaply (file present, size and sha256 as recorded).
    """
    cards = []
    for folder in store.model_folders(root):
        try:
            card = store.read_json(folder / store.CARD_FILE)
        except (OSError, ValueError) as exc:
            log.warning("Skipping %s: unreadable card (%s)", folder.name, exc)
            continue
        card.setdefault("id", folder.name)
        card["folder"] = str(folder)
        card["status"], card["status_reason"] = check_model_file(folder, card)
        cards.append(card)
    default = default_model_id(cards, root)
    cards.sort(key=lambda c: (c["id"] != default, c.get("dataset", ""), -_headline(c), c["id"]))
    return cards


def default_model_id(cards: Sequence[dict], root: Optional[Path] = None) -> Optional[str]:
    """zoo.json's "default" if usable, else the usable model with the best test balanced accuracy."""
    usable = [c for c in cards if c.get("status", "ok") == "ok"]
    wanted = store.read_index(root).get("default")
    if any(c["id"] == wanted for c in usable):
        return wanted
    return max(usable, key=_headline)["id"] if usable else None


def check_model_file(folder: Path, card: dict) -> tuple[str, str]:
    """("ok", "") or ("unavailable", reason) without loading the model."""
    from . import linear_head

    if linear_head.is_linear_head(card):         # a head on another model's features: both files checked
        return linear_head.check(folder, card)
    path = Path(folder) / store.MODEL_FILE
    if not path.is_file():
        return "unavailable", f"{store.MODEL_FILE} is missing."
    expected_size = card.get("size_bytes")
    if expected_size is not None and path.stat().st_size != expected_size:
        return "unavailable", f"{store.MODEL_FILE} is {path.stat().st_size} bytes, the card says {expected_size}: truncated or replaced."
    if card.get("sha256") and store.sha256_file(path) != card["sha256"]:
        return "unavailable", f"{store.MODEL_FILE} does not match the sha256 in its card: it was changed or damaged."
    return "ok", ""


def get_card(model_id: str, root: Optional[Path] = None) -> dict:
    """The card of one model; ModelUnavailable if there is none."""
    for card in list_models(root):
        if card["id"] == model_id:
            return card
    raise ModelUnavailable(f"No model called {model_id!r} in the zoo.")


def model_folder(model_id: str, root: Optional[Path] = None) -> Path:
    folder = Path(root or store.zoo_dir()) / model_id
    if not (folder / store.CARD_FILE).is_file():
        raise ModelUnavailable(f"No model called {model_id!r} in the zoo.")
    return folder


def read_metrics(model_id: str, root: Optional[Path] = None) -> dict:
    """metrics.json: {"validation": {...}, "test": {...}} (see trainer.metrics.compute_metrics)."""
    path = model_folder(model_id, root) / store.METRICS_FILE
    return store.read_json(path) if path.is_file() else {}


def read_history(model_id: str, root: Optional[Path] = None) -> list[dict]:
    """history.csv rows (one per epoch, both phases), as dicts of floats (phase as str)."""
    return _read_csv(model_folder(model_id, root) / store.HISTORY_FILE)


def read_predictions(model_id: str, root: Optional[Path] = None) -> list[dict]:
    """predictions.csv rows: split, image_id, path, true label, predicted label, one column per class probability."""
    return _read_csv(model_folder(model_id, root) / store.PREDICTIONS_FILE)


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, value in row.items():
            try:
                row[key] = float(value)
            except (TypeError, ValueError):
                pass
    return rows


@dataclass
class ZooModel:
    """A loaded model and its card; `predict` applies the training preprocessing.

    Forward passes and heatmaps run on the LiteRT interpreter when the model has an intact
    `model.tflite` (model_zoo.litert; no TensorFlow import), else on Keras. The Keras model itself
    is loaded on first use of `keras_model` (no usable LiteRT file, or an export without heatmap outputs).
    """

    card: dict
    folder: Path
    runner: Optional[object] = None          # model_zoo.litert.LiteRTRunner
    backend_reason: str = ""                 # why the Keras path serves, when it does
    _keras: Optional[object] = field(default=None, repr=False)
    _keras_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def classes(self) -> list[str]:
        return list(self.card["classes"])

    @property
    def input_size(self) -> tuple[int, int]:
        height, width = self.card["input_size"]
        return int(height), int(width)

    @property
    def temperature(self) -> float:
        return float(self.card.get("calibration", {}).get("temperature", 1.0))

    @property
    def backend(self) -> str:
        """"litert" or "keras": what runs the forward pass."""
        return "litert" if self.runner is not None else "keras"

    @property
    def keras_model(self):
        """The Keras model, loaded once on first use (safe_mode: no arbitrary code)."""
        from .linear_head import is_linear_head

        if is_linear_head(self.card):
            raise ModelUnavailable(f"{self.card.get('id')!r} is a linear head on another model's LiteRT features: "
                                   "it has no Keras model (heatmaps other than Grad-CAM, Grad-CAM++ and Score-CAM "
                                   "are not available for it).")
        with self._keras_lock:
            if self._keras is None:
                self._keras = _load_keras_file(self.folder, self.card.get("id", self.folder.name))
            return self._keras

    def predict_arrays(self, batch: np.ndarray, calibrated: bool = True, tta: bool = False) -> np.ndarray:
        """Probabilities for prepared float32 pixels (n, h, w, 3) in 0..255; temperature-scaled with the
        card's validation-fitted temperature unless calibrated=False (the raw network output).
        tta=True averages the raw probabilities over the 8 flips/rotations of each image (8x the work)."""
        if not tta:
            return self.predict_with_features(batch, calibrated)[0]
        views = [np.rot90(batch, k, axes=(1, 2)) for k in range(4)]
        views += [np.flip(v, axis=2) for v in views]
        mean = np.mean([self.predict_with_features(np.ascontiguousarray(v), calibrated=False)[0] for v in views], axis=0)
        return self.calibrate(mean) if calibrated else mean.astype(np.float32)

    def predict_with_features(self, batch: np.ndarray, calibrated: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, penultimate `avg_pool` features) from one forward pass per chunk."""
        forward = self._litert_forward if self.runner is not None else self._keras_forward()
        outputs = [forward(batch[i:i + PREDICT_BATCH]) for i in range(0, len(batch), PREDICT_BATCH)]
        if not outputs:
            return np.zeros((0, len(self.classes)), np.float32), np.zeros((0, 0), np.float32)
        probabilities = np.concatenate([o[0] for o in outputs])
        features = np.concatenate([o[1] for o in outputs])
        return (self.calibrate(probabilities) if calibrated else probabilities), features

    def calibrate(self, probabilities: np.ndarray) -> np.ndarray:
        """Temperature scaling with the card's validation-fitted T (raw network probabilities in)."""
        if self.temperature == 1.0:
            return probabilities.astype(np.float32)
        from .calibration import apply_temperature

        return apply_temperature(probabilities, self.temperature).astype(np.float32)

    def _litert_forward(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outputs = self.runner(chunk)
        return outputs["probabilities"], outputs["features"]

    def _keras_forward(self):
        """A compiled two-output view of the Keras model (built once)."""
        if not hasattr(self, "_compiled"):
            import keras
            import tensorflow as tf

            from .constants import FEATURE_LAYER

            model = self.keras_model
            view = keras.Model(model.inputs, [model.output, model.get_layer(FEATURE_LAYER).output])
            compiled = tf.function(lambda x: view(x, training=False), reduce_retracing=True)
            self._compiled = lambda chunk: tuple(np.asarray(t, np.float32) for t in compiled(tf.constant(chunk)))
        return self._compiled

    def explainer_backend(self, method: str) -> tuple[str, str]:
        """("litert", "") when the LiteRT export can compute `method` with numpy, else ("keras", why not)."""
        from .explainers import litert_requirements

        needs_head = litert_requirements(method)
        if needs_head is None:
            return "keras", f"{method!r} has no LiteRT version"
        if self.runner is None:
            return "keras", f"no LiteRT interpreter ({self.backend_reason})"
        if len(self.runner.fmap_outputs) != len(self.cam_layers):
            return "keras", ("the LiteRT export has no feature-map outputs (fmap_0, ...) for the CAM layers, as "
                             "exports made before heatmaps ran on LiteRT: re-export with `python -m trainer export`")
        if needs_head and self.head is None:
            return "keras", self._head[1]
        return "litert", ""

    def explainer(self, method: str):
        """A heatmap function `(images, class_index) -> (n, h, w)` in [0, 1] (model_zoo.explainers).

        Grad-CAM, Grad-CAM++ and Score-CAM run on the LiteRT export with numpy when it has the feature
        maps (and, for the gradient methods, the head weights); otherwise, and for the tf-keras-vis
        reference, on the Keras model (loading TensorFlow on first use), with the reason logged.
        """
        from .explainers import create_explainer, create_litert_explainer, litert_requirements

        backend, why = self.explainer_backend(method)
        if backend == "litert":
            return create_litert_explainer(method, self.runner.run_chunked, self.runner.fmap_outputs,
                                           self.input_size, self.head)
        if litert_requirements(method) is not None:
            log.info("%s of %s runs on Keras: %s", method, self.card.get("id"), why)
        return create_explainer(method, self.keras_model, self.card["cam_layer"])

    @property
    def cam_layers(self) -> list[str]:
        from .explainers import as_layer_list

        return as_layer_list(self.card["cam_layer"])

    @property
    def head(self):
        """The layers after the CAM layers (model_zoo.explainers.DenseHead) from the LiteRT export, or None."""
        if not hasattr(self, "_head"):
            from . import linear_head
            from .litert import load_head

            loader = linear_head.load_head if linear_head.is_linear_head(self.card) else load_head
            self._head = loader(self.folder, self.card)
        return self._head[0]

    @property
    def ood_detector(self):
        """The fitted out-of-distribution detector (residual scores, model_zoo/ood.py), or None (see `ood_status`)."""
        if not hasattr(self, "_ood"):
            from .ood import load_detector

            self._ood = load_detector(Path(self.card.get("folder", "")), self.card)
        return self._ood[0]

    @property
    def metadata_model(self):
        """The patient-details model fused with this one (model_zoo.metadata), or None (see `metadata_status`)."""
        if not hasattr(self, "_metadata"):
            from .metadata import load_metadata_model

            self._metadata = load_metadata_model(self.folder, self.classes)
        return self._metadata[0]

    @property
    def metadata_status(self) -> str:
        self.metadata_model
        return self._metadata[1]

    @property
    def ood_status(self) -> str:
        self.ood_detector
        return self._ood[1]

    def predict(self, images: Sequence[ImageSource], calibrated: bool = True) -> np.ndarray:
        """(n, n_classes) probabilities in card["classes"] order for PIL images / paths / bytes of any size and mode."""
        return self.predict_arrays(prepare_batch(list(images), self.input_size), calibrated)


class _SkipInThisThread:
    """Import hook: `import name` fails in one thread only, as if the package were not installed.
    Other threads (another app session importing scikit-learn meanwhile) import normally."""

    def __init__(self, names: Sequence[str]):
        self.names, self.thread = tuple(names), threading.get_ident()

    def find_spec(self, fullname, path=None, target=None):
        if threading.get_ident() == self.thread and any(fullname == n or fullname.startswith(n + ".")
                                                        for n in self.names):
            raise ModuleNotFoundError(f"{fullname} is skipped while Keras is imported", name=fullname)
        return None


def import_keras():
    """`import keras` (and TensorFlow) without KERAS_SKIPPED_EXTRAS when Keras is not imported yet.

    Only Keras' own optional features that need them are off in this process; the packages
    themselves import normally afterwards (the Evaluation page's ROC curves use scikit-learn).
    """
    if "keras" in sys.modules or os.environ.get(KERAS_EXTRAS_ENV) == "1":
        import keras

        return keras
    hook = _SkipInThisThread([n for n in KERAS_SKIPPED_EXTRAS if n not in sys.modules])
    sys.meta_path.insert(0, hook)
    try:
        import keras
    finally:
        sys.meta_path.remove(hook)
    return keras


def _load_keras_file(folder: Path, model_id: str):
    keras = import_keras()
    from . import layers  # noqa: F401  (registers the custom layers a model may hold)

    try:
        return keras.models.load_model(Path(folder) / store.MODEL_FILE, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001  (any failure to deserialise means "unavailable")
        raise ModelUnavailable(f"Model {model_id!r} could not be loaded: {type(exc).__name__}: {exc}") from exc


def load(model_id: str, root: Optional[Path] = None, backend: str = "auto") -> ZooModel:
    """Load a zoo model after checking its file against the card (safe_mode: no arbitrary code).

    backend "auto": LiteRT when the model has an intact export and ai-edge-litert is installed,
    else Keras (loaded now, so a damaged file is reported here); "keras": always Keras (the
    trainer measures with the model it trained).
    """
    from . import linear_head, litert

    folder = model_folder(model_id, root)
    card = store.read_json(folder / store.CARD_FILE)
    status, reason = check_model_file(folder, card)
    if status != "ok":
        raise ModelUnavailable(f"Model {model_id!r} is unavailable: {reason}")
    card.setdefault("id", model_id)
    card["folder"] = str(folder)
    if linear_head.is_linear_head(card):          # LiteRT only, whatever `backend` asks for
        runner, why = linear_head.load_runner(folder, card)
        if runner is None:
            raise ModelUnavailable(f"Model {model_id!r} is unavailable: {why}")
        return ZooModel(card=card, folder=folder, runner=runner)
    runner, why = litert.load_runner(folder, card) if backend == "auto" else (None, f"backend={backend}")
    model = ZooModel(card=card, folder=folder, runner=runner, backend_reason=why)
    if runner is None:
        model.keras_model                     # load now: a damaged file is reported by load()
    return model
