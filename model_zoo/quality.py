"""Image-quality gate: is an upload sharp, well exposed and large enough to classify at all?

A model trained on well-lit, in-focus dermoscopy answers confidently on a blurred or washed-out image
too; the gate refuses such an image with a plain-language reason before the answer is shown. Every
image is measured at one working size (WORK_SIZE x WORK_SIZE grey levels, area-averaged when
shrinking), so a 200x150 HAM10000 image and a 12-megapixel phone upload are judged alike, at about
the detail the model itself sees:

- blurred: variance of the Laplacian (Pech-Pacheco et al. 2000) in the image's sharpest tile below
  `min_sharpness`;
- under-exposed: mean grey level below `min_brightness`, or more than `max_dark_share` of the
  central field near-black;
- over-exposed: mean grey level above `max_brightness`, or more than `max_bright_share` of the
  central field near-white (clipped);
- tiny: shorter side below `min_side` pixels (measured on the upload itself).

Shares are taken in the central field (CENTRE_MARGIN cut from each side) because the corners of a
round dermatoscope field are often black. Thresholds are chosen on the validation splits by
`python -m trainer quality` (trainer/quality.py) and stored in quality_thresholds.json beside this
file, with the share of test images they flag. Also: `remove_hair`, DullRazor-style hair removal,
off by default (the same file records how it did on validation). OpenCV, no TensorFlow.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

THRESHOLDS_FILE = Path(__file__).resolve().parent / "quality_thresholds.json"
WORK_SIZE = 128                  # grey image side the measures are taken at
TILES = 4                        # sharpness is taken in the sharpest of 4 x 4 tiles
CENTRE_MARGIN = 0.2              # share of each side left out of the central field
NEAR_BLACK = 15                  # grey level at or below which a pixel counts as black
NEAR_WHITE = 245                 # grey level at or above which a pixel counts as clipped white
HAIR_MAX_SIDE = 1024             # remove_hair works (and returns) at most this many pixels on the longer side

FLAGS = ("tiny", "blurred", "underexposed", "overexposed")
MESSAGES = {
    "tiny": "The image is only {width}x{height} pixels; at least {min_side} pixels on the shorter side are needed "
            "to see the lesion's structure. Please upload the original, full-size image.",
    "blurred": "The image looks blurred (out of focus or moved), so the lesion's structures cannot be seen. "
               "Please retake it with the lesion in sharp focus.",
    "underexposed": "The image is too dark (under-exposed), so parts of the lesion are lost in shadow. "
                    "Please retake it with more light.",
    "overexposed": "The image is too bright (over-exposed): parts of it are washed out to white. "
                   "Please retake it with less light and without glare.",
}


@dataclass(frozen=True)
class Thresholds:
    """The gate's limits; an image outside any of them is flagged."""

    min_sharpness: float
    min_brightness: float
    max_brightness: float
    max_dark_share: float
    max_bright_share: float
    min_side: int

    @classmethod
    def from_json(cls, data: dict) -> "Thresholds":
        return cls(**{name: type_(data[name]) for name, type_ in
                      (("min_sharpness", float), ("min_brightness", float), ("max_brightness", float),
                       ("max_dark_share", float), ("max_bright_share", float), ("min_side", int))})


@dataclass(frozen=True)
class QualityVerdict:
    """The gate's answer for one image: usable or not, which flags, why, and the raw measures."""

    usable: bool
    flags: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    measures: dict = field(default_factory=dict)

    @property
    def message(self) -> str:
        return " ".join(self.messages)


