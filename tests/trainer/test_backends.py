"""Training on Keras' JAX backend without TensorFlow (fit only), then publishing where TensorFlow is;
the array batches that replace tf.data there; the time budget; where a card says it was trained."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from trainer.batches import ArrayBatches
from trainer.cli import build_parser, config_from_args
from trainer.data import ImageSet
from trainer.distribute import StrategyInfo
from trainer.train import FIT_RECORD, fitted_on, record_phase, run

ROOT = Path(__file__).resolve().parents[2]
TINY = ["-a", "custom_cnn", "-d", "isic_9class", "--input-size", "48", "--limit-per-class", "5", "--batch-size", "16",
        "--bootstrap", "20", "--verbose", "0", "--no-tensorboard", "--augment", "default"]


def _set(labels: list[int], classes: int = 3) -> ImageSet:
    """Images whose every pixel holds their own index, so a batch shows which examples it drew."""
    images = np.stack([np.full((4, 4, 3), i, np.uint8) for i in range(len(labels))])
    return ImageSet(images, np.array(labels, np.int32), [f"im{i}" for i in range(len(labels))],
                    [f"c{k}" for k in range(classes)], [])


def _drawn(batches: ArrayBatches) -> tuple[np.ndarray, np.ndarray]:
    """(example indices, one-hot labels) over one epoch."""
    xs, ys = zip(*(batches[i] for i in range(len(batches))))
    return np.concatenate([np.asarray(x)[:, 0, 0, 0] for x in xs]).astype(int), np.concatenate(ys)


def test_array_batches_shuffle_each_epoch_and_keep_labels_with_images():
    labels = [0, 1, 2, 0, 1, 2, 0, 0, 0, 1]
    batches = ArrayBatches(_set(labels), batch_size=4, training=True, seed=1)
    first, onehot = _drawn(batches)
    assert sorted(first) == list(range(10)) and len(batches) == 3
    assert np.array_equal(onehot.argmax(1), np.array(labels)[first]) and onehot.sum() == 10
    batches.on_epoch_end()
    second, _ = _drawn(batches)
    assert sorted(second) == list(range(10)) and not np.array_equal(first, second)
    evaluation = ArrayBatches(_set(labels), batch_size=4, training=False)
    assert np.array_equal(_drawn(evaluation)[0], np.arange(10))


def test_array_batches_balanced_sampling_draws_classes_equally():
    labels = [0] * 90 + [1] * 9 + [2] * 1
    batches = ArrayBatches(_set(labels), batch_size=50, training=True, balance="sampling", seed=3)
    counts = np.zeros(3)
    for _ in range(20):
        counts += _drawn(batches)[1].sum(0)
        batches.on_epoch_end()
    shares = counts / counts.sum()
    assert np.all(np.abs(shares - 1 / 3) < 0.04), shares        # 2000 draws; imbalanced set would give 0.9 / 0.09 / 0.01


def test_array_batches_augment_and_mix_in_training_only():
    def augment(x, training=True):
        return x + 1000.0

    def mix(x, y):
        return x * 2.0, y * 0.5

    image_set = _set([0, 1, 2, 1])
    x, y = ArrayBatches(image_set, 4, True, augment=augment, mix=mix)[0]
    assert np.all(np.asarray(x) >= 2000.0) and np.allclose(np.asarray(y).sum(1), 0.5)
    x, y = ArrayBatches(image_set, 4, False, augment=augment, mix=mix)[0]
    assert np.asarray(x).max() < 4 and np.allclose(y.sum(1), 1.0)


def _info(hardware: str, backend: str = "tensorflow") -> StrategyInfo:
    return StrategyInfo("SingleDevice", ["gpu:0"], 1, True, "single", False, hardware, backend)


def test_card_names_the_machine_that_trained_and_the_one_that_evaluated(tmp_path):
    gpu = _info("1 x GPU (NVIDIA H200); 16 CPU cores; Keras jax backend", "jax")
    record_phase(tmp_path, "head", 30.0, gpu)
    record_phase(tmp_path, "finetune", 200.0, gpu)
    record_phase(tmp_path, "finetune", 50.0, gpu)                   # resumed once on the same machine
    seconds, strategy = fitted_on(tmp_path, _info("2 CPU cores (Xeon), no GPU"))
    assert seconds == {"head": 30.0, "finetune": 250.0}
    assert strategy["hardware"] == gpu.hardware and strategy["backend"] == "jax"
    assert strategy["evaluated_on"] == "2 CPU cores (Xeon), no GPU"
    local = _info("2 CPU cores (Xeon), no GPU")
    (tmp_path / FIT_RECORD).unlink()
    assert fitted_on(tmp_path, local) == ({}, local.as_dict())


def _config(*extra: str, run_dir: Path, data_dir: Path, zoo: Path):
    return config_from_args(build_parser().parse_args(
        ["train", *TINY, *extra, "--run-dir", str(run_dir), "--data-dir", str(data_dir), "--zoo-dir", str(zoo)]))


def test_time_budget_ends_the_phase_cleanly_and_fit_only_publishes_nothing(tmp_path, data_dir):
    run_dir, zoo = tmp_path / "run", tmp_path / "zoo"
    config = _config("--epochs", "4", "--fit-only", "--max-minutes", "0.01", run_dir=run_dir, data_dir=data_dir,
                     zoo=zoo)
    assert run(config) is None and not zoo.exists()
    history = (run_dir / "history_full.csv").read_text().strip().splitlines()
    assert len(history) == 2                                        # header + the one epoch the budget allowed
    assert json.loads((run_dir / "phase_full.done").read_text())["done"]
    assert "full" in json.loads((run_dir / FIT_RECORD).read_text())["phases"]
    with h5py.File(run_dir / "best.weights.h5") as weights:      # the model's weights only, no optimizer state
        assert "layers" in weights and "optimizer" not in weights


def test_jax_backend_fits_without_tensorflow_then_tensorflow_publishes_the_same_weights(tmp_path, data_dir):
    """The GPU-machine path: Keras on JAX with TensorFlow unimportable fits; --resume here evaluates."""
    pytest.importorskip("jax")
    blocker = tmp_path / "no_tf" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('TensorFlow is blocked in this test')\n")
    run_dir, zoo = tmp_path / "run", tmp_path / "zoo"
    args = [*TINY, "--epochs", "2", "--mix", "mixup", "--run-dir", str(run_dir), "--data-dir", str(data_dir),
            "--zoo-dir", str(zoo)]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(blocker.parent), str(ROOT)])}
    done = subprocess.run([sys.executable, "-m", "trainer", "train", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Keras jax backend" in done.stderr and "isic_9class test:" not in done.stderr    # test split untouched
    assert not zoo.exists() and (run_dir / "phase_full.done").is_file()
    best = json.loads((run_dir / "best.json").read_text())

    folder = run(config_from_args(build_parser().parse_args(["train", *args, "--resume"])))
    card = json.loads((folder / "card.json").read_text())
    assert card["training"]["backend"] == "jax" and "Keras jax backend" in card["training"]["hardware"]
    assert "no GPU" in card["training"]["evaluated_on"] and "jax" not in card["training"]["evaluated_on"]
    assert card["training"]["phases"]["full"] > 0
    validation = json.loads((folder / "metrics.json").read_text())["validation"]["balanced_accuracy"]
    assert validation == pytest.approx(best["value"], abs=1e-6)     # JAX-trained weights, same result under TF
