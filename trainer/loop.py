"""The training loop for several machines, written with tf.distribute primitives instead of Model.fit.

Keras 3's `Model.fit` does not run under MultiWorkerMirroredStrategy: its symbolic
build all-reduces the first distributed batch eagerly ("Attempt to convert a value
(PerReplica ...)", keras-team/keras#20585), and its metric reduction asks for
`strategy.reduce(..., axis=0)` on 0-d values ("Invalid reduction dimension 0").
This loop follows TensorFlow's "Custom training loop with Keras and
MultiWorkerMirroredStrategy" tutorial instead:

- the global batch is sharded by data (AutoShardPolicy.DATA): the dataset is cut into
  per-replica batches and replica r takes the r-th slice of every global batch, exactly
  as MirroredStrategy splits a batch over the devices of one machine;
- each replica's loss is its per-example losses summed and divided by the *global*
  number of examples in the step (tf.nn.compute_average_loss), so the gradients the
  optimizer all-reduces (sums) equal the gradient of the mean over the global batch;
- validation runs on every worker over the whole validation split, and the values of
  replica 0 (the chief) are broadcast, so every worker takes the same decisions
  (best weights, early stopping, learning-rate drops) and no worker waits forever;
- every worker saves a tf.train.Checkpoint at the end of each epoch into its own run
  folder (the chief's is runs/MODEL_ID, the others' runs/MODEL_ID.worker_N), and on
  --resume all workers restore the newest epoch that every one of them has saved.

It writes the same run-folder files as the Model.fit path (history_<phase>.csv,
best.weights.h5, best.json, phase_<phase>.done), so `train._run` publishes the same
zoo artefact. It also writes steps_<phase>.csv (the loss of every step).
"""
from __future__ import annotations

import csv
import logging
import math
import os
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CUSTOM_LOOP_ENV = "DERMLAB_CUSTOM_LOOP"      # "1": use this loop under any strategy (tests compare it)
CHECKPOINTS_KEPT = 2                         # workers may be one epoch apart when killed; keep both
HISTORY_FIELDS = ["epoch", "accuracy", "balanced_accuracy", "epoch_seconds", "loss", "val_accuracy",
                  "val_balanced_accuracy", "val_loss"]           # the columns keras.callbacks.CSVLogger writes
PLATEAU_FACTOR, PLATEAU_PATIENCE, PLATEAU_MIN_LR = 0.3, 2, 1e-6  # as ReduceLROnPlateau in train.make_callbacks


def uses_custom_loop(strategy) -> bool:
    """True under MultiWorkerMirroredStrategy (Model.fit fails there), or when $DERMLAB_CUSTOM_LOOP=1."""
    from .distribute import SingleDevice

    if isinstance(strategy, SingleDevice):      # JAX / PyTorch backend: Model.fit, no tf.distribute
        return False
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or os.environ.get(CUSTOM_LOOP_ENV) == "1"


# ---------------------------------------------------------------- collectives
def from_first_replica(strategy, values) -> np.ndarray:
    """Every worker gets replica 0's `values` (a float vector): a sum over replicas where only replica 0
    contributes, so all workers see the chief's numbers."""
    import tensorflow as tf

    def contribute(values):
        first = tf.equal(tf.distribute.get_replica_context().replica_id_in_sync_group, 0)
        return tf.where(first, values, tf.zeros_like(values))

    @tf.function
    def broadcast(values):
        return strategy.reduce("SUM", strategy.run(contribute, args=(values,)), axis=None)

    return broadcast(tf.constant(np.asarray(values, np.float64))).numpy()


def smallest_over_replicas(strategy, value: int) -> int:
    """The minimum of an integer over all replicas (gathered, then min)."""
    import tensorflow as tf

    @tf.function
    def gather(value):
        return strategy.gather(strategy.run(lambda v: tf.reshape(v, [1]), args=(value,)), axis=0)

    return int(tf.reduce_min(gather(tf.constant(value, tf.int64))))


# ---------------------------------------------------------------- history on disk
def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: list[dict], fields: list[str]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def should_stop(rows: list[dict], patience: int, monitor: str) -> bool:
    """EarlyStopping(mode='max', min_delta=0): stop once `patience` epochs passed without beating the best."""
    values = [float(r[monitor]) for r in rows]
    if not values:
        return False
    best = int(np.argmax(values))                   # first epoch holding the maximum
    return len(values) - 1 - best >= patience


