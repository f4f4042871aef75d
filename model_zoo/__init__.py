"""The registry of trained models: list, load, predict, explain.

    >>> import model_zoo
    >>> cards = model_zoo.list_models()          # default model first
    >>> model = model_zoo.load(cards[0]["id"])
    >>> probabilities = model.predict([pil_image])   # (1, n_classes), card["classes"] order
"""
from .preprocessing import ImageError, load_image, prepare_batch, prepare_image
from .zoo import (ModelUnavailable, ZooModel, default_model_id, get_card, list_models, load, read_history,
                  read_metrics, read_predictions)

__all__ = [
    "ImageError", "ModelUnavailable", "ZooModel", "default_model_id", "get_card", "list_models", "load",
    "load_image", "prepare_batch", "prepare_image", "read_history", "read_metrics", "read_predictions",
]
