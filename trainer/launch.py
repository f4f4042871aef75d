"""Launcher for multi-worker training: sets TF_CONFIG for tf.distribute.MultiWorkerMirroredStrategy.

On real machines, run the same command on every host, each with its own index:

    host1$ python -m trainer launch --workers host1:2222,host2:2222 --index 0 -- train -a mobilenet_v2 -d ham10000
    host2$ python -m trainer launch --workers host1:2222,host2:2222 --index 1 -- train -a mobilenet_v2 -d ham10000

On one machine (to try it out, and in the tests), let it start every worker:

    python -m trainer launch --local 2 -- train -a custom_cnn -d isic_9class --input-size 64 --epochs 2

Worker 0 is the chief: it alone publishes the model to the zoo. With every worker on this
machine, their output is printed with a "[worker N]" prefix, and if one worker fails the
others are stopped and the launcher exits with the failed worker's code.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable, Optional, Sequence


LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
STOP_GRACE_SECONDS = 10          # after SIGTERM, how long a worker gets before SIGKILL
POLL_SECONDS = 0.2

TrainerMain = Callable[[list[str]], int]      # trainer.cli.main, passed in: this module does not import the CLI


def parse_workers(text: str) -> list[str]:
    """'host1:2222,host2:2222' -> ['host1:2222', 'host2:2222']; every entry needs a port."""
    workers = [w.strip() for w in text.split(",") if w.strip()]
    for worker in workers:
        host, _, port = worker.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"worker {worker!r} is not HOST:PORT")
    if not workers:
        raise ValueError("no workers given")
    return workers


def tf_config(workers: Sequence[str], index: int) -> dict:
    """TF_CONFIG for worker `index` of `workers` (TensorFlow's format; worker 0 acts as chief)."""
    if not 0 <= index < len(workers):
        raise ValueError(f"--index {index} is outside the {len(workers)} workers")
    return {"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}}


def free_ports(count: int) -> list[int]:
    """`count` TCP ports that are free on localhost right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def is_local(workers: Sequence[str]) -> bool:
    return all(w.rpartition(":")[0].strip("[]") in LOCAL_HOSTS for w in workers)


def run_one(workers: Sequence[str], index: int, command: Sequence[str], trainer_main: TrainerMain) -> int:
    """This host's worker: set TF_CONFIG and run the trainer command in this process; returns its exit code."""
    os.environ["TF_CONFIG"] = json.dumps(tf_config(workers, index))
    return trainer_main(list(command))


def _stream(process: subprocess.Popen, prefix: str) -> None:
    for line in process.stdout:
        sys.stdout.write(f"{prefix} {line}")
        sys.stdout.flush()


def _stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM every live worker, then SIGKILL those still alive after the grace period."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.time() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_local(workers: Sequence[str], command: Sequence[str], timeout: Optional[float] = None) -> int:
    """Start every worker on this machine, stream their output, wait; returns 0 or the first failure's code."""
    processes, threads = [], []
    for index, worker in enumerate(workers):
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config(workers, index)), "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen([sys.executable, "-m", "trainer", *command], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, bufsize=1)
        print(f"[launch] worker {index} pid {process.pid} on {worker}", flush=True)
        processes.append(process)
        threads.append(threading.Thread(target=_stream, args=(process, f"[worker {index}]"), daemon=True))
        threads[-1].start()
    previous = signal.signal(signal.SIGTERM, lambda *_: (_stop(processes), sys.exit(143)))
    deadline = time.time() + timeout if timeout else None
    code = 0
    try:
        while any(p.poll() is None for p in processes):
            failed = [(i, p.returncode) for i, p in enumerate(processes) if p.returncode not in (None, 0)]
            if failed:
                index, code = failed[0]
                print(f"[launch] worker {index} exited with {code}; stopping the others", flush=True)
                break
            if deadline and time.time() > deadline:
                print(f"[launch] timeout after {timeout:.0f} s; stopping the workers", flush=True)
                code = 124
                break
            time.sleep(POLL_SECONDS)
    finally:
        _stop(processes)
        signal.signal(signal.SIGTERM, previous)
        for thread in threads:
            thread.join(timeout=5)
    if code == 0:
        code = next((p.returncode for p in processes if p.returncode != 0), 0)
    print(f"[launch] {'all workers finished' if code == 0 else f'failed with exit code {code}'}", flush=True)
    return code


def plan(command: Sequence[str], workers: Optional[str] = None, local: Optional[int] = None,
         index: Optional[int] = None) -> tuple[list[str], list[str]]:
    """Check the launcher's arguments; returns (workers as HOST:PORT, the train command). Raises ValueError."""
    command = list(command)
    if command[:1] == ["--"]:
        command = command[1:]
    if command[:1] != ["train"]:
        raise ValueError("the command after '--' must be a train command, e.g. -- train -a custom_cnn -d isic_9class")
    if bool(workers) == bool(local):
        raise ValueError("give either --workers HOST:PORT,... or --local N")
    if local and index is not None:
        raise ValueError("--index goes with --workers (the same list on every host), not with --local")
    hosts = parse_workers(workers) if workers else [f"localhost:{port}" for port in free_ports(local)]
    if index is not None:
        tf_config(hosts, index)                     # checks the range
    elif not is_local(hosts):
        raise ValueError("some workers are on other hosts: run this launcher on each host with --index I")
    return hosts, command


def launch(workers: Sequence[str], command: Sequence[str], index: Optional[int], trainer_main: TrainerMain) -> int:
    """`python -m trainer launch`: this host's worker (`index` given) or every worker on localhost."""
    if index is not None:
        return run_one(workers, index, command, trainer_main)
    return run_local(workers, command)