def plateau_rate(rows: list[dict], initial: float) -> float:
    """ReduceLROnPlateau(monitor='val_loss', factor 0.3, patience 2) replayed over the history, so the rate
    after a resume is the one the uninterrupted run would use."""
    rate, best, wait = initial, math.inf, 0
    for row in rows:
        value = float(row["val_loss"])
        if value < best:
            best, wait = value, 0
        else:
            wait += 1
            if wait >= PLATEAU_PATIENCE:
                rate, wait = max(rate * PLATEAU_FACTOR, PLATEAU_MIN_LR), 0
    return rate


# ---------------------------------------------------------------- the loop
def make_train_step(model, optimizer, loss_fn, strategy, class_table, num_classes: int):
    """A tf.function that runs one global step on `strategy` and returns summed (loss, weighted correct,
    weight, per-class hits, per-class counts) for the step."""
    import keras
    import tensorflow as tf

    scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

    def replica_step(images, labels):
        count = tf.distribute.get_replica_context().all_reduce("SUM", tf.shape(images)[0])
        weight = tf.gather(class_table, tf.argmax(labels, axis=-1))           # class weights (ones if none)
        with tf.GradientTape() as tape:
            proba = model(images, training=True)
            # sum over this replica / examples in the whole global step (partial last batch included)
            loss = tf.nn.compute_average_loss(loss_fn(labels, proba), sample_weight=weight, global_batch_size=count)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            target = optimizer.scale_loss(loss) if scaled else loss
        gradients = tape.gradient(target, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))   # all-reduces (sums) the gradients
        predicted = tf.one_hot(tf.argmax(proba, axis=-1), num_classes)
        correct = tf.reduce_sum(labels * predicted, axis=-1)
        return (loss, tf.reduce_sum(weight * correct), tf.reduce_sum(weight), tf.reduce_sum(labels * predicted, 0),
                tf.reduce_sum(labels, 0))

    @tf.function
    def train_step(iterator):
        images, labels = next(iterator)
        outputs = strategy.run(replica_step, args=(images, labels))
        return [strategy.reduce("SUM", value, axis=None) for value in outputs]

    return train_step


def validate(forward, image_set, label_smoothing: float, batch_size: int = 64) -> dict:
    """val_loss (categorical cross-entropy with the training label smoothing), val_accuracy and
    val_balanced_accuracy over the whole split, computed locally with `forward` (images -> probabilities)."""
    chunks = [np.asarray(forward(image_set.images[i:i + batch_size].astype(np.float32)))
              for i in range(0, len(image_set), batch_size)]
    proba = np.clip(np.concatenate(chunks), 1e-7, 1.0)
    k = proba.shape[1]
    truth = np.eye(k)[image_set.labels] * (1.0 - label_smoothing) + label_smoothing / k
    predicted = proba.argmax(1)
    recalls = [np.mean(predicted[image_set.labels == c] == c) for c in range(k) if np.any(image_set.labels == c)]
    return {"val_loss": float(np.mean(-np.sum(truth * np.log(proba), axis=1))),
            "val_accuracy": float(np.mean(predicted == image_set.labels)),
            "val_balanced_accuracy": float(np.mean(recalls)) if recalls else 0.0}


def distributed_epoch(strategy, image_set, global_batch: int, augment, balance: str, seed: int, mix=None):
    """The epoch's training data, sharded by data over the replicas. The shuffle seed is `seed`, fixed per
    epoch, so a resumed run sees the same order as an uninterrupted one."""
    import tensorflow as tf

    from .data import make_dataset

    dataset = make_dataset(image_set, global_batch, True, augment, balance, seed, mix)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def restore_agreed(manager, checkpoint, strategy) -> int:
    """Restore the newest epoch that every worker has checkpointed; returns it (0: start afresh)."""
    saved = {int(path.rsplit("-", 1)[1]): path for path in manager.checkpoints}
    epoch = smallest_over_replicas(strategy, max(saved, default=0))
    if epoch:
        checkpoint.restore(saved[epoch]).assert_existing_objects_matched()
    return epoch


