"""Class-activation heatmaps: Grad-CAM, Grad-CAM++, Score-CAM, registered by name.

Every explainer is built once per model and called as
`explainer(images, class_index) -> (n, h, w) float32 heatmaps in [0, 1]` at the
model's input size. Overlay drawing lives in `model_zoo.overlay`.

- "gradcam": our own tf.function (one compiled graph: forward + gradient), the
  Keras path's fast Grad-CAM. Selvaraju et al. 2017, eq. 1 (weights = spatial mean
  of d y^c / d A^k) and eq. 2 (ReLU of the weighted sum of feature maps), with
  y^c the pre-softmax score, exactly as tf-keras-vis computes it.
- "gradcam_tfkv", "gradcam++", "scorecam": tf-keras-vis (Grad-CAM++: Chattopadhay
  et al. 2018; Score-CAM: Wang et al. 2020), given the conv layer explicitly;
  gradient methods get a linear head (ReplaceToLinear), Score-CAM keeps softmax.
- LiteRTGradCAM, LiteRTGradCAMPlusPlus, LiteRTScoreCAM (end of this file): the same three maps from a
  LiteRT export's feature maps and head weights with numpy only, no TensorFlow; what the app serves when
  the model has such an export (ZooModel.explainer). The Keras classes are their reference and fallback.

An ensemble (see trainer/ensemble.py) names one CAM layer per member. "gradcam"
then treats the members' feature maps as one stack of channels: the weighted sums
of every layer are resized to the largest map and added before the ReLU, which is
eq. 2 over the union of channels. The tf-keras-vis methods run once per layer and
average the normalised maps.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Optional, Sequence, Union

import numpy as np

from .constants import EXPLAINER_LABELS, PREDICTION_LAYER

SCORECAM_MAX_N = 32          # Score-CAM: channels kept (batched forward passes); -1 = all (slow)
_REGISTRY: dict[str, Callable] = {}


def register(name: str):
    def wrap(cls):
        _REGISTRY[name] = cls
        return cls
    return wrap


def list_explainers() -> list[str]:
    """Names the app offers (the tf-keras-vis Grad-CAM reference is for tests and benchmarks)."""
    return [name for name in _REGISTRY if name in EXPLAINER_LABELS]


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

        pred = model.get_layer(PREDICTION_LAYER)
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


# ---- Heatmaps from a LiteRT export, numpy only (model_zoo.litert) ----
#
# The export gives the CAM layers' feature maps A_l ("fmap_<l>", (n, h_l, w_l, K_l)) and the network's
# probabilities, and stores beside it the head that follows the CAM layers (head.npz): global average
# pooling of each layer, concatenated, then dense layers, the last one `pred` (its softmax dropped, as
# ReplaceToLinear does). The score's gradient is then the same at every position of a map:
#   dS^c / dA_l[i, j, k] = J[k, c] / (h_l w_l),   J = dS^c / d(pooled features), exact from the head's weights,
# so every method below is a channel weighting sum_k w_k A_k computed without TensorFlow.

HEAD_FILE = "head.npz"
_HIDDEN = {"relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
           "linear": (lambda z: z, np.ones_like)}


@dataclass(frozen=True)
class DenseHead:
    """The layers after the CAM layers: pooled features -> dense layers -> `pred`'s logits (pre-softmax score S)."""

    kernels: tuple
    biases: tuple
    activations: tuple           # one per hidden layer ("relu" or "linear"); `pred`'s softmax is not applied

    def __post_init__(self):
        unknown = set(self.activations) - set(_HIDDEN)
        if unknown or len(self.activations) != len(self.kernels) - 1 or len(self.kernels) != len(self.biases):
            raise ValueError(f"unsupported head: {len(self.kernels)} dense layers, activations {self.activations}")

    def logits(self, pooled: np.ndarray) -> np.ndarray:
        """S for (n, K) pooled features: what `pred` computes before its softmax."""
        return self._forward(pooled)[0]

    def gradient(self, pooled: np.ndarray, class_index: int) -> tuple[np.ndarray, np.ndarray]:
        """(S^c (n,), dS^c/d pooled (n, K)): backpropagation through the dense layers (ReLU' = 1 where z > 0,
        as TensorFlow's ReluGrad)."""
        logits, pre = self._forward(pooled)
        grad = np.zeros_like(logits)
        grad[:, class_index] = 1.0
        grad = grad @ self.kernels[-1].T
        for kernel, z, name in zip(self.kernels[-2::-1], pre[::-1], self.activations[::-1]):
            grad = (grad * _HIDDEN[name][1](z)) @ kernel.T
        return logits[:, class_index], grad

    def _forward(self, pooled: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        x, pre = np.asarray(pooled, np.float64), []
        for kernel, bias, name in zip(self.kernels, self.biases, self.activations):
            pre.append(x @ kernel + bias)
            x = _HIDDEN[name][0](pre[-1])
        return x @ self.kernels[-1] + self.biases[-1], pre

    def save(self, path: Union[Path, BinaryIO]) -> None:
        arrays = {f"kernel_{i}": k.astype(np.float32) for i, k in enumerate(self.kernels)}
        arrays.update({f"bias_{i}": b.astype(np.float32) for i, b in enumerate(self.biases)})
        np.savez(path, activations=np.array(self.activations, dtype=str).reshape(-1), **arrays)

    @classmethod
    def load(cls, path: Path) -> "DenseHead":
        """No pickles (allow_pickle=False): the file holds numbers and activation names only."""
        with np.load(path, allow_pickle=False) as data:
            count = sum(1 for name in data.files if name.startswith("kernel_"))
            return cls(tuple(data[f"kernel_{i}"].astype(np.float64) for i in range(count)),
                       tuple(data[f"bias_{i}"].astype(np.float64) for i in range(count)),
                       tuple(str(a) for a in data["activations"]))


Forward = Callable[[np.ndarray], dict]
_LITERT_REGISTRY: dict[str, type] = {}


def register_litert(name: str):
    def wrap(cls):
        _LITERT_REGISTRY[name] = cls
        return cls
    return wrap


def litert_requirements(name: str) -> Optional[bool]:
    """None: no LiteRT version of `name`; else whether it needs the head (gradient methods) besides the maps."""
    return _LITERT_REGISTRY[name].needs_head if name in _LITERT_REGISTRY else None


def create_litert_explainer(name: str, forward: Forward, fmap_names: Sequence[str], size: tuple[int, int],
                            head: Optional[DenseHead] = None):
    return _LITERT_REGISTRY[name](forward, fmap_names, size, head)


class FeatureMapCAM:
    """Base of the LiteRT heatmaps, as pytorch-grad-cam's BaseCAM: one forward pass gives the maps A_l, a
    method gives per-layer channel weights (n, K_l), the map is ReLU(sum_k w_k A_k). Several CAM layers (an
    ensemble): each layer's map normalised, then averaged, as the tf-keras-vis explainers above do."""

    needs_head = True

    def __init__(self, forward: Forward, fmap_names: Sequence[str], size: tuple[int, int],
                 head: Optional[DenseHead] = None):
        if self.needs_head and head is None:
            raise ValueError(f"{type(self).__name__} needs the model's head weights ({HEAD_FILE})")
        self.forward, self.fmap_names, self.head = forward, list(fmap_names), head
        self.size = tuple(int(d) for d in size)

    def __call__(self, images: np.ndarray, class_index: int) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        images = images[None] if images.ndim == 3 else images
        outputs = self.forward(images)
        maps = [np.asarray(outputs[name], np.float32) for name in self.fmap_names]
        weights = self.weights(images, maps, int(class_index))
        return self.combine([np.einsum("nhwk,nk->nhw", a, w) for a, w in zip(maps, weights)])

    def weights(self, images: np.ndarray, maps: list[np.ndarray], class_index: int) -> list[np.ndarray]:
        raise NotImplementedError

    def combine(self, cams: list[np.ndarray]) -> np.ndarray:
        layers = [expand_and_normalize(np.maximum(cam, 0.0), self.size) for cam in cams]
        return layers[0] if len(layers) == 1 else expand_and_normalize(np.mean(layers, axis=0), self.size)

    def score_and_gradients(self, maps: list[np.ndarray], class_index: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """(S^c (n,), per layer dS^c/dA_l (n, K_l)): the same at every position, as pooling averages them."""
        pooled = np.concatenate([a.mean(axis=(1, 2), dtype=np.float64) for a in maps], axis=1)
        score, grad = self.head.gradient(pooled, class_index)
        bounds = np.cumsum([0] + [a.shape[-1] for a in maps])
        return score, [grad[:, s:e] / (a.shape[1] * a.shape[2]) for s, e, a in zip(bounds[:-1], bounds[1:], maps)]


@register_litert("gradcam")
class LiteRTGradCAM(FeatureMapCAM):
    """Selvaraju et al. 2017, eq. 1: w_k = spatial mean of dS^c/dA_k (here the constant gradient itself);
    eq. 2: ReLU(sum_k w_k A_k). Several layers: summed before the ReLU, as GradCAM (one stack of channels)."""

    def weights(self, images, maps, class_index):
        return self.score_and_gradients(maps, class_index)[1]

    def combine(self, cams):
        from scipy.ndimage import zoom

        height, width = max(c.shape[1:3] for c in cams)
        total = sum(c if c.shape[1:3] == (height, width) else
                    zoom(c, (1, height / c.shape[1], width / c.shape[2]), order=1) for c in cams)
        return expand_and_normalize(np.maximum(total, 0.0), self.size)


@register_litert("gradcam++")
class LiteRTGradCAMPlusPlus(FeatureMapCAM):
    """Grad-CAM++ (Chattopadhay et al. 2018) exactly as tf_keras_vis.gradcam_plus_plus computes it, in closed form.

    tf-keras-vis takes Y^c = exp(S^c) (the paper's exponential trick) and, with g = dS^c/dA_k[i, j]:
      alpha_ij = E g^2 / (2 E g^2 + E g^3 sum_ab A_k[a, b]),   E = exp(S^c),
      alpha normalised by its spatial sum,   w_k = sum_ij alpha_ij ReLU(E g),   map = ReLU(sum_k w_k A_k).
    Here g is the same at every (i, j), so alpha_ij is too and normalises to 1/(h w) (0 where g = 0, where ReLU(E g)
    is 0 anyway): w_k = E ReLU(g_k). Grad-CAM++ of a pooled linear head is Grad-CAM with negative weights dropped.
    E is kept (float64: where float32 exp(S) overflows, S > 88, tf-keras-vis returns NaN) since min-max
    normalisation's epsilon makes the scale matter, if barely."""

    def weights(self, images, maps, class_index):
        score, grads = self.score_and_gradients(maps, class_index)
        scale = np.exp(score)[:, None]
        return [scale * np.maximum(g, 0.0) for g in grads]


@register_litert("scorecam")
class LiteRTScoreCAM(FeatureMapCAM):
    """Score-CAM (Wang et al. 2020, eq. 6-7: channel weight = the score of the input masked by that channel's
    upsampled, min-max normalised map; map = ReLU(sum_k w_k A_k)), as tf_keras_vis.scorecam with ScoreCAM's
    options: the max_N channels of largest spatial std per image (Faster Score-CAM; the union over the batch),
    masks zoomed with order 1 / mode "nearest", the score softmax(model output)[c] (tf-keras-vis applies a
    softmax to the model's output, here the probabilities). Forward passes only: no head needed."""

    needs_head = False
    max_n = SCORECAM_MAX_N
    chunk = 32                   # masked images built at a time (memory), as tf-keras-vis' batch_size

    def weights(self, images, maps, class_index):
        return [self._layer_weights(images, a, class_index) for a in maps]

    def _layer_weights(self, images: np.ndarray, a: np.ndarray, class_index: int) -> np.ndarray:
        from scipy.ndimage import zoom

        n, height, width, k = a.shape
        channels = np.arange(k)
        if 0 < self.max_n < k:
            # tf.math.top_k of the per-image std (ties: the lower index first), then tf.unique keeps first occurrences
            order = np.argsort(-a.std(axis=(1, 2)), axis=1, kind="stable")[:, :self.max_n]
            channels = np.array(list(dict.fromkeys(order.ravel().tolist())))
        factor = (images.shape[1] / height, images.shape[2] / width, 1)
        weights = np.zeros((n, k), np.float64)
        for s in range(n):
            masks = zoom(a[s][..., channels], factor, order=1, mode="nearest")        # (H, W, channels)
            low, high = masks.min(axis=(0, 1)), masks.max(axis=(0, 1))
            masks = (masks - low) / (high - low + 1e-7)                                  # K.epsilon()
            for start in range(0, len(channels), self.chunk):
                part = np.moveaxis(masks[..., start:start + self.chunk], -1, 0)[..., None] * images[s]
                scores = np.asarray(self.forward(part.astype(np.float32))["probabilities"], np.float64)
                scores = np.exp(scores - scores.max(axis=1, keepdims=True))
                weights[s, channels[start:start + self.chunk]] = scores[:, class_index] / scores.sum(axis=1)
        return weights
