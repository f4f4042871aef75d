"""Model architectures: a registry of builders sharing one head contract."""
from . import custom_cnn, efficientnet_lite, keras_apps, squeezenet  # noqa: F401  (register builders)
from .registry import (ArchitectureSpec, backbone_layers, create_model, get_spec, list_architectures)

__all__ = ["ArchitectureSpec", "backbone_layers", "create_model", "get_spec", "list_architectures"]
