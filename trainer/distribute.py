"""Device and strategy selection: TensorFlow's own tf.distribute, nothing home-made.

- TF_CONFIG set            -> MultiWorkerMirroredStrategy (several machines / processes; trained by
                              trainer/loop.py, as Keras 3 Model.fit cannot run under it)
- two or more GPUs visible -> MirroredStrategy over all of them
- $DERMLAB_LOGICAL_CPUS=N  -> MirroredStrategy over N logical CPU devices (to exercise the
                              several-device path on a machine without GPUs; tests use it)
- otherwise                -> the default strategy (one GPU if present, else CPU)

On Keras' JAX or PyTorch backend (KERAS_BACKEND=jax|torch, for GPU machines that have one of
those but no TensorFlow) there is no tf.distribute: one device, `SingleDevice` below.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class StrategyInfo:
    """What the run used; recorded in the model card."""

    strategy: str
    devices: list[str]
    num_replicas: int
    is_chief: bool
    task: str
    mixed_precision: bool
    hardware: str
    backend: str = "tensorflow"

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def set_mixed_precision(enabled: bool) -> None:
    """Set the global Keras dtype policy (mixed_float16 or float32)."""
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16" if enabled else "float32")


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_summary() -> str:
    """e.g. '2 x Intel(R) Xeon(R) ... (CPU only)' or '1 x NVIDIA H100 (GPU)'."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = []
        for gpu in gpus:
            details = tf.config.experimental.get_device_details(gpu)
            names.append(details.get("device_name", gpu.name))
        return f"{len(gpus)} x GPU ({', '.join(sorted(set(names)))}); {os.cpu_count()} CPU cores"
    return f"{os.cpu_count()} CPU cores ({_cpu_name()}), no GPU"


LOGICAL_CPUS_ENV = "DERMLAB_LOGICAL_CPUS"


def backend_name() -> str:
    """Keras' backend: "tensorflow" (the default), "jax" or "torch" (set by $KERAS_BACKEND)."""
    import keras

    return keras.backend.backend()


class SingleDevice:
    """The stand-in for tf.distribute's default strategy on the JAX and PyTorch backends: one device,
    no wrapping (Model.fit places the work on the first GPU itself)."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()


def _backend_devices(backend: str) -> tuple[list[str], str]:
    """(device names, hardware summary) as the JAX or PyTorch backend sees them (CPU for any other)."""
    names, gpus = ["cpu:0"], []
    if backend == "jax":
        import jax

        gpus = [d.device_kind for d in jax.devices() if d.platform == "gpu"]
        names = [f"{d.platform}:{d.id}" for d in jax.devices()]
    elif backend == "torch":
        import torch

        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        names = [f"cuda:{i}" for i in range(len(gpus))] or names
    where = (f"{len(gpus)} x GPU ({', '.join(sorted(set(gpus)))}); {os.cpu_count()} CPU cores" if gpus
             else f"{os.cpu_count()} CPU cores ({_cpu_name()}), no GPU")
    return names, f"{where}; Keras {backend} backend"


def _single_device_strategy(mixed_precision: bool, backend: str):
    """(SingleDevice, StrategyInfo) for a non-TensorFlow backend; refuses the tf.distribute settings."""
    if os.environ.get("TF_CONFIG") or int(os.environ.get(LOGICAL_CPUS_ENV, "0") or 0) > 1:
        raise ValueError(f"TF_CONFIG and ${LOGICAL_CPUS_ENV} need tf.distribute, which the {backend} backend "
                         "lacks; unset KERAS_BACKEND to train on several devices with TensorFlow.")
    set_mixed_precision(mixed_precision)
    devices, hardware = _backend_devices(backend)
    info = StrategyInfo(strategy="SingleDevice", devices=devices[:1], num_replicas=1, is_chief=True, task="single",
                        mixed_precision=bool(mixed_precision), hardware=hardware, backend=backend)
    log.info("One device (%s) on %s", devices[0], hardware)
    return SingleDevice(), info


def split_cpu(count: int) -> None:
    """Split the physical CPU into `count` logical devices; must run before TensorFlow uses any device."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or []) != count:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def get_strategy(mixed_precision: bool = False):
    """Choose the tf.distribute strategy for this process; returns (strategy, StrategyInfo)."""
    backend = backend_name()
    if backend != "tensorflow":
        return _single_device_strategy(mixed_precision, backend)
    import tensorflow as tf

    logical_cpus = int(os.environ.get(LOGICAL_CPUS_ENV, "0") or 0)
    if logical_cpus > 1:
        split_cpu(logical_cpus)
    set_mixed_precision(mixed_precision)
    gpus = tf.config.list_physical_devices("GPU")
    task = "single"
    is_chief = True
    if os.environ.get("TF_CONFIG"):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        config = json.loads(os.environ["TF_CONFIG"])
        task_type = config.get("task", {}).get("type", "worker")
        task_id = int(config.get("task", {}).get("index", 0))
        task = f"{task_type}:{task_id}"
        # The chief writes; with no explicit chief, worker 0 is the chief (TensorFlow's convention).
        has_chief = "chief" in config.get("cluster", {})
        is_chief = task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)
    elif len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()          # all visible GPUs
    elif logical_cpus > 1:
        strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    else:
        strategy = tf.distribute.get_strategy()
    devices = [d.name for d in tf.config.list_logical_devices() if d.device_type in ("CPU", "GPU")]
    info = StrategyInfo(
        # tf.distribute.MultiWorkerMirroredStrategy's class is named CollectiveAllReduceStrategy
        strategy="MultiWorkerMirroredStrategy" if task != "single" else type(strategy).__name__,
        devices=devices,
        num_replicas=int(strategy.num_replicas_in_sync),
        is_chief=is_chief,
        task=task,
        mixed_precision=bool(mixed_precision),
        hardware=hardware_summary(),
    )
    log.info("Strategy %s over %d replica(s) on %s; devices: %s", info.strategy, info.num_replicas,
             info.hardware, ", ".join(devices))
    return strategy, info
