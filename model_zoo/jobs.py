"""Full training runs started from the app: `python -m trainer train ...` in a background process that outlives
the browser tab, found again through a small JSON state file per run.

    runs/<run_id>/job.json     what was started, the process ids, the status (starting, running, finished,
                               failed, cancelled, lost) and the exit code
    runs/<run_id>/train.log    the trainer's output (the page shows its tail)
    runs/<run_id>/trainer/     the trainer's --run-dir: checkpoints, history_<phase>.csv (one row per finished
                               epoch: the progress bar), config.json

The app starts a watcher (`python -m model_zoo.jobs watch RUN_DIR`) in a session of its own; the watcher starts
the trainer, waits for it and writes its exit code to job.json, so the page learns how a run ended even after the
app itself was restarted. Cancel marks the job cancelled, then signals the watcher's whole process group (the
watcher and the trainer, nothing else). The app never imports the trainer (or TensorFlow) for any of this.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from . import store
from .datadir import NAME_PATTERN, REPO_ROOT

TRAINING_ENV = "DERMLAB_ALLOW_TRAINING"       # "1": the Train page may fit and start models (off by default)
RUNS_ENV = "DERMLAB_RUNS"                     # where runs live (default: runs/ in the repository)
JOB_FILE, LOG_FILE, TRAINER_DIR = "job.json", "train.log", "trainer"
ACTIVE = ("starting", "running")
# trainer/architectures (the app does not import the trainer; tests check this list against it)
ARCHITECTURES = ("mobilenet_v2", "efficientnet_lite0", "efficientnet_b0", "resnet50", "densenet121", "vgg16",
                 "squeezenet_v1_1", "custom_cnn")
FROM_SCRATCH = ("custom_cnn",)
LOG_TAIL_BYTES = 16_384


def training_allowed() -> bool:
    """Whether this copy of the app may train: only when $DERMLAB_ALLOW_TRAINING is "1" (never on a hosted copy
    unless its owner says so: training takes the machine's cores for minutes to hours)."""
    return os.environ.get(TRAINING_ENV, "").strip() == "1"


def runs_dir() -> Path:
    return Path(os.environ.get(RUNS_ENV) or REPO_ROOT / "runs")


@dataclass
class Job:
    """One background run, as its job.json describes it."""

    folder: Path
    state: dict

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def status(self) -> str:
        return self.state.get("status", "lost")

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def log_path(self) -> Path:
        return self.folder / LOG_FILE

    def progress(self) -> tuple[int, int]:
        """(epochs finished, epochs planned), from the trainer's per-phase history files."""
        files = sorted((self.folder / TRAINER_DIR).glob("history_*.csv"))
        done = sum(max(0, len(f.read_text().strip().splitlines()) - 1) for f in files)
        planned = int(self.state.get("epochs_planned") or 1)
        if any(f.name == "history_full.csv" for f in files):      # no ImageNet weights here: trained from scratch
            planned = int(self.state.get("epochs") or planned)
        if self.status == "finished":
            planned = done = max(done, 1)
        return min(done, planned), planned

    def log_tail(self, lines: int = 25) -> str:
        """The last lines of the trainer's output (carriage-return progress bars reduced to their last state)."""
        if not self.log_path.is_file():
            return ""
        with open(self.log_path, "rb") as handle:
            handle.seek(max(0, self.log_path.stat().st_size - LOG_TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
        rows = [row.split("\r")[-1] for row in text.splitlines()]
        return "\n".join(rows[-lines:])


# ---------------------------------------------------------------- starting
def train_command(architecture: str, dataset: str, model_id: str, run_dir: Path, options: dict,
                  data_dir: Optional[Path] = None, zoo_dir: Optional[Path] = None) -> list[str]:
    """The trainer's command line: `python -m trainer train -a ... -d ... --model-id ... --run-dir ...` and
    `options` as flags ({"epochs": 5} -> --epochs 5; True -> a bare flag; None/False left out)."""
    command = [sys.executable, "-m", "trainer", "train", "-a", architecture, "-d", dataset, "--model-id", model_id,
               "--run-dir", str(run_dir), "--verbose", "2"]
    if data_dir:
        command += ["--data-dir", str(data_dir)]
    if zoo_dir:
        command += ["--zoo-dir", str(zoo_dir)]
    for key, value in options.items():
        if value is None or value is False:
            continue
        command.append("--" + key.replace("_", "-"))
        if value is not True:
            command.append(str(value))
    return command


def start(architecture: str, dataset: str, model_id: str, options: Optional[dict] = None,
          data_dir: Optional[Path] = None, zoo_dir: Optional[Path] = None, root: Optional[Path] = None) -> Job:
    """Start a training run in the background; returns its Job at once (status "starting")."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}.")
    if not NAME_PATTERN.match(model_id or "") or not NAME_PATTERN.match(dataset or ""):
        raise ValueError("The model id and the dataset must be plain names (lower-case letters, digits, '_', '-').")
    options = dict(options or {})
    root = Path(root or runs_dir())
    folder = root / f"{model_id}-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True, exist_ok=False)
    epochs = int(options.get("epochs") or 10)
    head = 0 if architecture in FROM_SCRATCH else int(options.get("head_epochs", 3) or 0)
    state = {"model_id": model_id, "dataset": dataset, "architecture": architecture, "options": options,
             "command": train_command(architecture, dataset, model_id, folder / TRAINER_DIR, options, data_dir,
                                      zoo_dir),
             "status": "starting", "started": _now(), "epochs": epochs, "epochs_planned": head + epochs}
    store.write_json_atomic(folder / JOB_FILE, state)
    watcher = subprocess.Popen([sys.executable, "-m", "model_zoo.jobs", "watch", str(folder)], cwd=REPO_ROOT,
                               env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, start_new_session=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _update(folder, watcher_pid=watcher.pid, watcher_started=_start_time(watcher.pid))
    _CHILDREN[watcher.pid] = watcher          # reaped by refresh(), so a finished watcher is no zombie
    return load(folder)


_CHILDREN: dict[int, subprocess.Popen] = {}


def watch(folder: Path) -> int:
    """The watcher: run the trainer with its output in train.log; record its pid, then its exit code."""
    folder = Path(folder)
    deadline = time.time() + 30               # start() records this watcher's pid first: then no write is lost
    while store.read_json(folder / JOB_FILE).get("watcher_pid") != os.getpid() and time.time() < deadline:
        time.sleep(0.05)
    state = store.read_json(folder / JOB_FILE)
    if state.get("status") == "cancelled":
        return 1
    with open(folder / LOG_FILE, "ab") as log:
        trainer = subprocess.Popen(state["command"], cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        _update(folder, status="running", trainer_pid=trainer.pid)
        code = trainer.wait()
    if store.read_json(folder / JOB_FILE).get("status") != "cancelled":
        _update(folder, status="finished" if code == 0 else "failed", returncode=code, finished=_now())
    return code


# ---------------------------------------------------------------- finding and stopping
def load(folder: Path) -> Job:
    return refresh(Job(Path(folder), store.read_json(Path(folder) / JOB_FILE)))


def list_jobs(root: Optional[Path] = None) -> list[Job]:
    """Every run started from the app, newest first, statuses brought up to date."""
    root = Path(root or runs_dir())
    folders = [p for p in root.glob(f"*/{JOB_FILE}")] if root.is_dir() else []
    jobs = []
    for path in folders:
        try:
            jobs.append(load(path.parent))
        except (OSError, ValueError):
            continue                          # a job.json being replaced right now: next refresh
    return sorted(jobs, key=lambda j: j.state.get("started", ""), reverse=True)


def refresh(job: Job) -> Job:
    """A job whose watcher is gone without writing an outcome (machine restarted, process killed) is "lost"."""
    pid = job.state.get("watcher_pid")
    if job.active and pid and not _alive(int(pid), job.state.get("watcher_started")):
        state = store.read_json(job.folder / JOB_FILE)        # the watcher may have just written its outcome
        if state.get("status") in ACTIVE:
            state = _update(job.folder, status="lost", finished=_now())
        job = Job(job.folder, state)
    return job


def cancel(job: Job, grace: float = 5.0) -> Job:
    """Mark the job cancelled and stop its process group: SIGTERM, then SIGKILL after `grace` seconds."""
    job = load(job.folder)                        # the latest pids
    if not job.active:
        return job
    _update(job.folder, status="cancelled", finished=_now())
    group = _group(job)
    if group is not None:
        os.killpg(group, signal.SIGTERM)
        deadline = time.time() + grace
        while time.time() < deadline and _group(job) is not None:
            time.sleep(0.1)
        if _group(job) is not None:
            os.killpg(group, signal.SIGKILL)
    _update(job.folder, status="cancelled")       # again: the watcher may have written "running" meanwhile
    return load(job.folder)


def _group(job: Job) -> Optional[int]:
    """The process group of the job's watcher and trainer while one of them still runs (else None). The watcher
    leads a session of its own, so the group holds those two processes and nothing else."""
    watcher, trainer = job.state.get("watcher_pid"), job.state.get("trainer_pid")
    if watcher and _alive(int(watcher), job.state.get("watcher_started")):
        return int(watcher)
    try:
        if trainer and watcher and _alive(int(trainer)) and os.getpgid(int(trainer)) == int(watcher):
            return int(watcher)
    except ProcessLookupError:
        pass
    return None


def _alive(pid: int, started: Optional[float] = None) -> bool:
    """Whether `pid` runs (not a zombie), and is the same process that was started (start time)."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.is_file():
        fields = stat.read_text().rsplit(")", 1)[-1].split()
        if fields[0] == "Z":
            return False
        if started is not None and abs(float(fields[19]) - float(started)) > 1:
            return False                       # the id was reused by another process
    return True


def _start_time(pid: int) -> Optional[float]:
    """The process's start time in clock ticks since boot (Linux), to tell it from a later process of that id."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        return float(stat.read_text().rsplit(")", 1)[-1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _update(folder: Path, **changes) -> dict:
    state = store.read_json(folder / JOB_FILE)
    state.update(changes)
    store.write_json_atomic(folder / JOB_FILE, state)
    return state


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "watch":
        return watch(Path(args[1]))
    print("usage: python -m model_zoo.jobs watch RUN_DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
