"""Class-activation heatmaps: Grad-CAM, Grad-CAM++, Score-CAM, registered by name.

Every explainer is built once per model and called as
`explainer(images, class_index) -> (n, h, w) float32 heatmaps in [0, 1]` at the
model's input size. Overlay drawing lives in `model_zoo.overlay`.

- "gradcam": our own tf.function (one compiled graph: forward + gradient), the
  fast path the app uses. Selvaraju et al. 2017, eq. 1 (weights = spatial mean
  of d y^c / d A^k) and eq. 2 (ReLU of the weighted sum of feature maps), with
  y^c the pre-softmax score, exactly as tf-keras-vis computes it.
- ClassMapGradCAM: the same Grad-CAM read from a LiteRT export's class maps (no TensorFlow).
- "gradcam_tfkv", "gradcam++", "scorecam": tf-keras-vis (Grad-CAM++: Chattopadhay
  et al. 2018; Score-CAM: Wang et al. 2020), given the conv layer explicitly;
  gradient methods get a linear head (ReplaceToLinear), Score-CAM keeps softmax.

An ensemble (see trainer/ensemble.py) names one CAM layer per member. "gradcam"
then treats the members' feature maps as one stack of channels: the weighted sums
of every layer are resized to the largest map and added before the ReLU, which is
eq. 2 over the union of channels. The tf-keras-vis methods run once per layer and
average the normalised maps.
"""
from __future__ import annotations

from typing import Callable, Sequence, Union

import numpy as np

SCORECAM_MAX_N = 32          # Score-CAM: channels kept (batched forward passes); -1 = all (slow)
_REGISTRY: dict[str, Callable] = {}
LABELS = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM"}


def register(name: str):
    def wrap(cls):
        _REGISTRY[name] = cls
        return cls
    return wrap


def list_explainers() -> list[str]:
    """Names the app offers (the tf-keras-vis Grad-CAM reference is for tests and benchmarks)."""
    return [name for name in _REGISTRY if name in LABELS]


CamLayers = Union[str, Sequence[str]]


def as_layer_list(cam_layer: CamLayers) -> list[str]:
    """A card's `cam_layer`: one name, or a list of names (an ensemble: one per member)."""
    return [cam_layer] if isinstance(cam_layer, str) else [str(name) for name in cam_layer]


