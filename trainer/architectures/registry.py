"""Name -> builder registry for model architectures (after timm's `_registry.py`).

Each builder returns a Keras 3 functional model with the same contract:
input float32 RGB pixels 0..255 of shape (h, w, 3); normalisation inside the
model; a head `avg_pool -> head_dropout -> pred` (softmax, float32).  The spec
recorded with each name tells the trainer, the zoo card and the app the input
size, the Grad-CAM layer and the weights file, so nobody hard-codes them.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Optional

import keras

from model_zoo.constants import FEATURE_LAYER, PREDICTION_LAYER

# Layers that belong to the classification head, not to the backbone.
HEAD_LAYER_NAMES = (FEATURE_LAYER, "head_dense", "head_dropout", PREDICTION_LAYER)
INPUT_LAYER_NAMES = ("image", "color_constancy", "normalize", "normalize_mean")


@dataclass(frozen=True)
class ArchitectureSpec:
    """What a model's users need to know without building it."""

    name: str
    builder: Callable[..., keras.Model]
    input_size: int
    cam_layer: str
    preprocessing: str
    imagenet_file: Optional[str] = None      # file in the --imagenet-weights dir, if any
    keras_imagenet: bool = False             # keras.applications can download ImageNet weights
    pretrainable: bool = True
    description: str = ""


_REGISTRY: dict[str, ArchitectureSpec] = {}


def register(
    input_size: int,
    cam_layer: str,
    preprocessing: str,
    imagenet_file: Optional[str] = None,
    keras_imagenet: bool = False,
    pretrainable: bool = True,
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Decorator: register a builder under its own function name."""

    def wrap(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        name = builder.__name__
        _REGISTRY[name] = ArchitectureSpec(
            name=name,
            builder=builder,
            input_size=input_size,
            cam_layer=cam_layer,
            preprocessing=preprocessing,
            imagenet_file=imagenet_file,
            keras_imagenet=keras_imagenet,
            pretrainable=pretrainable,
            description=(builder.__doc__ or "").strip().splitlines()[0] if builder.__doc__ else "",
        )
        return builder

    return wrap


def list_architectures() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> ArchitectureSpec:
    """The spec for `name`; a clear error listing the known names otherwise."""
    if name not in _REGISTRY:
        raise KeyError(f"Unknown architecture {name!r}; choose one of: {', '.join(list_architectures())}")
    return _REGISTRY[name]


def supports_color_constancy(name: str) -> bool:
    """Whether the builder can put model_zoo.layers.ShadesOfGrey in front of its normalisation."""
    return "color_constancy" in inspect.signature(get_spec(name).builder).parameters


def create_model(
    name: str,
    num_classes: int,
    input_size: Optional[int] = None,
    weights: Optional[str] = None,
    **kwargs,
) -> keras.Model:
    """Build architecture `name` with `num_classes` outputs.

    Args:
        name: a registered architecture.
        num_classes: width of the softmax output.
        input_size: square side in pixels; None keeps the architecture's default.
        weights: None (random init), a path to an ImageNet no-top weights file,
            or "imagenet" (keras.applications download; needs network).
        **kwargs: builder options (dropout, dense_units); None values are dropped
            so that builder defaults win.
    Returns:
        An uncompiled functional keras.Model.
    """
    spec = get_spec(name)
    size = int(input_size or spec.input_size)
    options = {key: value for key, value in kwargs.items() if value is not None}
    if not options.get("color_constancy", True):
        options.pop("color_constancy")             # off: every builder's default
    elif "color_constancy" in options and not supports_color_constancy(name):
        with_option = [n for n in list_architectures() if supports_color_constancy(n)]
        raise ValueError(f"{name} has no colour-constancy option; these have: {', '.join(with_option)}.")
    return spec.builder(num_classes=num_classes, input_shape=(size, size, 3), weights=weights, **options)


def model_input(input_shape, color_constancy: bool = False):
    """(input tensor "image", tensor to normalise): raw 0..255 pixels, through shades-of-grey colour
    constancy first when asked (model_zoo.layers.ShadesOfGrey)."""
    inputs = keras.Input(input_shape, name="image")
    if not color_constancy:
        return inputs, inputs
    from model_zoo.layers import ShadesOfGrey

    return inputs, ShadesOfGrey(name="color_constancy")(inputs)


def add_head(features, num_classes: int, dropout: float = 0.2, dense_units: int = 0):
    """The shared classification head: global average pool, optional dense, dropout, softmax."""
    x = keras.layers.GlobalAveragePooling2D(name=FEATURE_LAYER)(features)
    if dense_units:
        x = keras.layers.Dense(dense_units, activation="relu", name="head_dense")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    # Softmax in float32 even under mixed precision: float16 softmax saturates.
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=PREDICTION_LAYER)(x)


def backbone_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Layers of `model` that are neither input/normalisation nor head."""
    skip = set(HEAD_LAYER_NAMES) | set(INPUT_LAYER_NAMES)
    return [layer for layer in model.layers if layer.name not in skip and not isinstance(layer, keras.layers.InputLayer)]
