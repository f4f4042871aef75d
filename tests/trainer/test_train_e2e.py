"""Real, tiny trainings on real images, end to end through the CLI functions and the zoo API."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

import model_zoo
from trainer.cli import build_parser, config_from_args, main
from trainer.train import run

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--input-size", "64", "--limit-per-class", "6", "--batch-size", "16", "--bootstrap", "50",
        "--verbose", "0", "--no-tensorboard"]


def _config(*extra: str, run_dir: Path, zoo: Path, data_dir: Path):
    args = build_parser().parse_args(["train", *extra, *TINY, "--run-dir", str(run_dir), "--zoo-dir", str(zoo),
                                      "--data-dir", str(data_dir)])
    return config_from_args(args)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    """A custom CNN trained for 2 epochs on 6 images per class, published to a scratch zoo."""
    base = tmp_path_factory.mktemp("e2e")
    zoo = base / "zoo"
    config = _config("-a", "custom_cnn", "-d", "isic_9class", "--epochs", "2", run_dir=base / "run", zoo=zoo,
                     data_dir=data_dir)
    folder = run(config)
    return folder, zoo


def test_published_folder_is_complete(trained):
    folder, _ = trained
    for name in ("model.keras", "card.json", "metrics.json", "history.csv", "predictions.csv"):
        assert (folder / name).is_file(), name
    card = json.loads((folder / "card.json").read_text())
    for key in ("id", "display_name", "architecture", "dataset", "classes", "input_size", "preprocessing",
                "pretrained", "trained_on", "sha256", "training"):
        assert key in card, key
    assert card["input_size"] == [64, 64] and len(card["classes"]) == 9
    assert card["training"]["seconds"] > 0 and "CPU" in card["training"]["hardware"]


def test_model_loads_and_predicts_probabilities(trained, test_images):
    folder, zoo = trained
    model = model_zoo.load(folder.name, zoo)
    from PIL import Image

    images = [Image.open(p) for p, _ in test_images[:3]] + [Image.open(test_images[0][0]).convert("L").resize((300, 100))]
    proba = model.predict(images)
    assert proba.shape == (4, 9) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_metrics_json_matches_sklearn_on_saved_predictions(trained):
    folder, _ = trained
    metrics = json.loads((folder / "metrics.json").read_text())
    classes = json.loads((folder / "card.json").read_text())["classes"]
    with open(folder / "predictions.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "test"]
    y = np.array([classes.index(r["true"]) for r in rows])
    proba = np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows])
    pred = proba.argmax(1)
    test = metrics["test"]
    assert test["n"] == len(rows)
    assert test["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert test["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert test["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", labels=range(9), zero_division=0))
    assert test["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=range(9)).tolist()


def test_history_has_one_row_per_epoch(trained):
    folder, _ = trained
    with open(folder / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"loss", "val_loss", "val_balanced_accuracy", "phase"} <= set(rows[0])


def test_evaluate_command_reproduces_metrics(trained, data_dir):
    folder, zoo = trained
    before = json.loads((folder / "metrics.json").read_text())["test"]["balanced_accuracy"]
    assert main(["evaluate", folder.name, "--zoo-dir", str(zoo), "--data-dir", str(data_dir), "--bootstrap", "20"]) == 0
    after = json.loads((folder / "metrics.json").read_text())["test"]["balanced_accuracy"]
    assert after == pytest.approx(before, abs=1e-6)


def test_two_phase_transfer_learning(tmp_path, data_dir, weights_dir):
    config = _config("-a", "mobilenet_v2", "-d", "ham10000", "--head-epochs", "1", "--epochs", "1",
                     "--imagenet-weights", str(weights_dir), "--hair", "0.5", run_dir=tmp_path / "run",
                     zoo=tmp_path / "zoo", data_dir=data_dir)
    folder = run(config)
    card = json.loads((folder / "card.json").read_text())
    assert "mobilenet_v2_1.0_224_imagenet_no_top.h5" in card["pretrained"]
    assert card["training"]["config"]["hair"] == 0.5
    assert set(card["training"]["phases"]) == {"head", "finetune"}
    assert card["classes"] == ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "trainer", *args]


def test_kill_mid_epoch_leaves_zoo_unchanged_and_resume_finishes(tmp_path, data_dir):
    """SIGKILL during epoch 2 of 3: nothing reaches the zoo; --resume completes the run."""
    zoo, run_dir = tmp_path / "zoo", tmp_path / "run"
    args = ["train", "-a", "custom_cnn", "-d", "isic_9class", "--epochs", "3", *TINY, "--run-dir", str(run_dir),
            "--zoo-dir", str(zoo), "--data-dir", str(data_dir), "--early-stopping-patience", "10"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(_cli(*args), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = run_dir / "history_full.csv"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if history.is_file() and len(history.read_text().strip().splitlines()) >= 2:   # header + epoch 1
            break
        time.sleep(0.2)
    assert process.poll() is None, "trainer ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not zoo.exists() or [p for p in zoo.iterdir() if not p.name.startswith(".")] == []
    result = subprocess.run(_cli(*args, "--resume"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(zoo / "custom_cnn_isic_9class" / "history.csv") as handle:
        epochs = [int(r["epoch"]) for r in csv.DictReader(handle)]
    assert epochs == [1, 2, 3], "the resumed run should continue after the last finished epoch"


class _Interrupted(RuntimeError):
    pass


def test_resume_inside_the_head_phase_still_fine_tunes_every_epoch(tmp_path, data_dir, weights_dir, monkeypatch):
    """A run stopped during head epoch 2 resumes there, and then fine-tunes all its epochs: Keras keeps the
    epoch that BackupAndRestore restored on the model, and used to start the next phase's fit there too."""
    import keras

    import trainer.train as train_module

    args = ["-a", "mobilenet_v2", "-d", "ham10000", "--head-epochs", "2", "--epochs", "2",
            "--imagenet-weights", str(weights_dir), "--early-stopping-patience", "10"]
    config = _config(*args, run_dir=tmp_path / "run", zoo=tmp_path / "zoo", data_dir=data_dir)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise _Interrupted("stopped during head epoch 2")

    make_callbacks = train_module.make_callbacks
    monkeypatch.setattr(train_module, "make_callbacks",
                        lambda config, run_dir, phase, *rest: make_callbacks(config, run_dir, phase, *rest)
                        + ([Interrupt()] if phase == "head" else []))
    with pytest.raises(_Interrupted):
        run(config)
    monkeypatch.setattr(train_module, "make_callbacks", make_callbacks)
    folder = run(_config(*args, "--resume", run_dir=tmp_path / "run", zoo=tmp_path / "zoo", data_dir=data_dir))
    with open(folder / "history.csv") as handle:
        phases = [row["phase"] for row in csv.DictReader(handle)]
    assert phases == ["head", "head", "finetune", "finetune"]