def create_explainer(name: str, model, cam_layer: CamLayers):
    if name not in _REGISTRY:
        raise KeyError(f"Unknown explainer {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name](model, cam_layer)


def expand_and_normalize(cams: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (order-1) zoom to `size`, then min-max to [0, 1] per map, as tf-keras-vis does."""
    from scipy.ndimage import zoom

    out = []
    for cam in np.asarray(cams, dtype=np.float32):
        factor = (size[0] / cam.shape[0], size[1] / cam.shape[1])
        cam = zoom(cam, factor, order=1)
        low, high = float(cam.min()), float(cam.max())
        out.append((cam - low) / (high - low + 1e-7))
    return np.stack(out).astype(np.float32)


class Explainer:
    """Base: subclasses implement `_cams(images, class_index) -> (n, h', w')` raw maps."""

    def __init__(self, model, cam_layer: CamLayers):
        self.model = model
        self.cam_layers = as_layer_list(cam_layer)
        self.size = tuple(int(d) for d in model.input_shape[1:3])

    def __call__(self, images: np.ndarray, class_index: int) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[None]
        return expand_and_normalize(self._cams(images, int(class_index)), self.size)

    def _cams(self, images: np.ndarray, class_index: int) -> np.ndarray:
        raise NotImplementedError


@register("gradcam")
class GradCAM(Explainer):
    """Grad-CAM in one compiled graph on a two-output view of the model (no clone, no retracing per call)."""

    def __init__(self, model, cam_layer: CamLayers):
        super().__init__(model, cam_layer)
        import keras
        import tensorflow as tf

        pred = model.get_layer("pred")
        view = keras.Model(model.inputs, [[model.get_layer(name).output for name in self.cam_layers], pred.input])
        kernel, bias = pred.kernel, pred.bias

        @tf.function(reduce_retracing=True)
        def cams(x, class_index):
            with tf.GradientTape() as tape:
                features, penultimate = view(x, training=False)
                tape.watch(features)
                logits = tf.matmul(tf.cast(penultimate, kernel.dtype), kernel) + bias   # pre-softmax score y^c
                score = tf.gather(logits, class_index, axis=1)
            grads = tape.gradient(score, features)
            size = max((f.shape[1], f.shape[2]) for f in features)
            total = 0.0
            for feature, grad in zip(features, grads):
                weights = tf.reduce_mean(grad, axis=(1, 2), keepdims=True)                 # eq. 1
                summed = tf.reduce_sum(weights * feature, axis=-1, keepdims=True)
                if (feature.shape[1], feature.shape[2]) != size:
                    summed = tf.image.resize(summed, size)
                total += summed[..., 0]
            return tf.nn.relu(total)                                                      # eq. 2

        self._fn = cams

    def _cams(self, images, class_index):
        import tensorflow as tf

        return self._fn(tf.constant(images), tf.constant(class_index)).numpy()


class ClassMapGradCAM:
    """Grad-CAM from precomputed class maps (a LiteRT export, model_zoo.litert): no TensorFlow, no gradient.

    `class_maps(images)` gives per CAM layer (n, h', w', n_classes) = sum_k W[k, c] A_k / (h' w'), which
    is eq. 1's weights times the feature maps when the head is average pooling + the linear `pred` layer;
    the layers' maps for the class are resized to the largest and added before the ReLU (eq. 2), as
    GradCAM does for an ensemble.
    """

    def __init__(self, class_maps: Callable[[np.ndarray], list], size: tuple[int, int]):
        self.class_maps, self.size = class_maps, tuple(int(d) for d in size)

    def __call__(self, images: np.ndarray, class_index: int) -> np.ndarray:
        from scipy.ndimage import zoom

        images = np.asarray(images, dtype=np.float32)
        images = images[None] if images.ndim == 3 else images
        maps = [m[..., int(class_index)] for m in self.class_maps(images)]
        height, width = max(m.shape[1:3] for m in maps)
        total = sum(m if m.shape[1:3] == (height, width) else
                    zoom(m, (1, height / m.shape[1], width / m.shape[2]), order=1) for m in maps)
        return expand_and_normalize(np.maximum(total, 0.0), self.size)


class _TfKerasVis(Explainer):
    """tf-keras-vis methods; the visualiser (and its model clone) is built once."""

    method: str = ""
    linear_head = True
    options: dict = {}

    def __init__(self, model, cam_layer: CamLayers):
        super().__init__(model, cam_layer)
        import importlib

        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

        module, cls = self.method.rsplit(".", 1)
        visualiser = getattr(importlib.import_module(module), cls)
        self._vis = visualiser(model, model_modifier=ReplaceToLinear() if self.linear_head else None, clone=True)

    def __call__(self, images: np.ndarray, class_index: int) -> np.ndarray:
        if len(self.cam_layers) == 1:
            return super().__call__(images, class_index)
        images = np.asarray(images, dtype=np.float32)
        images = images[None] if images.ndim == 3 else images
        maps = [expand_and_normalize(self._layer_cams(images, int(class_index), name), self.size)
                for name in self.cam_layers]
        return expand_and_normalize(np.mean(maps, axis=0), self.size)

    def _cams(self, images, class_index):
        return self._layer_cams(images, class_index, self.cam_layers[0])

    def _layer_cams(self, images, class_index: int, layer: str) -> np.ndarray:
        from tf_keras_vis.utils.scores import CategoricalScore

        # seek_penultimate_conv_layer=False: use the layer itself; by default tf-keras-vis walks back from a
        # non-conv layer (e.g. MobileNetV2's "out_relu") to the previous Conv2D, before BatchNorm and ReLU.
        cams = self._vis(CategoricalScore([class_index] * len(images)), images, penultimate_layer=layer,
                         seek_penultimate_conv_layer=False, expand_cam=False, normalize_cam=False, **self.options)
        return np.asarray(cams, dtype=np.float32).reshape(len(images), *np.asarray(cams).shape[-2:])


@register("gradcam_tfkv")
class GradCAMReference(_TfKerasVis):
    method = "tf_keras_vis.gradcam.Gradcam"


@register("gradcam++")
class GradCAMPlusPlus(_TfKerasVis):
    method = "tf_keras_vis.gradcam_plus_plus.GradcamPlusPlus"


@register("scorecam")
class ScoreCAM(_TfKerasVis):
    method = "tf_keras_vis.scorecam.Scorecam"
    linear_head = False            # Score-CAM scores with the softmax output (tf-keras-vis docs)
    options = {"max_N": SCORECAM_MAX_N, "batch_size": 32}

    def _layer_cams(self, images, class_index: int, layer: str) -> np.ndarray:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):   # silence Keras' progress bar inside Score-CAM
            return super()._layer_cams(images, class_index, layer)
