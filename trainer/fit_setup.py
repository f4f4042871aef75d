"""What a training phase compiles with, shared by both loops (Model.fit in train.py, the custom
multi-worker loop in loop.py) so they freeze, weigh and step exactly alike."""
from __future__ import annotations

from typing import Optional

from .architectures import backbone_layers
from .config import TrainConfig

MONITOR = "val_balanced_accuracy"       # best weights and early stopping follow it in both loops


def set_trainable(model, phase: str, fine_tune_fraction: float) -> int:
    """Freeze for `phase`: 'head' freezes the backbone, 'finetune' unfreezes its top fraction
    (BatchNorm stays frozen), 'full' trains everything. Returns the number of trainable layers."""
    import keras

    layers = backbone_layers(model)
    for layer in model.layers:
        layer.trainable = True
    if phase == "head":
        for layer in layers:
            layer.trainable = False
    elif phase == "finetune":
        cut = int(len(layers) * (1.0 - fine_tune_fraction))
        for i, layer in enumerate(layers):
            layer.trainable = i >= cut and not isinstance(layer, keras.layers.BatchNormalization)
    return sum(1 for layer in model.layers if layer.trainable and layer.weights)


def make_loss(config: TrainConfig, reduction: Optional[str] = "sum_over_batch_size"):
    """The training loss on the model's probabilities. Focal loss (Lin et al. 2017) keeps alpha at 1:
    class balance comes from --balance, so the two levers can be measured apart."""
    import keras

    if config.loss == "focal":
        return keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=config.focal_gamma,
                                                         label_smoothing=config.label_smoothing, reduction=reduction)
    if config.loss != "crossentropy":
        raise ValueError(f"unknown loss {config.loss!r}: use 'crossentropy' or 'focal'")
    return keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing, reduction=reduction)


def make_optimizer(config: TrainConfig, learning_rate: float, steps_per_epoch: int, epochs: int):
    """AdamW with cosine decay and linear warm-up, or a constant rate for ReduceLROnPlateau."""
    import keras

    if config.lr_schedule == "cosine":
        warmup = int(config.warmup_epochs * steps_per_epoch)
        total = max(1, epochs * steps_per_epoch - warmup)
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=learning_rate * 0.1 if warmup else learning_rate, decay_steps=total,
            alpha=0.01, warmup_target=learning_rate if warmup else None, warmup_steps=warmup,
        )
    else:
        schedule = learning_rate
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