def _grey(image: Image.Image | np.ndarray) -> np.ndarray:
    """uint8 grey levels of an RGB PIL image or (h, w, 3) array (float 0..255 accepted)."""
    import cv2

    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    rgb = np.clip(rgb, 0, 255).astype(np.uint8) if rgb.dtype != np.uint8 else rgb
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _working(grey: np.ndarray) -> np.ndarray:
    """The grey image at WORK_SIZE x WORK_SIZE: area-averaged when shrinking, bilinear when enlarging."""
    import cv2

    shrinking = min(grey.shape) > WORK_SIZE
    return cv2.resize(grey, (WORK_SIZE, WORK_SIZE), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def sharpness(small: np.ndarray) -> float:
    """Variance of the Laplacian in the sharpest of TILES x TILES tiles of the working image.

    Over the whole image, a small lesion in focus on smooth skin scores as low as a blurred one
    (most HAM10000 images at the bottom of the whole-image score were such, not blurred); the
    sharpest tile is where the lesion's edge is, and blurring lowers every tile.
    """
    import cv2

    laplacian = cv2.Laplacian(small, cv2.CV_64F)
    step = small.shape[0] // TILES
    return float(max(laplacian[i:i + step, j:j + step].var()
                     for i in range(0, step * TILES, step) for j in range(0, step * TILES, step)))


def measure(image: Image.Image | np.ndarray) -> dict[str, float]:
    """The raw measures the gate compares with its thresholds (see the module docstring)."""
    grey = _grey(image)
    small = _working(grey)
    cut = int(round(WORK_SIZE * CENTRE_MARGIN))
    centre = small[cut:WORK_SIZE - cut, cut:WORK_SIZE - cut]
    return {
        "sharpness": sharpness(small),
        "brightness": float(small.mean()),
        "dark_share": float((centre <= NEAR_BLACK).mean()),
        "bright_share": float((centre >= NEAR_WHITE).mean()),
        "width": float(grey.shape[1]),
        "height": float(grey.shape[0]),
    }


def flags_for(measures: dict[str, float], limits: Thresholds) -> tuple[str, ...]:
    """Which FLAGS the measures raise (pure: the trainer calls it on stored measures)."""
    raised = {
        "tiny": min(measures["width"], measures["height"]) < limits.min_side,
        "blurred": measures["sharpness"] < limits.min_sharpness,
        "underexposed": measures["brightness"] < limits.min_brightness or measures["dark_share"] > limits.max_dark_share,
        "overexposed": measures["brightness"] > limits.max_brightness
                       or measures["bright_share"] > limits.max_bright_share,
    }
    return tuple(flag for flag in FLAGS if raised[flag])


def verdict_for(measures: dict[str, float], limits: Thresholds) -> QualityVerdict:
    """Flags plus their messages."""
    flags = flags_for(measures, limits)
    values = {"width": int(measures["width"]), "height": int(measures["height"]), "min_side": limits.min_side}
    return QualityVerdict(not flags, flags, tuple(MESSAGES[f].format(**values) for f in flags), dict(measures))


def load_thresholds(path: Optional[Path] = None) -> tuple[Optional[Thresholds], str]:
    """(thresholds, "") or (None, why the gate is off): the committed JSON is missing or damaged."""
    path = Path(path or THRESHOLDS_FILE)
    try:
        return Thresholds.from_json(json.loads(path.read_text())["thresholds"]), ""
    except FileNotFoundError:
        return None, f"no image-quality thresholds ({path.name} is missing)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{path.name} is damaged ({type(exc).__name__})"


_CACHE: dict[str, tuple[float, tuple[Optional[Thresholds], str]]] = {}


def thresholds() -> tuple[Optional[Thresholds], str]:
    """The committed thresholds, read once per file change (pages call this per image)."""
    key = str(THRESHOLDS_FILE)
    stamp = THRESHOLDS_FILE.stat().st_mtime if THRESHOLDS_FILE.is_file() else -1.0
    if key not in _CACHE or _CACHE[key][0] != stamp:
        _CACHE[key] = (stamp, load_thresholds(THRESHOLDS_FILE))
    return _CACHE[key][1]


def check(image: Image.Image | np.ndarray, limits: Optional[Thresholds] = None) -> Optional[QualityVerdict]:
    """The gate's verdict, with the committed thresholds unless `limits` is given; None when there are none."""
    limits = limits or thresholds()[0]
    return None if limits is None else verdict_for(measure(image), limits)


def hair_removal_default(path: Optional[Path] = None) -> bool:
    """Whether hair removal is on by default: only if the committed validation check found that it helps."""
    try:
        return bool(json.loads(Path(path or THRESHOLDS_FILE).read_text()).get("hair_removal", {}).get("default", False))
    except (OSError, ValueError, AttributeError):
        return False


def hair_mask(image: Image.Image) -> np.ndarray:
    """DullRazor's hair mask (Lee et al. 1997): thin dark strands that a morphological black-hat picks out.

    The structuring element grows with the image so that it stays wider than a hair at any resolution.
    """
    import cv2

    grey = _grey(image)
    side = int(np.clip(round(min(grey.shape) / 30), 5, 25)) | 1          # odd, 5..25 px
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    blackhat = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, kernel)
    blackhat = cv2.GaussianBlur(blackhat, (3, 3), 0)
    return (blackhat > 10).astype(np.uint8) * 255


def remove_hair(image: Image.Image) -> Image.Image:
    """The image with hair painted over from its surroundings (cv2.inpaint, Telea's method).

    Large uploads are first shrunk to HAIR_MAX_SIDE on the longer side: inpainting 12 megapixels takes
    seconds, and every model looks at 224 pixels or fewer.
    """
    import cv2

    rgb = image.convert("RGB")
    if max(rgb.size) > HAIR_MAX_SIDE:
        scale = HAIR_MAX_SIDE / max(rgb.size)
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.Resampling.LANCZOS)
    mask = hair_mask(rgb)
    radius = max(1, round(min(rgb.size) / 150))
    return Image.fromarray(cv2.inpaint(np.asarray(rgb), mask, radius, cv2.INPAINT_TELEA))


def as_dict(limits: Thresholds) -> dict:
    return asdict(limits)
