"""Hyperparameter search with KerasTuner, scored on the validation split only (never on test)."""
from __future__ import annotations

import logging
from typing import Optional, Sequence

from .architectures import create_model, get_spec
from .config import TrainConfig
from .data import class_names, class_weights, load_images, make_dataset, resolve_data_dir, select

log = logging.getLogger(__name__)
OBJECTIVE = "val_balanced_accuracy"


def make_hypermodel(architecture: str, dataset: str, data_dir, sizes: Sequence[int], limit_per_class: Optional[int],
                    seed: int = 42):
    """A keras_tuner.HyperModel whose search space is lr, dropout, dense width, image size, unfrozen depth."""
    import keras
    import keras_tuner

    from .augment import make_augmenter
    from .callbacks import BalancedAccuracy
    from .train import resolve_weights, set_trainable

    spec = get_spec(architecture)
    classes = class_names(dataset)
    weights, _ = resolve_weights(TrainConfig(architecture, dataset), spec)
    cache: dict[int, tuple] = {}

    def image_sets(size: int):
        """Decode each size once per search."""
        if size not in cache:
            cache[size] = tuple(load_images(dataset, select(dataset, split, limit_per_class=limit_per_class, seed=seed),
                                            (size, size), data_dir, classes) for split in ("train", "val"))
        return cache[size]

    class DermHyperModel(keras_tuner.HyperModel):
        def build(self, hp):
            size = hp.Choice("input_size", list(sizes))
            model = create_model(architecture, len(classes), input_size=size, weights=weights,
                                 dropout=hp.Float("dropout", 0.0, 0.5, step=0.1),
                                 dense_units=hp.Choice("dense_units", [0, 128, 256]))
            if weights:
                set_trainable(model, "finetune", hp.Float("fine_tune_fraction", 0.0, 1.0, step=0.25))
            model.compile(optimizer=keras.optimizers.AdamW(hp.Float("learning_rate", 1e-4, 3e-3, sampling="log")),
                          loss="categorical_crossentropy",
                          metrics=["accuracy", BalancedAccuracy(len(classes))])
            return model

        def fit(self, hp, model, *args, **kwargs):
            train, val = image_sets(hp.get("input_size"))
            return model.fit(make_dataset(train, 32, True, make_augmenter("fast", seed)),
                             validation_data=make_dataset(val, 64, False),
                             class_weight=class_weights(train.labels, len(classes)), **kwargs)

    return DermHyperModel()


def tune(architecture: str, dataset: str, data_dir=None, max_trials: int = 10, epochs: int = 5,
         limit_per_class: Optional[int] = None, directory: str = "runs/tuner", sizes: Sequence[int] = (128, 160, 192),
         seed: int = 42) -> dict:
    """Run a Bayesian search; returns the best hyperparameters and their validation score."""
    import keras_tuner

    hypermodel = make_hypermodel(architecture, dataset, resolve_data_dir(data_dir), sizes, limit_per_class, seed)
    tuner = keras_tuner.BayesianOptimization(
        hypermodel, objective=keras_tuner.Objective(OBJECTIVE, direction="max"), max_trials=max_trials,
        seed=seed, directory=directory, project_name=f"{architecture}_{dataset}", overwrite=False,
    )
    tuner.search(epochs=epochs, verbose=2)
    best = tuner.oracle.get_best_trials(1)[0]
    return {"hyperparameters": best.hyperparameters.values, OBJECTIVE: best.score, "trials": len(tuner.oracle.trials)}
