"""Background training runs (model_zoo/jobs.py): started, followed through job.json after the starter is gone,
finished, failed, cancelled with their whole process group, lost; and one real trainer run into a scratch zoo."""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import model_zoo
from model_zoo import jobs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_helpers import FAKE_TRAINER  # noqa: E402


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """jobs.start runs a small script instead of the trainer (same files, same process layout)."""
    def use(epochs: int = 2, pause: float = 0.05, code: int = 0):
        script = FAKE_TRAINER.format(epochs=epochs, pause=pause, code=code)
        monkeypatch.setattr(jobs, "train_command", lambda arch, dataset, model_id, run_dir, *rest:
                            [sys.executable, "-c", script, str(run_dir)])
    monkeypatch.setenv(jobs.RUNS_ENV, str(tmp_path / "runs"))
    return use


def wait_for(job: jobs.Job, statuses: tuple[str, ...], seconds: float = 60) -> jobs.Job:
    deadline = time.time() + seconds
    while time.time() < deadline:
        job = jobs.load(job.folder)
        if job.status in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"{job.id} still {job.status}: {job.log_tail()}")


def test_training_is_off_unless_the_owner_allows_it(monkeypatch):
    monkeypatch.delenv(jobs.TRAINING_ENV, raising=False)
    assert not jobs.training_allowed()
    for value, allowed in (("0", False), ("yes", False), ("1", True)):
        monkeypatch.setenv(jobs.TRAINING_ENV, value)
        assert jobs.training_allowed() is allowed


def test_the_command_is_the_trainers_with_options_as_flags(tmp_path):
    command = jobs.train_command("mobilenet_v2", "my_set", "m1", tmp_path / "run",
                                 {"epochs": 4, "head_epochs": 1, "input_size": None, "no_tensorboard": True,
                                  "mixed_precision": False}, data_dir=tmp_path / "data")
    assert command[1:] == ["-m", "trainer", "train", "-a", "mobilenet_v2", "-d", "my_set", "--model-id", "m1",
                           "--run-dir", str(tmp_path / "run"), "--verbose", "2", "--data-dir", str(tmp_path / "data"),
                           "--epochs", "4", "--head-epochs", "1", "--no-tensorboard"]
    with pytest.raises(ValueError, match="Unknown architecture"):
        jobs.start("not_a_net", "my_set", "m1")
    with pytest.raises(ValueError, match="plain names"):
        jobs.start("mobilenet_v2", "../etc", "m1")


def test_the_architecture_list_is_the_trainers():
    from trainer.architectures import list_architectures

    assert set(jobs.ARCHITECTURES) == set(list_architectures())


def test_a_run_is_followed_from_its_files_to_the_end(fake, tmp_path):
    fake(epochs=3)
    job = jobs.start("mobilenet_v2", "my_set", "m1", {"epochs": 2, "head_epochs": 1})
    assert job.status in jobs.ACTIVE and job.progress()[1] == 3
    job = wait_for(job, ("finished",))
    assert job.progress() == (3, 3) and job.state["returncode"] == 0
    assert job.log_tail().splitlines()[-1] == "epoch 3"
    found = jobs.list_jobs()
    assert [j.id for j in found] == [job.id] and found[0].status == "finished"


def test_a_failing_run_keeps_its_exit_code(fake):
    fake(epochs=1, code=3)
    job = wait_for(jobs.start("custom_cnn", "my_set", "m2", {"epochs": 5}), ("failed",))
    assert job.state["returncode"] == 3 and job.progress() == (1, 5)      # custom_cnn: no head phase


def test_cancel_stops_the_watcher_and_the_trainer(fake):
    fake(epochs=1000, pause=0.2)
    job = wait_for(jobs.start("mobilenet_v2", "my_set", "m3", {"epochs": 1000}), ("running",))
    deadline = time.time() + 30
    while jobs.load(job.folder).progress()[0] == 0 and time.time() < deadline:
        time.sleep(0.1)
    job = jobs.load(job.folder)
    pids = [int(job.state["watcher_pid"]), int(job.state["trainer_pid"])]
    job = jobs.cancel(job, grace=5.0)
    assert job.status == "cancelled" and not job.active
    time.sleep(0.5)
    assert not any(jobs._alive(pid) for pid in pids)
    assert jobs.load(job.folder).status == "cancelled"


def test_a_run_whose_watcher_vanished_is_lost(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.setenv(jobs.RUNS_ENV, str(tmp_path / "runs"))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    folder = tmp_path / "runs" / "m4-20261202-000000"
    folder.mkdir(parents=True)
    (folder / jobs.JOB_FILE).write_text(json.dumps({"status": "running", "watcher_pid": gone.pid,
                                                     "started": "2026-12-02T00:00:00Z", "epochs_planned": 3}))
    assert [j.status for j in jobs.list_jobs()] == ["lost"]


@pytest.mark.slow
def test_a_real_training_run_lands_in_the_zoo(tmp_path, tmp_zoo, monkeypatch, data_dir):
    """The command the Train page starts is one the trainer accepts: a tiny run on a prepared folder dataset."""
    from trainer.prepare import prepare

    monkeypatch.setenv(jobs.RUNS_ENV, str(tmp_path / "runs"))
    source = tmp_path / "source"
    manifest = pd.read_csv(data_dir / "ham10000" / "manifest.csv")
    for label in ("mel", "nv"):
        (source / label).mkdir(parents=True)
        for path in manifest.loc[manifest["label"] == label, "path"].head(20):
            shutil.copy(data_dir / "ham10000" / path, source / label)
    prepare(source, "folders", "two", tmp_path / "data")
    job = jobs.start("custom_cnn", "two", "two_run", {"epochs": 1, "input_size": 48, "batch_size": 16,
                                                      "bootstrap": 20, "no_tensorboard": True},
                     data_dir=tmp_path / "data", zoo_dir=tmp_zoo)
    job = wait_for(job, ("finished", "failed", "lost"), seconds=300)
    assert job.status == "finished", job.log_tail(40)
    assert job.progress() == (1, 1)
    assert model_zoo.get_card("two_run", tmp_zoo)["classes"] == ["mel", "nv"]
    assert (job.folder / jobs.TRAINER_DIR / "history.csv").is_file() and os.path.getsize(job.log_path) > 0
