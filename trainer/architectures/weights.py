"""Loading the offline ImageNet weight files of ../shared/weights into our builders."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import h5py
import keras
import numpy as np


def load_h5_by_name(model: keras.Model, path: str | Path) -> int:
    """Copy weights from a legacy Keras HDF5 weights file, matching layer names.

    Returns the number of layers set; raises if a matched layer's shapes differ.
    """
    count = 0
    with h5py.File(path, "r") as handle:
        for layer in model.layers:
            if layer.name not in handle or not layer.weights:
                continue
            group = handle[layer.name]
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
            layer.set_weights([np.asarray(group[name]) for name in names])
            count += 1
    if count == 0:
        raise ValueError(f"No layer of {model.name} matched a layer in {path}")
    return count


def load_h5_conv_arrays(path: str | Path, layer_order: Iterable[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read (kernel, bias) per conv layer from a file whose names Keras 3 cannot use ("fire2/squeeze1x1").

    `layer_order` gives the file's layer names; kernel and bias are told apart by rank.
    """
    arrays = {}
    with h5py.File(path, "r") as handle:
        for name in layer_order:
            found = []
            handle[name].visititems(lambda _, obj: found.append(np.asarray(obj)) if isinstance(obj, h5py.Dataset) else None)
            kernel = next(a for a in found if a.ndim == 4)
            bias = next(a for a in found if a.ndim == 1)
            arrays[name] = (kernel, bias)
    return arrays


def flip_first_conv_to_rgb(model: keras.Model) -> None:
    """Make a BGR-trained (Caffe-style) first convolution accept RGB input.

    Reversing the kernel's input-channel axis is exactly equivalent to feeding
    BGR, and avoids a custom channel-swap layer (which safe loading would need).
    """
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    weights = conv.get_weights()
    weights[0] = weights[0][:, :, ::-1, :].copy()
    conv.set_weights(weights)