def fit_phase(model, config, phase: str, epochs: int, learning_rate: float, sets, run_dir: Path, best,
              is_chief: bool, global_batch: int, strategy) -> float:
    """Train `phase` for up to `epochs` epochs with a custom loop on `strategy`; returns seconds spent.

    Same contract as train.fit_phase: writes history_<phase>.csv, keeps best weights via `best`,
    stops early on the validation balanced accuracy, and resumes from the last agreed checkpoint.
    """
    import keras
    import tensorflow as tf

    from .augment import make_augmenter, make_mixer
    from .callbacks import mark_phase_done
    from .data import class_weights
    from .fit_setup import MONITOR, make_loss, make_optimizer, set_trainable

    start = time.perf_counter()
    train_set = sets["train"]
    num_classes = len(train_set.classes)
    steps = math.ceil(len(train_set) / global_batch)
    table = class_weights(train_set.labels, num_classes) if config.balance == "class_weight" else {}
    class_table = tf.constant([table.get(c, 1.0) for c in range(num_classes)], tf.float32)
    with strategy.scope():
        trainable = set_trainable(model, phase, config.fine_tune_fraction)
        optimizer = make_optimizer(config, learning_rate, steps, epochs)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    loss_fn = make_loss(config, reduction=None)
    train_step = make_train_step(model, optimizer, loss_fn, strategy, class_table, num_classes)
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)   # traced once per phase

    # Keras' SeedGenerator is not trackable: save the dropout seed states too, or a resumed run would
    # replay the first epoch's dropout masks.
    seeds = [v for v in model.variables if v.name == "seed_generator_state"]
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, seeds=seeds)
    manager = tf.train.CheckpointManager(checkpoint, str(run_dir / f"checkpoints_{phase}"), CHECKPOINTS_KEPT,
                                         checkpoint_name="epoch")
    history_path, steps_path = run_dir / f"history_{phase}.csv", run_dir / f"steps_{phase}.csv"
    done = restore_agreed(manager, checkpoint, strategy)
    rows = read_rows(history_path)[:done]               # drop epochs trained after the last agreed checkpoint
    write_rows(history_path, rows, HISTORY_FIELDS)
    step_rows = [r for r in read_rows(steps_path) if int(r["epoch"]) < done]
    if done:
        log.info("Phase %s: resumed from the epoch-%d checkpoint (%s)", phase, done, manager.directory)
    writer = (tf.summary.create_file_writer(str(run_dir / "tensorboard" / phase))
              if is_chief and config.extra.get("tensorboard", True) else None)
    augment = make_augmenter(config.augment, config.seed, config.hair, config.device_shift)
    mixer = make_mixer(config.mix, config.seed)
    log.info("Phase %s (custom loop, %d replicas): %d epochs at lr %g, %d trainable layers, %d steps/epoch",
             phase, strategy.num_replicas_in_sync, epochs, learning_rate, trainable, steps)

    for epoch in range(done, epochs):
        if should_stop(rows, config.early_stopping_patience, MONITOR):
            log.info("Phase %s: early stop after epoch %d", phase, epoch)
            break
        if config.lr_schedule == "plateau":
            optimizer.learning_rate.assign(plateau_rate(rows, learning_rate))
        epoch_start = time.perf_counter()
        iterator = iter(distributed_epoch(strategy, train_set, global_batch, augment, config.balance,
                                          config.seed + epoch, mixer))
        totals = {"loss": 0.0, "seen": 0.0, "correct": 0.0, "weight": 0.0}
        hits, counts = np.zeros(num_classes), np.zeros(num_classes)
        for step in range(steps):
            loss, correct, weight, step_hits, step_counts = (v.numpy() for v in train_step(iterator))
            n = float(step_counts.sum())
            totals["loss"] += float(loss) * n               # Keras' loss tracker weights batches by size
            totals["seen"] += n
            totals["correct"] += float(correct)
            totals["weight"] += float(weight)
            hits, counts = hits + step_hits, counts + step_counts
            step_rows.append({"epoch": epoch, "step": step, "loss": repr(float(loss))})
        seen = counts > 0
        logs = {"loss": totals["loss"] / max(totals["seen"], 1.0),
                "accuracy": totals["correct"] / max(totals["weight"], 1e-12),
                "balanced_accuracy": float(np.mean(hits[seen] / counts[seen])) if seen.any() else 0.0}
        local = validate(forward, sets["val"], config.label_smoothing)
        names = ["val_loss", "val_accuracy", "val_balanced_accuracy"]
        logs.update(zip(names, (float(v) for v in from_first_replica(strategy, [local[k] for k in names]))))
        logs["epoch_seconds"] = time.perf_counter() - epoch_start
        if logs[MONITOR] > best.state["value"]:
            best.save(model, logs[MONITOR], phase, epoch + 1)
        rows.append({"epoch": epoch, **logs})
        write_rows(history_path, rows, HISTORY_FIELDS)       # before the checkpoint: a resume trims, never loses
        write_rows(steps_path, step_rows, ["epoch", "step", "loss"])
        manager.save(checkpoint_number=epoch + 1)             # every worker saves (collective-safe), own folder
        if writer:
            with writer.as_default(step=epoch):
                for name, value in logs.items():
                    tf.summary.scalar(name, value)
        log.info("Phase %s epoch %d/%d: %s", phase, epoch + 1, epochs,
                 ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))
    mark_phase_done(run_dir, phase)
    return time.perf_counter() - start
