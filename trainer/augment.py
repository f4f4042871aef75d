"""Real-time augmentation inside the tf.data pipeline (on CPU, in parallel with training).

It runs in the pipeline rather than inside the model, so the saved model stays
augmentation-free and loads safely. Two implementations of the same transforms
(flips, rotation, zoom, brightness, contrast, saturation, hue) with the same ranges:

- "fast", "fast_light", "fast_strong" (`FusedAugment`): the geometric part as one composed
  affine transform per image (one bilinear resampling instead of three: flip, rotation,
  zoom), the colour part with one RGB->HSV->RGB round trip (hue and saturation together).
  Measured with benchmarks/pipeline_throughput.py.
- "default", "light", "strong": Keras preprocessing layers, one layer per transform (the
  committed models were trained with "default"; their recipes name it).

Hair occlusion (`--hair P`, `HairOcclusion`) draws dark hair-like strands over a share P of the
images, after the other transforms: hair is the commonest occluder in dermoscopy, and models that
learn to look through it are less thrown by it at test time (the hair augmentation of ISIC 2020 entries,
drawn here instead of pasted from other images, which would copy data between splits).

Dermatoscope shift (`--device-shift P`, `DeviceShift`) makes a share P of the images look as if taken with
another dermatoscope: a round field of view with dark corners, vignetting, air bubbles and specular highlights,
blur, a change of scale and a colour cast, each with probability 1/2, after the other transforms. Another
clinic's images (PH²) differ from HAM10000's in exactly these ways; the strength of each is set from the
physics of the devices, not measured on PH² (see docs/experiments.md).
"""
from __future__ import annotations

import math

import keras

VALUE_RANGE = (0.0, 255.0)
SCALES = {"light": 0.5, "default": 1.0, "strong": 1.5}


def _ranges(scale: float) -> dict:
    """The transforms' ranges at a strength `scale`, shared by both implementations."""
    return {
        "rotation": 0.5,                                   # fraction of a full turn either way: any angle
        "zoom": (-0.2 * scale, 0.1 * scale),               # Keras' convention: positive zooms out
        "brightness": 0.1 * scale,                         # fraction of the value range, added
        "contrast": 0.15 * scale,
        "saturation": (0.5 - 0.1 * scale, 0.5 + 0.1 * scale),   # Keras' convention: 0.5 = unchanged
        "hue": 0.03 * scale,
    }


