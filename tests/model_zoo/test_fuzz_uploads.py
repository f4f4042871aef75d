"""Hostile and broken uploads through the app's image-loading path: >= 1000 generated inputs.

Each input must either load as an RGB image or raise ImageError with a message;
anything else is a crash. Counts are written to test-artifacts/fuzz_report.json.
"""
from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_zoo.preprocessing import ImageError, load_image, prepare_image

ROOT = Path(__file__).resolve().parents[2]
SEED = 1234


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kw)
    return buffer.getvalue()


def _base_images(rng: np.random.Generator, real: list[bytes]) -> dict[str, bytes]:
    photo = Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), "RGB")
    exif = Image.Exif()
    exif[0x0112] = 8
    frames = [photo.convert("P"), Image.new("P", photo.size, 5)]
    palette = photo.convert("P")
    palette.info["transparency"] = 0
    return {
        "jpeg": _encode(photo, "JPEG"), "png": _encode(photo, "PNG"), "webp": _encode(photo, "WEBP"),
        "tiff": _encode(photo, "TIFF"), "bmp": _encode(photo, "BMP"),
        "png16": _encode(Image.fromarray((rng.integers(0, 65535, (64, 64))).astype(np.uint16)), "PNG"),
        "cmyk": _encode(photo.convert("CMYK"), "JPEG"), "palette_alpha": _encode(palette, "PNG"),
        "la": _encode(photo.convert("LA"), "PNG"), "exif_rotated": _encode(photo, "JPEG", exif=exif),
        "gif_animated": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "tiny_1x1": _encode(Image.new("RGB", (1, 1)), "PNG"), "strip_20000x10": _encode(Image.new("RGB", (20000, 10)), "PNG"),
        **{f"real_{i}": data for i, data in enumerate(real)},
    }


def generate_inputs(real: list[bytes], n_random: int = 150, n_truncated: int = 300, n_flipped: int = 600):
    """Yield (kind, bytes) deterministically; well over 1000 inputs."""
    rng = np.random.default_rng(SEED)
    bases = _base_images(rng, real)
    yield "empty", b""
    for name, data in bases.items():
        yield f"valid:{name}", data
    yield "bomb_png_30000", _encode(Image.new("1", (30000, 30000)), "PNG")
    yield "bomb_gif_20000", _encode(Image.new("P", (20000, 20000)), "GIF")
    yield "pdf_renamed", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF"
    yield "svg_renamed", b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>"
    yield "html_renamed", b"<!doctype html><html><body><script>alert(1)</script></body></html>"
    for i in range(n_random):
        yield "random_bytes", rng.integers(0, 256, int(rng.integers(1, 5000)), dtype=np.uint8).tobytes()
    keys = list(bases)
    for i in range(n_truncated):
        data = bases[keys[i % len(keys)]]
        yield f"truncated:{keys[i % len(keys)]}", data[: int(rng.integers(1, max(2, len(data))))]
    for i in range(n_flipped):
        data = bytearray(bases[keys[i % len(keys)]])
        for _ in range(int(rng.integers(1, 20))):
            position = int(rng.integers(0, len(data)))
            data[position] ^= 1 << int(rng.integers(0, 8))
        yield f"bitflip:{keys[i % len(keys)]}", bytes(data)


def test_thousand_hostile_inputs_never_crash(test_images):
    real = [path.read_bytes() for path, _ in test_images[:3]]
    report = {"tried": 0, "accepted": 0, "rejected_with_message": 0, "crashed": 0, "crashes": []}
    for kind, data in generate_inputs(real):
        report["tried"] += 1
        try:
            image = load_image(data)
            assert image.mode == "RGB"
            prepare_image(image, (64, 64))
            report["accepted"] += 1
        except ImageError as exc:
            assert str(exc), kind
            report["rejected_with_message"] += 1
        except Exception as exc:  # noqa: BLE001  (this is what the test counts)
            report["crashed"] += 1
            report["crashes"].append(f"{kind}: {type(exc).__name__}: {exc}"[:300])
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "fuzz_report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "crashes"}))
    assert report["tried"] >= 1000
    assert report["crashed"] == 0, report["crashes"][:10]
    assert report["accepted"] > 0 and report["rejected_with_message"] > 0


@pytest.mark.parametrize("size", [(30000, 30000), (60000, 60000)])
def test_decompression_bomb_is_refused_with_bounded_memory(size):
    bomb = _encode(Image.new("1", size), "PNG")
    tracemalloc.start()
    with pytest.raises(ImageError, match="megapixels"):
        load_image(bomb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB while refusing a bomb"
