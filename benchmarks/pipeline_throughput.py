"""Input-pipeline throughput: the trainer's tf.data pipeline vs a seed-style Python generator.

Both produce the same batches (decoded, resized, augmented with flips/rotation/
brightness) from the same real images; the generator loads with PIL and
augments with numpy per batch, as the original project did. Both run in this
process, one after the other, and the ratio is printed.

    python benchmarks/pipeline_throughput.py [--images 1024] [--size 192] [--batches 40]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_zoo.preprocessing import load_image, prepare_image  # noqa: E402
from trainer.augment import make_augmenter  # noqa: E402
from trainer.data import load_images, make_dataset, resolve_data_dir, select  # noqa: E402


def python_generator(paths: list[Path], labels: np.ndarray, size: int, batch: int, rng: np.random.Generator):
    """Seed-style: PIL load + numpy augmentation per batch, every epoch from disk."""
    while True:
        order = rng.permutation(len(paths))
        for start in range(0, len(order) - batch + 1, batch):
            xs = []
            for i in order[start:start + batch]:
                x = prepare_image(load_image(paths[i]), (size, size))
                if rng.random() < 0.5:
                    x = x[:, ::-1]
                if rng.random() < 0.5:
                    x = x[::-1]
                x = np.rot90(x, rng.integers(4))
                x = np.clip(x * rng.uniform(0.9, 1.1), 0, 255)
                xs.append(x)
            yield np.stack(xs).astype(np.float32), labels[order[start:start + batch]]


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
    ds = make_dataset(image_set, args.batch, True, make_augmenter("default")).repeat()
    ours = rate(iter(ds), args.batches, args.batch)
    print(f"images: {len(paths)} at {args.size}px, batch {args.batch}, {args.batches} timed batches")
    print(f"python generator (PIL + numpy per batch): {baseline:8.1f} images/s")
    print(f"tf.data (decode once, cache, parallel augment, prefetch): {ours:8.1f} images/s "
          f"(+ one-off decode {decode_seconds:.1f} s)")
    print(f"ratio tf.data / generator: {ours / baseline:.2f}x")


if __name__ == "__main__":
    main()
