"""Start a model from the backbone of another zoo model (dermoscopy pre-training instead of ImageNet's).

The source model must not have seen the target dataset's held-out lesions: it is trained on the target
dataset itself (same split file), or with --exclude-lesions-of TARGET. Otherwise the new model's
validation and test figures would include images its backbone learnt with their labels (HAM10000 holds
69 of the 9-class Test images).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from model_zoo.training_recipes import training_config


class WarmStartError(ValueError):
    """The --init-from model cannot start this run; the message says why."""


class LeakageError(WarmStartError):
    """The source model has seen lesions that the target dataset holds out for validation or test."""


def check_source(card: dict, architecture: str, dataset: str) -> None:
    """Refuse a source of another architecture, or one trained on `dataset`'s held-out lesions."""
    config = training_config(card)
    source_arch = config.get("architecture") or card.get("architecture")
    if source_arch != architecture:
        raise WarmStartError(f"--init-from {card.get('id')!r} is a {source_arch} model; this run trains "
                             f"{architecture}, and only a backbone of the same architecture can be copied.")
    source_dataset = config.get("dataset") or card.get("dataset")
    if source_dataset == dataset:
        return
    if config.get("exclude_lesions_of") != dataset:
        raise LeakageError(
            f"--init-from {card.get('id')!r} was trained on {source_dataset} without leaving out the lesions that "
            f"{dataset} holds out for validation and test, so its backbone has seen some of them with labels. "
            f"Train it again with --exclude-lesions-of {dataset}.")


def copy_backbone(source, target) -> int:
    """Copy the weights (BatchNorm statistics included) of every backbone layer of `target` from the layer
    of the same name in `source`; the head stays new. Returns the number of layers copied."""
    from .architectures import backbone_layers

    by_name = {layer.name: layer for layer in backbone_layers(source)}
    copied = 0
    for layer in backbone_layers(target):
        if not layer.weights:
            continue
        match = by_name.get(layer.name)
        if match is None or [w.shape for w in match.weights] != [w.shape for w in layer.weights]:
            raise WarmStartError(f"The source model has no layer {layer.name!r} of the same shape: is it built "
                                 "with the same architecture options (dense units, colour constancy)?")
        layer.set_weights(match.get_weights())
        copied += 1
    return copied


def warm_start(model, model_id: str, architecture: str, dataset: str, zoo_dir: Optional[str]) -> str:
    """Copy zoo model `model_id`'s backbone into `model` after the leakage check; returns the card's
    'pretrained' description."""
    from model_zoo import zoo

    root = Path(zoo_dir) if zoo_dir else None
    source = zoo.load(model_id, root, backend="keras")
    check_source(source.card, architecture, dataset)
    copied = copy_backbone(source.keras_model, model)
    config = training_config(source.card)
    left_out = f", lesions held out by {dataset} left out" if config.get("exclude_lesions_of") == dataset else ""
    return (f"the backbone of zoo model {model_id} ({config.get('dataset')}{left_out}; {copied} layers), "
            f"itself from {source.card.get('pretrained', 'unknown weights')}")


def check_before_training(model_id: str, architecture: str, dataset: str, zoo_dir: Optional[str]) -> None:
    """The leakage and architecture check on the card alone, so a refused run stops before loading images."""
    from model_zoo import zoo

    try:
        card = zoo.get_card(model_id, Path(zoo_dir) if zoo_dir else None)
    except zoo.ModelUnavailable as exc:
        raise WarmStartError(f"--init-from: {exc}") from exc
    check_source(card, architecture, dataset)
