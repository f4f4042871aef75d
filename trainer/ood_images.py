"""A labelled set of non-dermoscopy images, built only from what installed packages ship.

Sources (all offline): scikit-learn's sample photos (china.jpg, flower.jpg); matplotlib's
sample data (grace_hopper.jpg photo, Minduka_Present_Blue_Pack.png product photo, logo2.png,
s1045.ima.gz MRI slice, jacksboro_fault_dem.npz and topobathy.npz terrain maps rendered with a
colour map, membrane.dat microscopy); and synthetic images: plain colours, noise, gradients,
checkerboards, text documents drawn with Pillow, and chart "screenshots" rendered by matplotlib.
Crops of the photos (including skin close-ups of a face) add scale and content variety.
"""
from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SEED = 7


def _mpl_sample(name: str) -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / name


def _colormapped(array: np.ndarray, cmap: str) -> Image.Image:
    from matplotlib import colormaps

    a = np.asarray(array, dtype=np.float64)
    a = (a - np.nanmin(a)) / (np.nanmax(a) - np.nanmin(a) + 1e-9)
    return Image.fromarray((colormaps[cmap](np.nan_to_num(a))[..., :3] * 255).astype(np.uint8))


def _photos() -> dict[str, Image.Image]:
    from sklearn.datasets import load_sample_images

    photos = {f"sklearn_{n}": Image.fromarray(img) for n, img in
              zip(("china", "flower"), load_sample_images().images)}
    photos["grace_hopper"] = Image.open(_mpl_sample("grace_hopper.jpg")).convert("RGB")
    photos["product_photo"] = Image.open(_mpl_sample("Minduka_Present_Blue_Pack.png")).convert("RGB")
    return photos


def _crops(name: str, image: Image.Image, rng: np.random.Generator, count: int) -> dict[str, Image.Image]:
    width, height = image.size
    out = {}
    for i in range(count):
        side = int(min(width, height) * rng.uniform(0.3, 0.8))
        left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        out[f"{name}_crop{i}"] = image.crop((left, top, left + side, top + side))
    return out


def _document(rng: np.random.Generator, index: int) -> Image.Image:
    page = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(page)
    words = ["patient", "report", "invoice", "total", "date", "skin", "lesion", "name", "address", "signature"]
    for line in range(12):
        text = " ".join(rng.choice(words, size=int(rng.integers(3, 8))))
        draw.text((20, 15 + 22 * line), text, fill=(20, 20, 20))
    if index % 2:
        draw.rectangle((300, 20, 380, 60), outline=(0, 0, 200), width=2)
    return page


def _chart(kind: str) -> Image.Image:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
    x = np.linspace(0, 10, 50)
    {"line": lambda: ax.plot(x, np.sin(x)), "bar": lambda: ax.bar(range(6), [3, 5, 2, 6, 4, 1]),
     "scatter": lambda: ax.scatter(np.random.default_rng(1).normal(size=80), np.random.default_rng(2).normal(size=80)),
     "hist": lambda: ax.hist(np.random.default_rng(3).normal(size=500), bins=20)}[kind]()
    ax.set_title(f"{kind} chart")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def build_ood_images() -> dict[str, Image.Image]:
    """name -> RGB image; about 70 images, deterministic."""
    rng = np.random.default_rng(SEED)
    images: dict[str, Image.Image] = {}
    photos = _photos()
    images.update(photos)
    for name, photo in photos.items():
        images.update(_crops(name, photo, rng, 4))
    face = photos["grace_hopper"]
    for i, box in enumerate(((180, 150, 330, 300), (200, 250, 320, 370), (150, 100, 350, 300))):
        images[f"skin_closeup{i}"] = face.crop(box)                    # clinical-style close-ups of facial skin
    images["logo"] = Image.open(_mpl_sample("logo2.png")).convert("RGB")
    with gzip.open(_mpl_sample("s1045.ima.gz")) as handle:
        images["mri_slice"] = _colormapped(np.frombuffer(handle.read(), np.uint16).reshape(256, 256), "gray")
    with np.load(_mpl_sample("jacksboro_fault_dem.npz")) as dem:
        images["terrain_map"] = _colormapped(dem["elevation"], "terrain")
    with np.load(_mpl_sample("topobathy.npz")) as topo:
        images["bathymetry_map"] = _colormapped(topo["topo"], "viridis")
    membrane = np.fromfile(_mpl_sample("membrane.dat"), dtype=np.float32)
    images["microscopy"] = _colormapped(membrane[: 256 * (len(membrane) // 256)].reshape(-1, 256)[:256], "gray")
    for i, colour in enumerate([(0, 0, 0), (255, 255, 255), (200, 30, 30), (30, 160, 60), (40, 60, 200), (230, 190, 160)]):
        images[f"plain_{i}"] = Image.new("RGB", (224, 224), colour)
    for i in range(4):
        noise = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) if i < 2 else \
            np.clip(rng.normal(128, 40, (224, 224, 3)), 0, 255).astype(np.uint8)
        images[f"noise_{i}"] = Image.fromarray(noise)
    ramp = np.linspace(0, 255, 224, dtype=np.uint8)
    for i, cmap in enumerate(["gray", "plasma", "coolwarm", "copper"]):
        images[f"gradient_{i}"] = _colormapped(np.tile(ramp, (224, 1)) if i % 2 else np.tile(ramp[:, None], (1, 224)), cmap)
    for i, cells in enumerate((8, 28)):
        board = (np.indices((224, 224)) // (224 // cells)).sum(axis=0) % 2 * 255
        images[f"checkerboard_{i}"] = Image.fromarray(board.astype(np.uint8)).convert("RGB")
    for i in range(6):
        images[f"document_{i}"] = _document(rng, i)
    for kind in ("line", "bar", "scatter", "hist"):
        images[f"screenshot_{kind}"] = _chart(kind)
    return images
