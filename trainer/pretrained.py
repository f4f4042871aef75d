"""Which ImageNet weights a backbone starts from: an offline copy, a keras.applications download, or
none. Training and the hyperparameter search both ask, and must answer alike."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from .config import TrainConfig

log = logging.getLogger(__name__)


def resolve_weights(config: TrainConfig, spec) -> tuple[Optional[str], str]:
    """(weights argument for the builder, human description for the card)."""
    choice = config.imagenet_weights
    if not spec.pretrainable or choice in (None, "none"):
        return None, "none (trained from scratch)"
    if choice == "imagenet":
        return "imagenet", "ImageNet (keras.applications download)"
    if choice == "auto":
        from .data import REPO_ROOT

        directory = REPO_ROOT.parent / "shared" / "weights"
    else:
        directory = Path(choice)
    if spec.imagenet_file and (directory / spec.imagenet_file).is_file():
        return str(directory / spec.imagenet_file), f"ImageNet ({spec.imagenet_file}, offline copy)"
    if spec.keras_imagenet and _has_network():
        return "imagenet", "ImageNet (keras.applications download)"
    log.warning("No ImageNet weights for %s here; training from scratch.", spec.name)
    return None, "none (no ImageNet weights available on this machine; trained from scratch)"


def _has_network(host: str = "storage.googleapis.com", timeout: float = 2.0) -> bool:
    """Whether keras.applications could download weights (a quick TCP connect, no request)."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False
