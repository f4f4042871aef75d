"""Hyperparameter search with KerasTuner, scored on the validation split only (never on test)."""
from __future__ import annotations

import logging
import math
from typing import Optional, Sequence

from .architectures import create_model, get_spec
from .config import TrainConfig
from .data import class_names, class_weights, load_images, make_dataset, resolve_data_dir, select

log = logging.getLogger(__name__)
OBJECTIVE = "val_balanced_accuracy"
HEAD_LEARNING_RATE = 1e-3           # train's --learning-rate default, for the frozen-backbone phase


def make_hypermodel(architecture: str, dataset: str, data_dir, sizes: Sequence[int], limit_per_class: Optional[int],
                    seed: int = 42, color_constancy: bool = False, label_smoothing: float = 0.0, head_epochs: int = 1):
    """A keras_tuner.HyperModel whose search space is lr, dropout, dense width, image size, unfrozen depth;
    `epochs` in the search counts the fine-tuning epochs, after `head_epochs` on the frozen backbone.

    `limit_per_class` shortens training only: every trial is scored on the whole validation split, the
    images full runs are scored on (a short search's scores still sit below a full run's).
    """
    import keras
    import keras_tuner

    from .augment import make_augmenter
    from .callbacks import BalancedAccuracy
    from .fit_setup import make_optimizer, set_trainable
    from .pretrained import resolve_weights

    spec = get_spec(architecture)
    classes = class_names(dataset, data_dir)
    weights, _ = resolve_weights(TrainConfig(architecture, dataset), spec)
    cache: dict[int, tuple] = {}

    def image_sets(size: int):
        """Decode each size once per search."""
        if size not in cache:
            cache[size] = (load_images(dataset, select(dataset, "train", limit_per_class=limit_per_class, seed=seed,
                                                       data_dir=data_dir), (size, size), data_dir, classes),
                           load_images(dataset, select(dataset, "val", data_dir=data_dir), (size, size), data_dir,
                                       classes))
        return cache[size]

    def compile_for(model, learning_rate: float, epochs: int, steps: int) -> None:
        """train's optimizer: AdamW, a warm-up epoch, cosine decay (without the warm-up, Adam's first steps
        at the searched rate knocked a pretrained backbone to chance level in one epoch)."""
        optimizer = make_optimizer(TrainConfig(architecture, dataset), learning_rate, steps, epochs)
        model.compile(optimizer=optimizer,
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                      metrics=["accuracy", BalancedAccuracy(len(classes))])

    class DermHyperModel(keras_tuner.HyperModel):
        """Pretrained backbones train as `python -m trainer train` does: the new head first on a frozen
        backbone (fixed, `head_epochs` at 1e-3), then the searched top fraction at the searched rate, each
        phase with train's warm-up and cosine decay. A constant rate from the first step wrecks a pretrained
        backbone's features (seen on HAM10000: chance level within an epoch at 2e-3 with a random head, and at
        6.8e-4 after a head epoch)."""

        def build(self, hp):
            size = hp.Choice("input_size", list(sizes))
            model = create_model(architecture, len(classes), input_size=size, weights=weights,
                                 dropout=hp.Float("dropout", 0.0, 0.5, step=0.1),
                                 dense_units=hp.Choice("dense_units", [0, 128, 256]), color_constancy=color_constancy)
            if weights:
                hp.Float("fine_tune_fraction", 0.25, 1.0, step=0.25)
                hp.Float("learning_rate", 3e-5, 1e-3, sampling="log")
            else:
                hp.Float("learning_rate", 1e-4, 3e-3, sampling="log")
            return model

        def fit(self, hp, model, *args, **kwargs):
            train, val = image_sets(hp.get("input_size"))
            data = dict(x=make_dataset(train, 32, True, make_augmenter("fast", seed)),
                        validation_data=make_dataset(val, 64, False),
                        class_weight=class_weights(train.labels, len(classes)))
            steps = math.ceil(len(train.labels) / 32)
            if weights and head_epochs:
                set_trainable(model, "head", 0.0)
                compile_for(model, HEAD_LEARNING_RATE, head_epochs, steps)
                model.fit(**data, epochs=head_epochs, verbose=kwargs.get("verbose", "auto"))
            if weights:
                set_trainable(model, "finetune", hp.get("fine_tune_fraction"))
            compile_for(model, hp.get("learning_rate"), kwargs.get("epochs", 1), steps)
            return model.fit(**data, **kwargs)

    hypermodel = DermHyperModel()
    hypermodel.image_sets = image_sets          # the decoded (train, val) sets, for checks
    return hypermodel


def tune(architecture: str, dataset: str, data_dir=None, max_trials: int = 10, epochs: int = 5,
         limit_per_class: Optional[int] = None, directory: str = "runs/tuner", sizes: Sequence[int] = (128, 160, 192),
         seed: int = 42, color_constancy: bool = False, label_smoothing: float = 0.0,
         initial_points: Optional[int] = None, head_epochs: int = 1) -> dict:
    """Run a Bayesian search; returns the best hyperparameters, their validation score, and every trial
    (best first), so a results table can show how much the settings matter at this budget.

    `initial_points` random trials come first (KerasTuner's default, 3 per hyperparameter, would make a
    short search purely random).
    """
    import keras_tuner

    from .data import refuse_test_only

    refuse_test_only(dataset, "tuning")
    hypermodel = make_hypermodel(architecture, dataset, resolve_data_dir(data_dir), sizes, limit_per_class, seed,
                                 color_constancy, label_smoothing, head_epochs)
    tuner = keras_tuner.BayesianOptimization(
        hypermodel, objective=keras_tuner.Objective(OBJECTIVE, direction="max"), max_trials=max_trials,
        num_initial_points=initial_points, seed=seed, directory=directory,
        project_name=f"{architecture}_{dataset}", overwrite=False,
    )
    tuner.search(epochs=epochs, verbose=2)
    trials = sorted((t for t in tuner.oracle.trials.values() if t.score is not None), key=lambda t: -t.score)
    return {"hyperparameters": trials[0].hyperparameters.values, OBJECTIVE: trials[0].score,
            "trials": len(tuner.oracle.trials),
            "all": [{"hyperparameters": t.hyperparameters.values, OBJECTIVE: t.score} for t in trials]}
