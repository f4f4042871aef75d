"""Out-of-distribution checks: is this a dermoscopy image at all, and is it like this model's training images?

Two scores on the model's penultimate features (the `avg_pool` output), both from the part that lies outside
the principal subspace of the training features (the "residual" of Wang et al. 2022, "ViM: Out-Of-Distribution
with Virtual-logit Matching", sec. 3.2):

- the residual's norm: large for anything unlike the training images. Its threshold is the 95th percentile of
  validation dermoscopy scores, so about 95% of the training collection's own images pass. Above it an image is
  *unlike the training images*; on HAM10000 that is often a real dermoscopy image from another dermatoscope or
  clinic (PH², another hospital: 16 of its 40 melanomas), or a rare class (8 of 15 test dermatofibromas);
- the relative residual, the residual's norm over the feature vector's norm: how much of what the network sees
  is off the training subspace. Photos, documents, screenshots and plain colours give weak features that are
  mostly off it; dermoscopy from elsewhere gives strong dermoscopic features with a larger, but still minor,
  off-subspace part. Its threshold, `refuse_threshold`, is the 99.5th percentile of validation dermoscopy, so
  at most 1 in 200 of the training collection's images is called "not dermoscopy".

Three kinds follow (`kinds`): in_distribution, unlike_training (classified, with a warning; see
model_zoo.diagnosis) and not_dermoscopy (refused). A detector fitted before the relative score existed has no
refuse_threshold and keeps its old meaning: above the residual threshold is "not dermoscopy". Fitted by the
trainer (trainer/ood.py, `python -m trainer ood`), stored as ood.npz beside the model, applied here with numpy;
measurements in docs/results.md and docs/experiments.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

OOD_FILE = "ood.npz"
IN_DISTRIBUTION, UNLIKE_TRAINING, NOT_DERMOSCOPY = "in_distribution", "unlike_training", "not_dermoscopy"
KINDS = (IN_DISTRIBUTION, UNLIKE_TRAINING, NOT_DERMOSCOPY)


@dataclass
class SubspaceResidualDetector:
    mean: np.ndarray              # (d_in,) training feature mean
    components: np.ndarray        # (d, d_in) principal directions (orthonormal rows)
    threshold: float              # residual norm above which an image is unlike the training images
    refuse_threshold: Optional[float] = None    # relative residual above which it is not dermoscopy at all

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Norm of the feature residual outside the training subspace; higher = less like the training images."""
        centred = np.asarray(features, np.float64) - self.mean
        inside = centred @ self.components.T @ self.components
        return np.linalg.norm(centred - inside, axis=1)

    def relative_scores(self, features: np.ndarray) -> np.ndarray:
        """Residual norm over feature norm: the share of what the network sees that is off the training subspace."""
        norms = np.linalg.norm(np.asarray(features, np.float64), axis=1)
        return self.scores(features) / np.maximum(norms, 1e-12)

    def kinds(self, features: np.ndarray) -> list[str]:
        """One of KINDS per feature row."""
        unlike = self.scores(features) > self.threshold
        if self.refuse_threshold is None:                 # an old single-threshold detector
            return [NOT_DERMOSCOPY if u else IN_DISTRIBUTION for u in unlike]
        refuse = self.relative_scores(features) > self.refuse_threshold
        return [NOT_DERMOSCOPY if r else UNLIKE_TRAINING if u else IN_DISTRIBUTION for u, r in zip(unlike, refuse)]

    def rejects(self, features: np.ndarray) -> np.ndarray:
        """Refused as not dermoscopy."""
        return np.array([k == NOT_DERMOSCOPY for k in self.kinds(features)], bool)

    def save(self, path: Path) -> None:
        refuse = np.nan if self.refuse_threshold is None else self.refuse_threshold
        np.savez(path, mean=self.mean.astype(np.float32), components=self.components.astype(np.float32),
                 threshold=np.float64(self.threshold), refuse_threshold=np.float64(refuse))

    @classmethod
    def load(cls, path: Path) -> "SubspaceResidualDetector":
        with np.load(path) as data:
            refuse = float(data["refuse_threshold"]) if "refuse_threshold" in data.files else float("nan")
            return cls(data["mean"].astype(np.float64), data["components"].astype(np.float64), float(data["threshold"]),
                       None if np.isnan(refuse) else refuse)


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
