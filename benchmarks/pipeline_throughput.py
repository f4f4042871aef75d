"""Input-pipeline throughput: the trainer's tf.data pipeline vs a seed-style Python generator,
and vs the rate at which training steps consume images.

All produce batches of the same real images with the same kinds of augmentation
(flips, rotation, zoom, brightness, contrast, saturation, hue). The generator is
the seed-style way: every batch, PIL loads and resizes each file and augments it
with PIL/numpy in one Python thread. The trainer's pipeline decodes once, caches,
and augments batches in parallel tf.data maps, either with one Keras preprocessing
layer per transform (`--augment default`) or fused (`--augment fast`, the default:
one affine resampling, one HSV round trip), and fused with drawn hair on half the images
(`--hair 0.5`). Last, MobileNetV2 training steps at the
same size on ready batches give the rate the pipeline has to keep up with.
Everything runs in this process, one after the other, and the ratios are printed.

    python benchmarks/pipeline_throughput.py [--images 1024] [--size 192] [--batches 40]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_zoo.preprocessing import load_image, prepare_image  # noqa: E402
from trainer.augment import make_augmenter  # noqa: E402
from trainer.data import load_images, make_dataset, resolve_data_dir, select  # noqa: E402


def augment_pil(image: Image.Image, size: int, rng: np.random.Generator) -> np.ndarray:
    """The same kinds of augmentation as trainer/augment.py, with PIL and numpy, one image at a time."""
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    if rng.random() < 0.5:
        image = ImageOps.flip(image)
    image = image.rotate(float(rng.uniform(-180, 180)), resample=Image.Resampling.BILINEAR)
    scale = float(rng.uniform(0.8, 1.1))
    side = int(size / scale)
    offset = (size - side) // 2
    image = image.resize((size, size)).crop((offset, offset, offset + side, offset + side)).resize((size, size))
    image = ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.9, 1.1)))
    image = ImageEnhance.Contrast(image).enhance(float(rng.uniform(0.85, 1.15)))
    image = ImageEnhance.Color(image).enhance(float(rng.uniform(0.8, 1.2)))
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(int) + int(rng.integers(-8, 9))) % 256
    return np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"), dtype=np.float32)


def python_generator(paths: list[Path], labels: np.ndarray, size: int, batch: int, rng: np.random.Generator):
    """Seed-style: PIL load + PIL/numpy augmentation per batch, every epoch from disk, one thread."""
    while True:
        order = rng.permutation(len(paths))
        for start in range(0, len(order) - batch + 1, batch):
            xs = [augment_pil(Image.fromarray(prepare_image(load_image(paths[i]), (size, size)).astype(np.uint8)), size, rng)
                  for i in order[start:start + batch]]
            yield np.stack(xs), labels[order[start:start + batch]]


def rate(iterator, batches: int, batch: int) -> float:
    next(iterator)                                   # warm-up (graph tracing, first cache fill)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    rows = select("ham10000", "train").head(args.images)
    paths = [data_dir / "ham10000" / p for p in rows["path"]]
    labels = rows["label"].astype("category").cat.codes.to_numpy()

    baseline = rate(python_generator(paths, labels, args.size, args.batch, np.random.default_rng(0)), args.batches, args.batch)
    start = time.perf_counter()
    image_set = load_images("ham10000", rows, (args.size, args.size), data_dir)
    decode_seconds = time.perf_counter() - start
    rates = {}
    for name, hair in (("default", 0.0), ("fast", 0.0), ("fast", 0.5)):
        ds = make_dataset(image_set, args.batch, True, make_augmenter(name, hair=hair)).repeat()
        rates[name + ("+hair" if hair else "")] = rate(iter(ds), args.batches, args.batch)
    training = training_rate(args.size, args.batch, max(4, args.batches // 8))
    print(f"images: {len(paths)} at {args.size}px, batch {args.batch}, {args.batches} timed batches")
    print(f"python generator (PIL + numpy per batch): {baseline:8.1f} images/s")
    print(f"tf.data, Keras layers (--augment default): {rates['default']:8.1f} images/s "
          f"(+ one-off decode {decode_seconds:.1f} s)")
    print(f"tf.data, fused (--augment fast):          {rates['fast']:8.1f} images/s")
    print(f"tf.data, fused + drawn hair (--hair 0.5): {rates['fast+hair']:8.1f} images/s")
    print(f"MobileNetV2 training steps (all layers trainable): {training:8.1f} images/s")
    print(f"ratio tf.data fast / generator: {rates['fast'] / baseline:.2f}x")
    print(f"ratio tf.data fast / tf.data Keras layers: {rates['fast'] / rates['default']:.2f}x")
    print(f"ratio tf.data fast / training steps: {rates['fast'] / training:.2f}x (>= 1: the pipeline keeps up)")
    print(f"ratio tf.data fast + hair / fast: {rates['fast+hair'] / rates['fast']:.2f}x; "
          f"fast + hair / training steps: {rates['fast+hair'] / training:.2f}x")


def training_rate(size: int, batch: int, steps: int) -> float:
    """Images/s of MobileNetV2 training steps on one ready batch: what the pipeline must feed."""
    import keras

    from trainer.architectures import create_model

    model = create_model("mobilenet_v2", 7, input_size=size)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")
    y = keras.utils.to_categorical(np.arange(batch) % 7, 7)
    model.train_on_batch(x, y)                        # warm-up (tracing)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
