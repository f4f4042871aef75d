"""Small training-loop additions, one class each (after fastai's callbacks)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dermlab")
class BalancedAccuracy(keras.metrics.Metric):
    """Mean per-class recall over the classes seen so far (streaming; works under tf.distribute)."""

    def __init__(self, num_classes: int, name: str = "balanced_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.hits = self.add_variable(shape=(num_classes,), initializer="zeros", name="hits")
        self.counts = self.add_variable(shape=(num_classes,), initializer="zeros", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth = ops.cast(y_true, "float32")                       # one-hot (n, k)
        predicted = ops.one_hot(ops.argmax(y_pred, axis=-1), self.num_classes)
        self.hits.assign_add(ops.sum(truth * ops.cast(predicted, "float32"), axis=0))
        self.counts.assign_add(ops.sum(truth, axis=0))

    def result(self):
        seen = ops.cast(self.counts > 0, "float32")
        recall = ops.divide_no_nan(self.hits, self.counts)
        return ops.divide_no_nan(ops.sum(recall * seen), ops.sum(seen))

    def reset_state(self):
        self.hits.assign(ops.zeros((self.num_classes,)))
        self.counts.assign(ops.zeros((self.num_classes,)))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


class EpochTimer(keras.callbacks.Callback):
    """Adds the epoch's wall time (seconds) to the logs, so CSV history records it."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


def phase_marker(run_dir: Path, phase: str) -> Path:
    """Where a finished phase leaves its marker; --resume skips phases that have one."""
    return Path(run_dir) / f"phase_{phase}.done"


def mark_phase_done(run_dir: Path, phase: str, **details) -> None:
    """Writes the phase's marker (the one format every training loop uses); `details` say why, if unusual."""
    phase_marker(run_dir, phase).write_text(json.dumps({"phase": phase, "done": True, **details}))


class PhaseMarker(keras.callbacks.Callback):
    """Marks the phase done when `fit` ends normally, so --resume can skip finished phases."""

    def __init__(self, run_dir: Path, phase: str):
        super().__init__()
        self.run_dir, self.phase = Path(run_dir), phase

    def on_train_end(self, logs=None):
        if not getattr(self.model, "stop_training_interrupted", False):
            mark_phase_done(self.run_dir, self.phase)


class TimeBudget(keras.callbacks.Callback):
    """Stops training when the next epoch would end after `deadline` (a time.time() value).

    The phase then ends like an early stop: its best weights and its 'done' marker are kept, so
    a run on a rented machine ends usable rather than killed half-way.
    """

    def __init__(self, deadline: float):
        super().__init__()
        self.deadline = deadline

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        now = time.time()
        if now + (now - self._start) > self.deadline:
            self.model.stop_training = True
