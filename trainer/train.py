"""Training: two-phase transfer learning (or one phase from scratch), resumable, published atomically.

Phase 1 trains the head on a frozen backbone; phase 2 unfreezes the top of the
backbone at a lower rate, with BatchNorm kept in inference mode so the small
batches of fine-tuning do not wreck the pretrained statistics (keras-io,
"Image classification via fine-tuning with EfficientNet").
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Optional

from .architectures import create_model, get_spec
from .config import TrainConfig
from .data import (class_names, class_weights, concat_sets, extra_training_rows, load_images, make_dataset,
                   resolve_data_dir, select, split_label, without_lesions_of)
from .fit_setup import MONITOR, make_loss, make_optimizer, set_trainable
from .pretrained import resolve_weights

log = logging.getLogger(__name__)
BEST_WEIGHTS = "best.weights.h5"
BEST_STATE = "best.json"
FIT_RECORD = "fit.json"
SPLITS = ("train", "val", "test")


# ---------------------------------------------------------------- pieces
class BestWeights:
    """Best-on-validation weights shared by all phases; survives --resume via best.json.

    Only the model's weights are kept, not the optimizer's state (a third of the size, which matters
    when a run is fitted on a rented GPU and copied back): every use of them builds a new optimizer.
    """

    def __init__(self, run_dir: Path):
        self.path = run_dir / BEST_WEIGHTS
        self.state_path = run_dir / BEST_STATE
        self.state = json.loads(self.state_path.read_text()) if self.state_path.is_file() else {"value": -1.0}

    def save(self, model, value: float, phase: str, epoch: int) -> None:
        """Keep `model`'s weights as the best so far (`epoch` counts from 1 within `phase`)."""
        import h5py

        model.save_weights(self.path)
        slim = self.path.with_name("best.slim.weights.h5")
        with h5py.File(self.path) as source, h5py.File(slim, "w") as target:
            for key in source:
                if key != "optimizer":
                    source.copy(source[key], target, name=key)
            target.attrs.update(source.attrs)
        os.replace(slim, self.path)
        self.state = {"value": value, "phase": phase, "epoch": epoch}
        self.state_path.write_text(json.dumps(self.state))

    def load_into(self, model) -> None:
        """Set `model`'s weights to the best ones (a compiled model keeps its own optimizer state)."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model.load_weights(self.path)

    def callback(self, phase: str):
        import keras

        outer = self

        class _Save(keras.callbacks.Callback):
            """Save weights when the monitored validation metric improves."""

            def on_epoch_end(self, epoch, logs=None):
                value = float((logs or {}).get(MONITOR, -1.0))
                if value > outer.state["value"]:
                    outer.save(self.model, value, phase, epoch + 1)

        return _Save()


def make_callbacks(config: TrainConfig, run_dir: Path, phase: str, best: BestWeights, is_chief: bool,
                   deadline: Optional[float] = None) -> list:
    """Checkpoint, resume backup, LR schedule, early stopping, CSV history, TensorBoard, timing, time budget."""
    import keras

    from .callbacks import EpochTimer, PhaseMarker, TimeBudget
    from .distribute import backend_name

    callbacks = [
        EpochTimer(),
        keras.callbacks.BackupAndRestore(backup_dir=str(run_dir / f"backup_{phase}")),
        best.callback(phase),
        keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=config.early_stopping_patience,
                                      restore_best_weights=False),
        keras.callbacks.CSVLogger(str(run_dir / f"history_{phase}.csv"), append=True),
        PhaseMarker(run_dir, phase),
    ]
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=2, min_lr=1e-6))
    if is_chief and config.extra.get("tensorboard", True) and backend_name() == "tensorflow":
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), profile_batch=0))
    if deadline is not None:
        callbacks.append(TimeBudget(deadline))
    return callbacks


def record_phase(run_dir: Path, phase: str, seconds: float, info) -> None:
    """Note in fit.json where and how long `phase` trained, so a run fitted on one machine and
    published on another (--fit-only, then --resume) still says on its card where it was trained."""
    path = run_dir / FIT_RECORD
    record = json.loads(path.read_text()) if path.is_file() else {"phases": {}}
    previous = record["phases"].get(phase, {}).get("seconds", 0.0)
    record["phases"][phase] = {"seconds": round(previous + seconds, 1), **info.as_dict()}
    path.write_text(json.dumps(record, indent=2))


def fitted_on(run_dir: Path, info) -> tuple[dict, dict]:
    """(seconds per phase, strategy fields for the card) from fit.json; this process's `info` where
    fit.json says nothing. Hardware names every machine that trained a phase."""
    path = run_dir / FIT_RECORD
    phases = json.loads(path.read_text())["phases"] if path.is_file() else {}
    strategy = info.as_dict()
    if phases:
        last = list(phases.values())[-1]
        strategy.update({k: last[k] for k in ("strategy", "devices", "num_replicas", "backend") if k in last})
        machines = list(dict.fromkeys(p["hardware"] for p in phases.values()))
        strategy["hardware"] = "; then ".join(machines)
        if info.hardware not in machines:
            strategy["evaluated_on"] = info.hardware
    return {p: v["seconds"] for p, v in phases.items()}, strategy


def merge_history(run_dir: Path, phases: list[str]) -> Path:
    """Concatenate per-phase CSV histories into history.csv with `phase` and a global `epoch`."""
    rows, fields = [], ["epoch", "phase"]
    for phase in phases:
        path = run_dir / f"history_{phase}.csv"
        if not path.is_file():
            continue
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                row.pop("epoch", None)
                row["phase"] = phase
                rows.append(row)
                fields += [k for k in row if k not in fields]
    for i, row in enumerate(rows, start=1):
        row["epoch"] = i
    out = run_dir / "history.csv"
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return out


# ---------------------------------------------------------------- the run
def load_splits(config: TrainConfig, size: int, splits: tuple[str, ...] = SPLITS):
    """Decode `splits` once at `size` (the app's exact preprocessing)."""
    data_dir = resolve_data_dir(config.data_dir)
    classes = class_names(config.dataset, data_dir)
    sets, rows = {}, {}
    for split in splits:
        rows[split] = select(config.dataset, split, config.include_label_conflicts, config.limit_per_class, config.seed,
                             data_dir)
        if split == "train" and config.exclude_lesions_of:
            rows[split] = _without_lesions_of(rows[split], config.exclude_lesions_of)
        sets[split] = load_images(config.dataset, rows[split], (size, size), data_dir, classes, config.fov_crop)
    if config.extra_train:
        extra = rows["train_extra"] = extra_training_rows(config.dataset, config.extra_train, config.extra_per_class,
                                                          config.seed)
        if config.exclude_lesions_of:
            extra = rows["train_extra"] = _without_lesions_of(extra, config.exclude_lesions_of)
        sets["train"] = concat_sets(sets["train"], load_images(config.extra_train, extra, (size, size), data_dir, classes,
                                                               config.fov_crop))
        log.info("%s train: + %d %s images (%s)", config.dataset, len(extra), config.extra_train,
                 ", ".join(f"{k} {v}" for k, v in extra["label"].value_counts().sort_index().items()))
    for split in sets:
        log.info("%s %s: %d images (%d unreadable, skipped)", config.dataset, split, len(sets[split]),
                 len(sets[split].skipped))
    return classes, sets, rows


def _without_lesions_of(rows, dataset: str):
    """Training rows minus `dataset`'s held-out lesions, logged (see data.without_lesions_of)."""
    kept = without_lesions_of(rows, dataset)
    log.info("Left out %d training images whose lesions %s holds out (validation/test).", len(rows) - len(kept), dataset)
    return kept


def forget_restored_epoch(model) -> None:
    """Start this phase's fit at its own first epoch. Keras 3 keeps the epoch a BackupAndRestore restored on
    the model (`_initial_epoch`) and starts every later `fit` there: a run resumed inside the head phase
    skipped as many fine-tuning epochs. This phase's own backup, if any, sets it again when `fit` begins."""
    model._initial_epoch = None


def fit_phase(model, config: TrainConfig, phase: str, epochs: int, learning_rate: float, sets, run_dir: Path,
              best: BestWeights, is_chief: bool, global_batch: int, strategy, deadline: Optional[float] = None) -> float:
    """Compile for `phase` and fit; returns seconds spent. Skipped if the phase is marked done, or
    marked done unfitted if the time budget (`deadline`) is already spent."""
    from .augment import make_augmenter, make_mixer
    from .callbacks import BalancedAccuracy, mark_phase_done, phase_marker
    from .loop import uses_custom_loop

    if uses_custom_loop(strategy):         # MultiWorkerMirroredStrategy: Model.fit cannot run there
        from .loop import fit_phase as fit_phase_custom

        return fit_phase_custom(model, config, phase, epochs, learning_rate, sets, run_dir, best, is_chief,
                                global_batch, strategy)
    if phase_marker(run_dir, phase).is_file():
        log.info("Phase %s already finished; skipping (resume).", phase)
        return 0.0
    if deadline is not None and time.time() >= deadline:
        log.warning("Time budget spent; phase %s not trained.", phase)
        mark_phase_done(run_dir, phase, skipped="time budget")
        return 0.0
    start = time.perf_counter()
    augment = make_augmenter(config.augment, config.seed, config.hair, config.device_shift)
    train = make_dataset(sets["train"], global_batch, True, augment, config.balance, config.seed,
                         make_mixer(config.mix, config.seed))
    val = make_dataset(sets["val"], global_batch, False)
    steps = math.ceil(len(sets["train"]) / global_batch)
    weights = class_weights(sets["train"].labels, len(sets["train"].classes)) if config.balance == "class_weight" else None
    with strategy.scope():
        trainable = set_trainable(model, phase, config.fine_tune_fraction)
        model.compile(
            optimizer=make_optimizer(config, learning_rate, steps, epochs),
            loss=make_loss(config),
            metrics=["accuracy", BalancedAccuracy(len(sets["train"].classes))],
        )
    log.info("Phase %s: %d epochs at lr %g, %d trainable layers, %d steps/epoch", phase, epochs, learning_rate,
             trainable, steps)
    forget_restored_epoch(model)
    model.fit(train, validation_data=val, epochs=epochs, steps_per_epoch=steps if config.balance == "sampling" else None,
              class_weight=weights, callbacks=make_callbacks(config, run_dir, phase, best, is_chief, deadline),
              verbose=config.verbose)
    return time.perf_counter() - start


def run(config: TrainConfig) -> Optional[Path]:
    """Train `config.architecture` on `config.dataset`, evaluate, publish to the zoo; returns its folder
    (None on non-chief workers)."""
    from .data import refuse_test_only

    for dataset in (config.dataset, config.extra_train, config.exclude_lesions_of):
        refuse_test_only(dataset, "training")         # before any work: PH² is an external test set only
    import keras

    from .distribute import get_strategy

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keras.utils.set_random_seed(config.seed)
    spec = get_spec(config.architecture)
    size = int(config.input_size or spec.input_size)
    strategy, info = get_strategy(config.mixed_precision)
    try:
        return _run(config, spec, size, strategy, info)
    finally:
        from .distribute import set_mixed_precision

        set_mixed_precision(False)          # never leak a mixed policy into the caller's process


def _run(config: TrainConfig, spec, size: int, strategy, info) -> Optional[Path]:
    from .evaluate import evaluate_sets
    from .publish import build_card, prediction_rows, publish

    if config.init_from:      # refuse a leaking source before any work
        from .warm_start import check_before_training

        check_before_training(config.init_from, config.architecture, config.dataset, config.zoo_dir)
    run_dir = config.resolved_run_dir()
    if not info.is_chief:       # non-chief workers keep their own checkpoints and logs, beside the chief's
        run_dir = run_dir.parent / f"{run_dir.name}.{info.task.replace(':', '_')}"
    if run_dir.exists() and not config.resume:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config.as_dict(), indent=2))

    fit_only = config.fit_only or info.backend != "tensorflow"    # evaluation and export use TensorFlow
    classes, sets, rows = load_splits(config, size, ("train", "val") if fit_only else SPLITS)
    weights, pretrained = resolve_weights(config, spec)
    global_batch = config.batch_size * info.num_replicas
    with strategy.scope():
        model = create_model(config.architecture, len(classes), input_size=size, weights=weights,
                             dropout=config.dropout, dense_units=config.dense_units,
                             color_constancy=config.color_constancy)
        if config.init_from:
            from .warm_start import warm_start

            pretrained = warm_start(model, config.init_from, config.architecture, config.dataset, config.zoo_dir)
    phases = ([("head", config.head_epochs, config.learning_rate), ("finetune", config.epochs, config.fine_tune_learning_rate)]
              if weights else [("full", config.epochs, config.learning_rate)])
    phases = [p for p in phases if p[1] > 0]
    best = BestWeights(run_dir)
    deadline = time.time() + 60.0 * config.max_minutes if config.max_minutes else None
    for phase, epochs, learning_rate in phases:
        if phase == "finetune" and best.path.is_file():
            best.load_into(model)                # fine-tune from the best head, not the last
        seconds = fit_phase(model, config, phase, epochs, learning_rate, sets, run_dir, best, info.is_chief,
                            global_batch, strategy, deadline)
        if seconds and info.is_chief:
            record_phase(run_dir, phase, seconds, info)
    log.info("Best %s %.4f (phase %s, epoch %s)", MONITOR, best.state.get("value", -1), best.state.get("phase"),
             best.state.get("epoch"))
    if fit_only:
        log.info("Fitted on %s; the best weights are in %s. Evaluate and publish on a machine with TensorFlow: "
                 "the same command plus --resume (the test split was not loaded here).", info.hardware, run_dir)
        return None
    if best.path.is_file():
        best.load_into(model)
    phase_seconds, fitted = fitted_on(run_dir, info)
    timing = {"phases": phase_seconds,
              "total": sum(phase_seconds.values()) + float(config.extra.get("previous_seconds", 0.0))}
    if not info.is_chief:       # evaluation and publishing are the chief's; collectives are over by now
        log.info("Worker %s finished; the chief publishes the model.", info.task)
        return None

    metrics, probabilities = evaluate_sets(model, {"validation": sets["val"], "test": sets["test"]}, classes,
                                           config.bootstrap)
    metrics["best_epoch"] = best.state
    from .calibrate import calibration_from_arrays, card_summary

    metrics["calibration"] = calibration_from_arrays(
        classes, (probabilities["validation"], sets["val"].labels), (probabilities["test"], sets["test"].labels),
        config.bootstrap)
    table = []
    for split, key in (("val", "validation"), ("test", "test")):
        paths = rows[split].set_index("image_id").loc[sets[split].image_ids, "path"].tolist()
        table += prediction_rows(split, sets[split].image_ids, paths, sets[split].labels, probabilities[key], classes)
    counts = {split: len(sets[split]) for split in sets}
    if "train_extra" in rows:
        counts[f"train_of_which_{config.extra_train}"] = len(rows["train_extra"])
    counts["skipped_unreadable"] = {split: [p for p, _ in sets[split].skipped] for split in sets if sets[split].skipped}
    card = build_card(config, classes, size, pretrained, fitted, timing, metrics, counts,
                      split_label(config.dataset, config.data_dir))
    card.update(card_summary(metrics["calibration"]))
    history = merge_history(run_dir, [p[0] for p in phases])
    folder = publish(config, model, classes, size, card, metrics, history, table,
                     Path(config.zoo_dir) if config.zoo_dir else None)
    log.info("Published %s (test balanced accuracy %.3f) to %s", card["id"], metrics["test"]["balanced_accuracy"], folder)
    from .clinical import clinical_for_model

    clinical_for_model(card["id"], Path(config.zoo_dir) if config.zoo_dir else None, config.bootstrap,
                       data_dir=config.data_dir)
    if not config.limit_per_class:          # full runs: the 'not dermoscopy' detector and subgroup metrics
        from .ood import fit_ood_for_model
        from .subgroups import subgroups_for_model

        zoo_root = Path(config.zoo_dir) if config.zoo_dir else None
        fit_ood_for_model(card["id"], config.data_dir, zoo_root)
        subgroups_for_model(card["id"], config.data_dir, zoo_root)
    return folder
