"""Several workers on localhost: `python -m trainer launch` starts two processes with TF_CONFIG, they train
with MultiWorkerMirroredStrategy and the custom loop (trainer/loop.py), and the chief alone publishes.

Bounded for CI: custom_cnn at 32 px, 4 images per class (32 train images: 2 steps of 16), 3 epochs.
"""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import model_zoo
from trainer.cli import main
from trainer.launch import plan, tf_config

ROOT = Path(__file__).resolve().parents[2]
MODEL_ID = "custom_cnn_isic_9class"
TRAIN = ["train", "-a", "custom_cnn", "-d", "isic_9class", "--input-size", "32", "--limit-per-class", "4",
         "--batch-size", "8", "--epochs", "3", "--augment", "none", "--bootstrap", "20", "--verbose", "0",
         "--no-tensorboard", "--early-stopping-patience", "10"]
LOSS_RTOL = 1e-4          # per-step and per-epoch losses, two workers vs one process with two devices
WEIGHT_ATOL = 1e-4        # every weight of the published models (kernels, BatchNorm statistics)
TIMEOUT = 300


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "DERMLAB_LOGICAL_CPUS")}
    return {**env, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _train_args(base: Path, data_dir: Path, *extra: str) -> list[str]:
    return [*TRAIN, "--run-dir", str(base / "run"), "--zoo-dir", str(base / "zoo"), "--data-dir", str(data_dir), *extra]


def _launch_cmd(base: Path, data_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "trainer", "launch", "--local", "2", "--", *_train_args(base, data_dir, *extra)]


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _weights(zoo: Path) -> list[np.ndarray]:
    return model_zoo.load(MODEL_ID, zoo).keras_model.get_weights()


def _wait_for(predicate, process: subprocess.Popen, seconds: float = TIMEOUT) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline and process.poll() is None and not predicate():
        time.sleep(0.1)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory, data_dir) -> dict:
    """A 2-worker run through the launcher, interrupted and resumed (one run serves all checks, to keep CI
    short): SIGKILL worker 1 once both workers have an epoch checkpoint, then relaunch with --resume."""
    base = tmp_path_factory.mktemp("two_workers")
    log_path = base / "killed.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(_launch_cmd(base, data_dir), cwd=ROOT, env=_env(), stdout=log,
                                   stderr=subprocess.STDOUT)
    index_files = [base / run / "checkpoints_full" / "checkpoint" for run in ("run", "run.worker_1")]
    _wait_for(lambda: all(p.is_file() for p in index_files), process)
    assert process.poll() is None, "the run ended before a worker could be killed:\n" + log_path.read_text()[-3000:]
    pid = int(re.search(r"\[launch\] worker 1 pid (\d+)", log_path.read_text()).group(1))
    os.kill(pid, signal.SIGKILL)
    killed = {"code": process.wait(timeout=60), "log": log_path.read_text(),
              "zoo": sorted(p.name for p in (base / "zoo").iterdir()) if (base / "zoo").exists() else [],
              "history": _rows(base / "run" / "history_full.csv")}
    result = subprocess.run(_launch_cmd(base, data_dir, "--resume"), cwd=ROOT, env=_env(), capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return {"base": base, "killed": killed, "output": result.stdout}


def test_two_workers_finish_and_only_the_chief_publishes(two_workers, test_images):
    base, output = two_workers["base"], two_workers["output"]
    zoo = base / "zoo"
    assert sorted(p.name for p in zoo.iterdir()) == [MODEL_ID], "one model, no temporary folder left"
    assert "Worker worker:1 finished; the chief publishes the model." in output
    assert re.search(r"\[worker 0\] .*Published custom_cnn_isic_9class", output)
    assert not re.search(r"\[worker 1\] .*Published", output)
    assert (base / "run.worker_1" / "checkpoints_full").is_dir(), "the non-chief checkpoints beside the chief"
    card = json.loads((zoo / MODEL_ID / "card.json").read_text())
    assert card["training"]["strategy"] == "MultiWorkerMirroredStrategy"
    assert card["training"]["num_replicas"] == 2
    assert [int(r["epoch"]) for r in _rows(zoo / MODEL_ID / "history.csv")] == [1, 2, 3]
    for name in ("model.keras", "metrics.json", "predictions.csv"):
        assert (zoo / MODEL_ID / name).is_file(), name
    from PIL import Image

    proba = model_zoo.load(MODEL_ID, zoo).predict([Image.open(p) for p, _ in test_images[:3]])
    assert proba.shape == (3, 9)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_killed_worker_fails_the_run_and_resume_continues_from_the_checkpoint(two_workers):
    """The launcher stops the chief when worker 1 dies and fails; nothing reaches the zoo. On --resume both
    workers restore the same epoch checkpoint and train only the remaining epochs."""
    killed, output = two_workers["killed"], two_workers["output"]
    assert killed["code"] != 0 and "[launch] failed with exit code" in killed["log"], killed["log"][-3000:]
    assert killed["zoo"] == []
    resumed = {int(w): int(e) for w, e in re.findall(r"\[worker (\d)\] .*resumed from the epoch-(\d+) checkpoint",
                                                       output)}
    assert set(resumed) == {0, 1} and len(set(resumed.values())) == 1, resumed
    done = resumed[0]
    assert 1 <= done < 3
    after = _rows(two_workers["base"] / "zoo" / MODEL_ID / "history.csv")
    assert [int(r["epoch"]) for r in after] == [1, 2, 3]
    for old, new in zip(killed["history"][:done], after[:done]):   # restored, not retrained: even the timings match
        assert old["epoch_seconds"] == new["epoch_seconds"] and old["loss"] == new["loss"]
    assert sum(f"Phase full epoch {e}/3" in output for e in (1, 2, 3)) == 3 - done, "only the remaining epochs ran"


def test_two_workers_match_one_process_with_two_devices(two_workers, tmp_path, data_dir):
    """The same custom loop in one process, uninterrupted, with MirroredStrategy over 2 logical CPUs: the same
    2 replicas and the same global batch of 16 split the same way (first half to replica 0), so every step sees
    the same data. BatchNorm uses per-replica batch statistics in both, which is why a 1-replica run is not the
    reference. Agreement also shows the interrupted and resumed run equals an uninterrupted one."""
    base = two_workers["base"]
    single = tmp_path / "single"
    result = subprocess.run([sys.executable, "-m", "trainer", *_train_args(single, data_dir)], cwd=ROOT,
                            env=_env(DERMLAB_LOGICAL_CPUS="2", DERMLAB_CUSTOM_LOOP="1"), capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-4000:]
    card = json.loads((single / "zoo" / MODEL_ID / "card.json").read_text())
    assert card["training"]["strategy"] == "MirroredStrategy" and card["training"]["num_replicas"] == 2
    steps = [float(r["loss"]) for r in _rows(base / "run" / "steps_full.csv")]
    steps_single = [float(r["loss"]) for r in _rows(single / "run" / "steps_full.csv")]
    assert len(steps) == len(steps_single) == 6                            # 3 epochs x ceil(32 / 16)
    np.testing.assert_allclose(steps, steps_single, rtol=LOSS_RTOL)
    assert steps[-1] < steps[0] - 0.05, "the loss should fall: the model trains"
    for column in ("loss", "val_loss", "val_balanced_accuracy"):
        np.testing.assert_allclose([float(r[column]) for r in _rows(base / "run" / "history_full.csv")],
                                   [float(r[column]) for r in _rows(single / "run" / "history_full.csv")],
                                   rtol=LOSS_RTOL, err_msg=column)
    for a, b in zip(_weights(base / "zoo"), _weights(single / "zoo"), strict=True):
        np.testing.assert_allclose(a, b, atol=WEIGHT_ATOL)


def test_launcher_arguments(capsys):
    assert tf_config(["a:1", "b:2"], 1) == {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    workers, command = plan(["--", "train", "-a", "custom_cnn"], workers="h1:2222,h2:2222", index=1)
    assert workers == ["h1:2222", "h2:2222"] and command == ["train", "-a", "custom_cnn"]
    assert len(plan(["train"], local=3)[0]) == 3
    for kwargs, message in [(dict(workers="h1:2222,h2:2222"), "on each host with --index"),
                            (dict(workers="h1:2222", index=1), "outside"),
                            (dict(workers="h1"), "HOST:PORT"),
                            (dict(local=2, index=0), "not with --local"),
                            (dict(), "either --workers")]:
        with pytest.raises(ValueError, match=message):
            plan(["train"], **kwargs)
    with pytest.raises(ValueError, match="train command"):
        plan(["evaluate", "x"], local=2)
    assert main(["launch", "--workers", "h1:2222,h2:2222", "--", "train", "-a", "custom_cnn"]) == 2
    assert "--index" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["launch", "--help"])
    assert exit_info.value.code == 0
    assert "--workers" in capsys.readouterr().out


def test_index_runs_this_hosts_worker_with_its_tf_config(monkeypatch):
    """--index: TF_CONFIG for this worker, then the train command in this process (stubbed here)."""
    import trainer.cli

    seen = {}

    def fake_main(argv):
        seen.update(argv=argv, tf_config=json.loads(os.environ["TF_CONFIG"]))
        return 7

    real_main = trainer.cli.main
    monkeypatch.setenv("TF_CONFIG", "")              # restored after the test
    monkeypatch.setattr(trainer.cli, "main", fake_main)
    assert real_main(["launch", "--workers", "h1:2222,h2:2223", "--index", "1", "--", "train", "-a", "custom_cnn"]) == 7
    assert seen["argv"] == ["train", "-a", "custom_cnn"]
    assert seen["tf_config"] == tf_config(["h1:2222", "h2:2223"], 1)
