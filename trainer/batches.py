"""The tf.data pipeline's twin for Keras' JAX and PyTorch backends, where TensorFlow may be absent.

Same order of steps as `data.make_dataset`: in-memory decoded images -> (balanced) shuffle ->
batch -> augment -> one-hot -> mix. The augmenter and mixer are Keras layers (see augment.py), so
they run on the backend's device; a background thread prepares the next batch while the model
trains on the current one (keras.utils.PyDataset).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import keras
import numpy as np


class ArrayBatches(keras.utils.PyDataset):
    """Batches (float32 images 0..255, one-hot labels) from an `ImageSet`, reshuffled every epoch.

    balance="sampling" draws each example's class uniformly, then an image of that class, so every
    class is seen equally often; an epoch keeps the set's length.
    """

    def __init__(self, image_set, batch_size: int, training: bool, augment=None, balance: str = "none",
                 seed: int = 42, mix: Optional[Callable] = None):
        super().__init__(workers=1, use_multiprocessing=False, max_queue_size=4)
        self.images, self.labels = image_set.images, np.asarray(image_set.labels)
        self.eye = np.eye(len(image_set.classes), dtype=np.float32)
        self.batch_size, self.training = batch_size, training
        self.augment, self.mix = (augment, mix) if training else (None, None)
        self.by_class = ([idx for idx in (np.flatnonzero(self.labels == c) for c in range(len(self.eye))) if len(idx)]
                         if training and balance == "sampling" else None)
        self.rng = np.random.default_rng(seed)
        self.order = self._new_order()

    def _new_order(self) -> np.ndarray:
        n = len(self.labels)
        if not self.training:
            return np.arange(n)
        if self.by_class is None:
            return self.rng.permutation(n)
        classes = self.rng.integers(len(self.by_class), size=n)
        return np.array([self.by_class[c][self.rng.integers(len(self.by_class[c]))] for c in classes], dtype=np.int64)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, index: int):
        idx = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        images, labels = self.images[idx].astype(np.float32), self.eye[self.labels[idx]]
        if self.augment is not None:
            images = self.augment(images, training=True)
        if self.mix is not None:
            images, labels = self.mix(images, labels)
        return images, labels

    def on_epoch_end(self) -> None:
        if self.training:
            self.order = self._new_order()