class FusedAugment:
    """The same transforms as the Keras-layer augmenter, fused: one affine resampling, one HSV round trip.

    Called like a Keras layer on a float32 batch (n, h, w, 3) in 0..255: `augment(x, training=True)`.
    Dermoscopy has no canonical orientation, so all flips and any rotation are label-preserving.
    """

    def __init__(self, scale: float = 1.0, seed: int = 42):
        import tensorflow as tf

        self.ranges = _ranges(scale)
        self.generator = tf.random.Generator.from_seed(seed)

    def _uniform(self, n, low: float, high: float):
        return self.generator.uniform([n], low, high)

    def _affine(self, images):
        """Flip h/v (p=0.5 each), rotate by any angle and zoom about the centre; reflect at the borders."""
        import tensorflow as tf

        n = tf.shape(images)[0]
        height, width = tf.cast(tf.shape(images)[1], tf.float32), tf.cast(tf.shape(images)[2], tf.float32)
        flip_x = tf.where(self._uniform(n, 0.0, 1.0) < 0.5, -1.0, 1.0)
        flip_y = tf.where(self._uniform(n, 0.0, 1.0) < 0.5, -1.0, 1.0)
        turn = self.ranges["rotation"] * 2.0 * math.pi
        angle = self._uniform(n, -turn, turn)
        zoom = 1.0 + self._uniform(n, *self.ranges["zoom"])
        cos, sin = tf.cos(angle) * zoom, tf.sin(angle) * zoom
        # output pixel p maps to input c + zoom * R * F * (p - c): rows of the 2x2 part, then the offset
        a00, a01 = cos * flip_x, -sin * flip_y
        a10, a11 = sin * flip_x, cos * flip_y
        cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
        transforms = tf.stack([a00, a01, cx - a00 * cx - a01 * cy, a10, a11, cy - a10 * cx - a11 * cy,
                               tf.zeros_like(cos), tf.zeros_like(cos)], axis=1)
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=tf.shape(images)[1:3], fill_value=0.0,
            interpolation="BILINEAR", fill_mode="REFLECT")

    def _colour(self, images):
        """Brightness, contrast (per image), then saturation and hue in one HSV round trip; clipped to 0..255."""
        import tensorflow as tf

        n = tf.shape(images)[0]
        r = self.ranges
        shift = self._uniform(n, -r["brightness"], r["brightness"]) * 255.0
        images = tf.clip_by_value(images + shift[:, None, None, None], 0.0, 255.0)
        factor = self._uniform(n, 1.0 - r["contrast"], 1.0 + r["contrast"])[:, None, None, None]
        mean = tf.reduce_mean(images, axis=(1, 2), keepdims=True)
        images = tf.clip_by_value((images - mean) * factor + mean, 0.0, 255.0)
        saturation = self._uniform(n, *r["saturation"])
        saturation = (saturation / (1.0 - saturation))[:, None, None]
        hue = self._uniform(n, -r["hue"] / 2.0, r["hue"] / 2.0)[:, None, None]
        hsv = tf.image.rgb_to_hsv(images / 255.0)
        h = tf.math.floormod(hsv[..., 0] + hue, 1.0)
        s = tf.clip_by_value(hsv[..., 1] * saturation, 0.0, 1.0)
        return tf.clip_by_value(tf.image.hsv_to_rgb(tf.stack([h, s, hsv[..., 2]], axis=-1)) * 255.0, 0.0, 255.0)

    def __call__(self, images, training: bool = True):
        if not training:
            return images
        return self._colour(self._affine(images))


class HairOcclusion:
    """Dark, thin, curved strands over a share `probability` of the images in a float32 batch (0..255).

    The strands come from a bank of `bank_size` 256 px masks drawn once with Pillow (gently bent quadratic
    Bézier curves, 0.6-2 px wide at 224 px, anti-aliased by drawing at twice the size) and resized to the
    images; each occluded image takes a
    random mask from the bank, a dark brown to black colour and an opacity. TensorFlow ops, like "fast".
    """

    def __init__(self, probability: float, seed: int = 42, bank_size: int = 64, max_strands: int = 12):
        import tensorflow as tf

        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"hair probability must be within 0..1, not {probability}")
        self.probability, self.seed, self.bank_size, self.max_strands = probability, seed, bank_size, max_strands
        self.generator = tf.random.Generator.from_seed(seed + 1)
        self._banks: dict = {}

    def masks(self, height: int = 256, width: int = 256):
        """(bank_size, height, width, 1) float32 coverage in 0..1, drawn once per size (kept as numpy:
        tf.data traces the map function in graphs of its own, which cannot share a tensor)."""
        import numpy as np
        from PIL import Image, ImageDraw

        if (height, width) not in self._banks:
            rng = np.random.default_rng(self.seed)
            big = (2 * width, 2 * height)
            bank = []
            for _ in range(self.bank_size):
                canvas = Image.new("L", big, 0)
                draw = ImageDraw.Draw(canvas)
                for _ in range(rng.integers(1, self.max_strands + 1)):
                    draw.line(_strand(rng, big), fill=255, width=max(1, round(rng.uniform(1.2, 4.0) * width / 224)),
                              joint="curve")
                bank.append(np.asarray(canvas.resize((width, height), Image.BILINEAR), np.float32) / 255.0)
            self._banks[(height, width)] = np.stack(bank)[..., None]
        return self._banks[(height, width)]

    def __call__(self, images, training: bool = True):
        import tensorflow as tf

        if not training or self.probability == 0.0:
            return images
        n = tf.shape(images)[0]
        bank = tf.constant(self.masks())        # image sizes are often unknown while tf.data traces: resize
        chosen = tf.gather(bank, self.generator.uniform([n], 0, self.bank_size, dtype=tf.int32))
        chosen = tf.image.resize(chosen, tf.shape(images)[1:3], antialias=True)
        occluded = tf.cast(self.generator.uniform([n]) < self.probability, tf.float32)[:, None, None, None]
        darkness = self.generator.uniform([n, 1, 1, 1], 5.0, 70.0)
        colour = tf.concat([darkness, darkness * 0.8, darkness * 0.65], axis=-1)   # dark brown .. black
        coverage = chosen * occluded * self.generator.uniform([n, 1, 1, 1], 0.6, 1.0)   # some hair is fair
        return images * (1.0 - coverage) + colour * coverage


