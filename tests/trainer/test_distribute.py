"""GPU-shaped paths exercised on CPU: mixed precision, and MirroredStrategy over two logical CPUs."""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import model_zoo
from trainer.architectures import create_model
from trainer.cli import build_parser, config_from_args
from trainer.distribute import set_mixed_precision
from trainer.train import run

ROOT = Path(__file__).resolve().parents[2]
TINY = ["-d", "isic_9class", "--input-size", "48", "--limit-per-class", "6", "--batch-size", "16",
        "--bootstrap", "20", "--verbose", "0", "--no-tensorboard", "--augment", "none", "--epochs", "3"]


def _train(tmp: Path, data_dir: Path, *extra: str) -> Path:
    args = build_parser().parse_args(["train", "-a", "custom_cnn", *TINY, *extra, "--run-dir", str(tmp / "run"),
                                      "--zoo-dir", str(tmp / "zoo"), "--data-dir", str(data_dir)])
    return run(config_from_args(args))


def test_softmax_stays_float32_under_mixed_precision():
    set_mixed_precision(True)
    try:
        model = create_model("custom_cnn", 4, input_size=32)
        assert model.get_layer("block1_conv1").compute_dtype == "float16"
        assert model.get_layer("pred").compute_dtype == "float32"
        out = model(np.zeros((1, 32, 32, 3), "float32"))
        assert out.dtype.name == "float32"
    finally:
        set_mixed_precision(False)


def test_mixed_precision_training_matches_float32(tmp_path, data_dir):
    mixed = _train(tmp_path / "mixed", data_dir, "--mixed-precision")
    plain = _train(tmp_path / "plain", data_dir)
    card = json.loads((mixed / "card.json").read_text())
    assert card["training"]["mixed_precision"] is True
    with open(mixed / "history.csv") as handle:
        losses = [float(r["loss"]) for r in csv.DictReader(handle)]
    assert all(math.isfinite(v) for v in losses)
    zoo_mixed = model_zoo.load(mixed.name, mixed.parent)
    assert zoo_mixed.keras_model.get_layer("block1_conv1").compute_dtype == "float32", "the zoo copy is float32"
    images = np.random.default_rng(0).uniform(0, 255, (4, 48, 48, 3)).astype("float32")
    proba = zoo_mixed.predict_arrays(images)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    acc_mixed = json.loads((mixed / "metrics.json").read_text())["test"]["accuracy"]
    acc_plain = json.loads((plain / "metrics.json").read_text())["test"]["accuracy"]
    assert abs(acc_mixed - acc_plain) <= 0.15, (acc_mixed, acc_plain)


MIRRORED_SCRIPT = r"""
import json, os, sys
import numpy as np
sys.path.insert(0, {root!r})
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from trainer.distribute import get_strategy
import keras, tensorflow as tf
strategy, info = get_strategy()
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (64, 48, 48, 3)).astype("float32")
y = keras.utils.to_categorical(rng.integers(0, 3, 64), 3)
from trainer.architectures import create_model
with strategy.scope():
    model = create_model("squeezenet_v1_1", 3, input_size=48, dropout=0.0)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy")
losses = []
class Record(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        losses.append(float(logs["loss"]))
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
model.fit(ds, epochs=2, verbose=0, callbacks=[Record()])
json.dump({{"replicas": info.num_replicas, "strategy": info.strategy, "losses": losses,
           "weights": float(sum(np.abs(w).sum() for w in model.get_weights())),
           "first_kernel": model.get_layer("conv1").get_weights()[0].ravel()[:50].tolist()}}, open(sys.argv[1], "w"))
"""


def _mirrored_run(tmp_path: Path, logical_cpus: int) -> dict:
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT.format(root=str(ROOT)))
    out = tmp_path / f"result_{logical_cpus}.json"
    env = {**os.environ, "DERMLAB_LOGICAL_CPUS": str(logical_cpus)}
    result = subprocess.run([sys.executable, str(script), str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def test_mirrored_strategy_on_two_logical_cpus_matches_one_device(tmp_path):
    """Same data, seed and global batch: per-step losses and final weights agree (no BatchNorm in SqueezeNet,
    so per-replica statistics cannot differ); tolerance 1e-4 relative."""
    single = _mirrored_run(tmp_path, 1)
    mirrored = _mirrored_run(tmp_path, 2)
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    assert mirrored["strategy"] == "MirroredStrategy"
    np.testing.assert_allclose(mirrored["losses"], single["losses"], rtol=1e-4)
    np.testing.assert_allclose(mirrored["first_kernel"], single["first_kernel"], rtol=1e-3, atol=1e-6)
    assert mirrored["weights"] == pytest.approx(single["weights"], rel=1e-4)
