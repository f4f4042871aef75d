"""Out-of-distribution rejection: is this a dermoscopy image at all?

Score: the norm of the part of the model's penultimate features (the `avg_pool`
output) that lies outside the principal subspace of the training features
(the "residual" of Wang et al. 2022, "ViM: Out-Of-Distribution with
Virtual-logit Matching", sec. 3.2). Dermoscopy images live close to that subspace;
photos, documents, screenshots and plain colours leave a large residual. On the
9-class model this scored AUROC 0.98 where class-conditional Mahalanobis distance
in the same 64 dimensions (Lee et al. 2018) scored 0.84 (measured with
`python -m trainer ood`, see docs/results.md). The threshold is the 95th percentile
of validation dermoscopy scores, so about 95% of real dermoscopy images pass.
Fitted by the trainer, stored as ood.npz beside the model, applied here with numpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

OOD_FILE = "ood.npz"
FEATURE_LAYER = "avg_pool"


@dataclass
class SubspaceResidualDetector:
    mean: np.ndarray              # (d_in,) training feature mean
    components: np.ndarray        # (d, d_in) principal directions (orthonormal rows)
    threshold: float

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Norm of the feature residual outside the training subspace; higher = less like dermoscopy."""
        centred = np.asarray(features, np.float64) - self.mean
        inside = centred @ self.components.T @ self.components
        return np.linalg.norm(centred - inside, axis=1)

    def rejects(self, features: np.ndarray) -> np.ndarray:
        return self.scores(features) > self.threshold

    def save(self, path: Path) -> None:
        np.savez(path, mean=self.mean.astype(np.float32), components=self.components.astype(np.float32),
                 threshold=np.float64(self.threshold))

    @classmethod
    def load(cls, path: Path) -> "SubspaceResidualDetector":
        with np.load(path) as data:
            return cls(data["mean"].astype(np.float64), data["components"].astype(np.float64), float(data["threshold"]))


def load_detector(folder: Path, card: dict) -> tuple[Optional[SubspaceResidualDetector], str]:
    """(detector, "") or (None, reason) — the file must match the sha256 recorded in the card."""
    from .store import sha256_file

    path = Path(folder) / OOD_FILE
    info = card.get("ood")
    if not info or not path.is_file():
        return None, "no out-of-distribution detector was fitted for this model"
    if info.get("sha256") and sha256_file(path) != info["sha256"]:
        return None, "the out-of-distribution detector file does not match its card"
    try:
        return SubspaceResidualDetector.load(path), ""
    except (OSError, ValueError, KeyError) as exc:
        return None, f"the out-of-distribution detector file is unreadable ({type(exc).__name__})"