def _strand(rng, size: tuple[int, int]) -> list[tuple[float, float]]:
    """Points along one hair on a canvas of `size`: a random start and direction, 0.3-1.2 canvas widths
    long, bent by a control point off the chord (hair is long and gently curved, rarely looped)."""
    import numpy as np

    extent = np.asarray(size, float)
    start = rng.uniform(0.0, 1.0, 2) * extent
    angle, length = rng.uniform(0.0, 2.0 * np.pi), rng.uniform(0.3, 1.2) * extent[0]
    chord = np.array([np.cos(angle), np.sin(angle)]) * length
    control = start + chord / 2 + np.array([-chord[1], chord[0]]) * rng.normal(0.0, 0.15)
    t = np.linspace(0.0, 1.0, 48)[:, None]
    curve = (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t ** 2 * (start + chord)
    return [tuple(point) for point in curve]


DEVICE_EFFECTS = ("fov", "vignette", "bubbles", "blur", "scale", "colour")


class DeviceShift:
    """Another dermatoscope's look on a share `probability` of the images in a float32 batch (n, h, w, 3), 0..255.

    Each shifted image gets each of `effects` (DEVICE_EFFECTS) with probability `effect_probability`:

    - fov: a round field of view, radius 0.68-0.95 of the image diagonal's half (from a circle inside the square
      to one that only darkens the corners), centre jittered by up to 5%,
      a soft rim 2-6% wide, and near-black to dark-grey corners (5-60), like a contact dermatoscope's;
    - vignette: brightness falling by up to 45% towards the corners (quadratic in the distance);
    - bubbles: air bubbles and specular highlights of immersion fluid, bright rings and spots drawn once with
      Pillow into a bank of masks (like HairOcclusion), blended towards white;
    - blur: a 5x5 box blur mixed in at 0-100% (focus and compression of another camera);
    - scale: zoom by 0.75-1.3 about the centre (another magnification), the border reflected;
    - colour: per-channel gains 0.85-1.15 and a gamma 0.8-1.25 (another sensor and white balance).

    TensorFlow ops, like "fast"; clipped to 0..255 and the same shape as the input.
    """

    def __init__(self, probability: float, seed: int = 42, effects: tuple[str, ...] = DEVICE_EFFECTS,
                 effect_probability: float = 0.5, bank_size: int = 48):
        import tensorflow as tf

        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"device-shift probability must be within 0..1, not {probability}")
        unknown = set(effects) - set(DEVICE_EFFECTS)
        if unknown:
            raise ValueError(f"unknown device effects {sorted(unknown)}; choose from {', '.join(DEVICE_EFFECTS)}")
        self.probability, self.seed, self.effects = probability, seed, tuple(effects)
        self.effect_probability, self.bank_size = effect_probability, bank_size
        self.generator = tf.random.Generator.from_seed(seed + 2)
        self._bank = None

    def bubble_masks(self):
        """(bank_size, 256, 256, 1) float32 in 0..1: bright rings (bubble rims) and small spots (highlights)."""
        import numpy as np
        from PIL import Image, ImageDraw, ImageFilter

        if self._bank is None:
            rng = np.random.default_rng(self.seed)
            bank = []
            for _ in range(self.bank_size):
                canvas = Image.new("L", (512, 512), 0)
                draw = ImageDraw.Draw(canvas)
                for _ in range(rng.integers(1, 6)):                      # bubbles: rims of 6-60 px circles
                    x, y, r = rng.uniform(0, 512), rng.uniform(0, 512), rng.uniform(12, 120)
                    draw.ellipse((x - r, y - r, x + r, y + r), outline=int(rng.uniform(150, 255)),
                                 width=max(2, int(r * rng.uniform(0.06, 0.15))))
                for _ in range(rng.integers(0, 12)):                     # specular highlights: small bright spots
                    x, y, r = rng.uniform(0, 512), rng.uniform(0, 512), rng.uniform(2, 10)
                    draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
                canvas = canvas.filter(ImageFilter.GaussianBlur(1.5)).resize((256, 256), Image.BILINEAR)
                bank.append(np.asarray(canvas, np.float32) / 255.0)
            self._bank = np.stack(bank)[..., None]
        return self._bank

    def _chosen(self, n, gate):
        """Per-image 0/1 (n, 1, 1, 1): shifted at all (`gate`) and this effect drawn."""
        import tensorflow as tf

        drawn = tf.cast(self.generator.uniform([n]) < self.effect_probability, tf.float32)
        return (drawn * gate)[:, None, None, None]

    def _radius(self, images):
        """Distance of every pixel from a per-image jittered centre, in half-diagonals: (n, h, w, 1)."""
        import tensorflow as tf

        n, h, w = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
        hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
        cy = hf / 2 * (1 + self.generator.uniform([n, 1, 1], -0.05, 0.05))
        cx = wf / 2 * (1 + self.generator.uniform([n, 1, 1], -0.05, 0.05))
        ys = tf.range(hf)[None, :, None]
        xs = tf.range(wf)[None, None, :]
        half_diagonal = tf.sqrt(hf * hf + wf * wf) / 2
        return (tf.sqrt((ys - cy) ** 2 + (xs - cx) ** 2) / half_diagonal)[..., None]

    def _fov(self, images, use):
        import tensorflow as tf

        n = tf.shape(images)[0]
        radius = self._radius(images)
        edge = self.generator.uniform([n, 1, 1, 1], 0.68, 0.95)
        soft = self.generator.uniform([n, 1, 1, 1], 0.02, 0.06)
        outside = tf.clip_by_value((radius - edge) / soft + 0.5, 0.0, 1.0) * use
        dark = self.generator.uniform([n, 1, 1, 1], 5.0, 60.0)
        return images * (1.0 - outside) + dark * outside

    def _vignette(self, images, use):
        import tensorflow as tf

        strength = self.generator.uniform([tf.shape(images)[0], 1, 1, 1], 0.1, 0.45) * use
        return images * (1.0 - strength * tf.minimum(self._radius(images), 1.0) ** 2)

    def _bubbles(self, images, use):
        import tensorflow as tf

        n = tf.shape(images)[0]
        chosen = tf.gather(tf.constant(self.bubble_masks()), self.generator.uniform([n], 0, self.bank_size, tf.int32))
        cover = tf.image.resize(chosen, tf.shape(images)[1:3]) * use * self.generator.uniform([n, 1, 1, 1], 0.25, 0.7)
        return images * (1.0 - cover) + 250.0 * cover

    def _blur(self, images, use):
        import tensorflow as tf

        blurred = tf.nn.avg_pool2d(images, 5, 1, "SAME")
        mix = self.generator.uniform([tf.shape(images)[0], 1, 1, 1], 0.0, 1.0) * use
        return images * (1.0 - mix) + blurred * mix

    def _scale(self, images, use):
        import tensorflow as tf

        n = tf.shape(images)[0]
        height, width = tf.cast(tf.shape(images)[1], tf.float32), tf.cast(tf.shape(images)[2], tf.float32)
        zoom = 1.0 + (self.generator.uniform([n], 0.75, 1.3) - 1.0) * use[:, 0, 0, 0]   # 1 = unchanged
        inverse = 1.0 / zoom
        cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
        zeros = tf.zeros_like(zoom)
        transforms = tf.stack([inverse, zeros, cx - inverse * cx, zeros, inverse, cy - inverse * cy, zeros, zeros],
                              axis=1)
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=tf.shape(images)[1:3], fill_value=0.0,
            interpolation="BILINEAR", fill_mode="REFLECT")

    def _colour(self, images, use):
        import tensorflow as tf

        n = tf.shape(images)[0]
        gains = 1.0 + (self.generator.uniform([n, 1, 1, 3], 0.85, 1.15) - 1.0) * use
        gamma = 1.0 + (self.generator.uniform([n, 1, 1, 1], 0.8, 1.25) - 1.0) * use
        return 255.0 * tf.pow(tf.clip_by_value(images * gains / 255.0, 0.0, 1.0), gamma)

    def __call__(self, images, training: bool = True):
        import tensorflow as tf

        if not training or self.probability == 0.0:
            return images
        n = tf.shape(images)[0]
        gate = tf.cast(self.generator.uniform([n]) < self.probability, tf.float32)
        for name in ("scale", "colour", "blur", "vignette", "bubbles", "fov"):       # optics first, the rim last
            if name in self.effects:
                images = getattr(self, f"_{name}")(images, self._chosen(n, gate))
        return tf.clip_by_value(images, 0.0, 255.0)


