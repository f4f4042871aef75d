"""The training configuration: one dataclass, filled by the CLI or by code."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved into the model card.

    Fields left None take the architecture's defaults (input size, dropout).
    """

    architecture: str
    dataset: str
    model_id: Optional[str] = None
    display_name: Optional[str] = None
    data_dir: Optional[str] = None
    zoo_dir: Optional[str] = None
    run_dir: Optional[str] = None
    imagenet_weights: Optional[str] = "auto"      # "auto", a directory, "imagenet", or "none"
    input_size: Optional[int] = None
    batch_size: int = 32
    head_epochs: int = 3                          # phase 1: frozen backbone
    epochs: int = 10                              # phase 2 (or the only phase when training from scratch)
    learning_rate: float = 1e-3                   # phase 1 / from scratch
    fine_tune_learning_rate: float = 1e-4         # phase 2
    fine_tune_fraction: float = 0.5               # share of the backbone's layers unfrozen in phase 2
    lr_schedule: str = "cosine"                   # "cosine" (with warm-up) or "plateau"
    warmup_epochs: float = 1.0
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    loss: str = "crossentropy"                    # crossentropy, focal (down-weights easy images)
    focal_gamma: float = 2.0                      # focal loss focusing parameter (0 = cross-entropy)
    dropout: Optional[float] = None
    dense_units: Optional[int] = None
    augment: str = "fast"                         # none, fast[_light|_strong] (fused), light, default, strong (Keras layers)
    balance: str = "class_weight"                 # none, class_weight, sampling
    mix: str = "none"                             # none, mixup, cutmix (batch mixing with soft labels)
    hair: float = 0.0                             # share of training images given drawn hair (augment.HairOcclusion)
    device_shift: float = 0.0                     # share given another dermatoscope's look (augment.DeviceShift)
    fov_crop: bool = False                        # cut images to the dermatoscope's round field (app does the same)
    color_constancy: bool = False                 # shades-of-grey layer in front of the normalisation
    early_stopping_patience: int = 6
    include_label_conflicts: bool = False
    extra_train: Optional[str] = None             # another dataset added to training, relabelled (data.EXTRA_SOURCES)
    extra_per_class: Optional[int] = None         # cap on the extra images per class
    exclude_lesions_of: Optional[str] = None      # leave out of training every lesion another dataset holds out
    init_from: Optional[str] = None               # zoo model whose backbone weights start this one
    limit_per_class: Optional[int] = None         # small subsets for tests and quick runs
    mixed_precision: bool = False
    fit_only: bool = False                        # fit and checkpoint; evaluate and publish later with resume
    max_minutes: Optional[float] = None           # stop cleanly, best weights kept, before this much time is spent
    seed: int = 42
    resume: bool = False
    set_default: bool = False
    bootstrap: int = 1000
    verbose: int = 1
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def resolved_model_id(self) -> str:
        return self.model_id or f"{self.architecture}_{self.dataset}"

    def resolved_run_dir(self) -> Path:
        return Path(self.run_dir) if self.run_dir else Path("runs") / self.resolved_model_id()

    def as_dict(self) -> dict:
        return asdict(self)