@pytest.mark.parametrize("command", ["prepare", "train", "evaluate", "tune", "calibrate", "subgroups", "ood", "tta", "ensemble", "report", "splits", "list", "set-default"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_bad_arguments_and_missing_data_are_clear(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit):
        main(["train", "-a", "not_a_model", "-d", "isic_9class"])
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "-a", "custom_cnn", "-d", "isic_9class", "--hair", "1.5"])
    assert "within 0..1" in capsys.readouterr().err
    monkeypatch.setenv("DERMLAB_DATA_DIR", str(tmp_path))
    code = main(["train", "-a", "custom_cnn", "-d", "isic_9class", "--data-dir", str(tmp_path / "missing"),
                 "--zoo-dir", str(tmp_path / "zoo"), "--run-dir", str(tmp_path / "run")])
    assert code == 2
    assert "isic_9class" in capsys.readouterr().err
    assert not (tmp_path / "zoo").exists()


def test_tune_runs_and_scores_on_validation(tmp_path, data_dir):
    from trainer.tune import OBJECTIVE, tune

    best = tune("custom_cnn", "isic_9class", data_dir=data_dir, max_trials=2, epochs=1, limit_per_class=4,
                directory=str(tmp_path / "tuner"), sizes=[48, 64], label_smoothing=0.1, initial_points=1)
    assert best["trials"] == 2
    assert 0.0 <= best[OBJECTIVE] <= 1.0
    assert set(best["hyperparameters"]) >= {"learning_rate", "dropout", "dense_units", "input_size"}
    scores = [trial[OBJECTIVE] for trial in best["all"]]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True) and scores[0] == best[OBJECTIVE]


def test_tune_scores_on_the_whole_validation_split(data_dir):
    """--limit-per-class shortens training only; trials are scored on every validation image."""
    from trainer.data import select
    from trainer.tune import make_hypermodel

    hypermodel = make_hypermodel("custom_cnn", "isic_9class", data_dir, [32], limit_per_class=3)
    train, val = hypermodel.image_sets(32)
    assert len(train.labels) <= 3 * 9
    assert len(val.labels) == len(select("isic_9class", "val")) > 9 * 3


def test_tune_trial_trains_the_head_then_the_searched_top_fraction(data_dir, weights_dir):
    """A pretrained trial: the head alone first, then only the top quarter of the backbone moves."""
    import keras_tuner
    import numpy as np

    from trainer.architectures import backbone_layers
    from trainer.tune import OBJECTIVE, make_hypermodel

    hypermodel = make_hypermodel("efficientnet_lite0", "isic_9class", data_dir, [32], limit_per_class=2,
                                 color_constancy=True, label_smoothing=0.1, head_epochs=1)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("fine_tune_fraction", 0.25)
    model = hypermodel.build(hp)
    assert model.get_layer("color_constancy") is not None
    convs = [layer for layer in backbone_layers(model) if layer.__class__.__name__ == "Conv2D"]
    before = {layer.name: layer.get_weights()[0].copy() for layer in (convs[0], convs[-1])}
    phases, fit = [], model.fit

    def recording_fit(*args, **kwargs):
        schedule = model.optimizer.get_config()["learning_rate"]["config"]     # CosineDecay with warm-up, as train
        phases.append((convs[-1].trainable, schedule["warmup_target"]))
        return fit(*args, **kwargs)

    model.fit = recording_fit
    history = hypermodel.fit(hp, model, epochs=1, verbose=0)
    assert phases == [(False, pytest.approx(1e-3)), (True, pytest.approx(hp.get("learning_rate")))]
    assert len(history.history[OBJECTIVE]) == 1             # the searched phase only
    assert np.array_equal(convs[0].get_weights()[0], before[convs[0].name])
    assert not np.array_equal(convs[-1].get_weights()[0], before[convs[-1].name])