def make_augmenter(strength: str = "default", seed: int = 42, hair: float = 0.0, device_shift: float = 0.0):
    """An augmenter for `strength` (see the module docstring), followed by hair occlusion on a share `hair` of the
    images and another dermatoscope's look on a share `device_shift`; None for "none" without either."""
    if device_shift:
        if keras.backend.backend() != "tensorflow":
            raise ValueError("--device-shift is built from TensorFlow ops; the "
                             f"{keras.backend.backend()} backend has no device shift")
        base, shift = make_augmenter(strength, seed, hair), DeviceShift(device_shift, seed)
        if base is None:
            return shift
        return lambda images, training=True: shift(base(images, training=training), training=training)
    if hair:
        if keras.backend.backend() != "tensorflow":
            raise ValueError(f"--hair is built from TensorFlow ops; the {keras.backend.backend()} backend has no hair")
        base, occlude = make_augmenter(strength, seed), HairOcclusion(hair, seed)
        if base is None:
            return occlude
        return lambda images, training=True: occlude(base(images, training=training), training=training)
    if strength == "none":
        return None
    if strength.startswith("fast"):
        if keras.backend.backend() != "tensorflow":
            raise ValueError(f"--augment {strength} is built from TensorFlow ops; on the {keras.backend.backend()} "
                             "backend use light, default or strong (the same transforms and ranges, as Keras layers)")
        return FusedAugment(SCALES[strength.partition("_")[2] or "default"], seed)
    r = _ranges(SCALES[strength])
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal_and_vertical", seed=seed),
            keras.layers.RandomRotation(r["rotation"], fill_mode="reflect", seed=seed),
            keras.layers.RandomZoom(r["zoom"], fill_mode="reflect", seed=seed),
            keras.layers.RandomBrightness(r["brightness"], value_range=VALUE_RANGE, seed=seed),
            keras.layers.RandomContrast(r["contrast"], value_range=VALUE_RANGE, seed=seed),
            keras.layers.RandomSaturation(r["saturation"], value_range=VALUE_RANGE, seed=seed),
            keras.layers.RandomHue(r["hue"], value_range=VALUE_RANGE, seed=seed),
        ],
        name="augment",
    )


MIXES = ("none", "mixup", "cutmix")


def make_mixer(kind: str = "none", seed: int = 42):
    """A batch mixer for one-hot labels (Keras' MixUp or CutMix layer), or None for "none".

    Returns a function (images, one_hot_labels) -> (mixed_images, mixed_labels). The labels become
    soft; class weights then follow each example's dominant class (Keras takes the argmax).
    """
    if kind == "none":
        return None
    if kind not in MIXES:
        raise ValueError(f"Unknown mix {kind!r}; choose one of {', '.join(MIXES)}")
    layer = keras.layers.MixUp(alpha=0.2, seed=seed) if kind == "mixup" else keras.layers.CutMix(factor=1.0, seed=seed)

    def mix(images, labels):
        out = layer({"images": images, "labels": labels}, training=True)
        return out["images"], out["labels"]

    return mix
