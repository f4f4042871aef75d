"""The image-quality gate: degraded dermoscopy images are flagged with the right reason, real ones pass,
and the committed thresholds keep to the 2% test budget they were chosen for."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from model_zoo import quality
from model_zoo.preprocessing import load_image

ROOT = Path(__file__).resolve().parents[2]
RECORD = json.loads(quality.THRESHOLDS_FILE.read_text())
LIMITS = quality.Thresholds.from_json(RECORD["thresholds"])


def split_paths(data_dir, dataset: str, split: str, step: int = 1) -> list:
    frame = pd.read_csv(ROOT / "trainer" / "splits" / f"{dataset}.csv")
    return [data_dir / dataset / p for p in frame.loc[frame["split"] == split, "path"]][::step]


@pytest.fixture(scope="module")
def lesion(test_images) -> Image.Image:
    """A real dermoscopy test image the gate passes (the degradations below must be what it catches)."""
    image = load_image(test_images[0][0])
    assert quality.check(image, LIMITS).usable
    return image


def test_real_dermoscopy_images_pass(test_images):
    verdicts = [quality.check(load_image(path), LIMITS) for path, _ in test_images]
    assert all(v.usable for v in verdicts), [v.messages for v in verdicts if not v.usable]


def test_blurred_image_is_flagged(lesion):
    verdict = quality.check(lesion.filter(ImageFilter.GaussianBlur(4)), LIMITS)
    assert not verdict.usable and verdict.flags == ("blurred",)
    assert "blurred" in verdict.message and "sharp focus" in verdict.message


def test_dark_image_is_flagged(lesion):
    verdict = quality.check(ImageEnhance.Brightness(lesion).enhance(0.2), LIMITS)
    assert "underexposed" in verdict.flags and "too dark" in verdict.message


def test_overexposed_image_is_flagged(lesion):
    washed = Image.fromarray(np.clip(np.asarray(lesion, np.float32) * 1.6 + 90, 0, 255).astype(np.uint8))
    verdict = quality.check(washed, LIMITS)
    assert "overexposed" in verdict.flags and "too bright" in verdict.message


def test_tiny_image_is_flagged(lesion):
    small = lesion.resize((80, 60))
    verdict = quality.check(small, LIMITS)
    assert "tiny" in verdict.flags
    assert "80x60 pixels" in verdict.message and f"at least {LIMITS.min_side} pixels" in verdict.message


def test_large_upload_is_judged_like_the_small_one(lesion):
    """Measured at one working size: a 12x enlargement of a sharp image is not called blurred, nor tiny."""
    big = lesion.resize((lesion.width * 12, lesion.height * 12), Image.Resampling.BICUBIC)
    assert quality.check(big, LIMITS).usable


def test_committed_thresholds_flag_at_most_2_percent_of_test_images(data_dir):
    assert RECORD["test"]["all"]["share"] <= 0.02
    assert RECORD["test"]["all"]["n"] == 1503 + 118
    assert all(v["share"] <= 0.01 for v in RECORD["validation"].values())      # the validation budget
    sample = split_paths(data_dir, "ham10000", "test", 6) + split_paths(data_dir, "isic_9class", "test", 2)
    flagged = [p.name for p in sample if not quality.check(load_image(p), LIMITS).usable]
    assert len(flagged) / len(sample) <= 0.02, flagged


def test_app_reads_the_committed_thresholds():
    limits, status = quality.thresholds()
    assert limits == LIMITS and status == ""
    assert quality.load_thresholds(quality.THRESHOLDS_FILE.with_name("missing.json"))[0] is None


def test_choose_keeps_validation_within_budget_and_respects_bounds():
    from trainer import quality as chooser

    rng = np.random.default_rng(0)

    def frame(n: int) -> pd.DataFrame:
        return pd.DataFrame({"sharpness": rng.lognormal(4, 1, n), "brightness": rng.normal(150, 20, n),
                             "dark_share": rng.beta(1, 60, n), "bright_share": rng.beta(1, 60, n),
                             "width": np.full(n, 200.0), "height": np.full(n, 150.0)})

    validation = {"a": frame(1500), "b": frame(300)}
    limits, choice = chooser.choose(validation)
    assert all(chooser.flag_table(f, limits)["share"] <= chooser.VALIDATION_BUDGET for f in validation.values())
    assert choice["tail_share"] > 0
    assert limits.min_brightness <= 60 and limits.max_dark_share >= 0.25 and limits.min_side == 100
    assert limits.min_sharpness == pytest.approx(choice["from_validation"]["min_sharpness"])


def test_trainer_cli_has_the_quality_command():
    from trainer.cli import build_parser

    args = build_parser().parse_args(["quality", "--hair-model", "x"])
    assert args.command == "quality" and args.hair_model == "x"


def test_remove_hair_paints_over_dark_strands():
    skin = Image.new("RGB", (200, 150), (205, 150, 140))
    ImageDraw.Draw(skin).ellipse((70, 45, 130, 105), fill=(120, 70, 50))
    hairy = skin.copy()
    draw = ImageDraw.Draw(hairy)
    for x in (20, 60, 160):
        draw.line((x, 0, x + 30, 150), fill=(25, 20, 20), width=2)
    cleaned = quality.remove_hair(hairy)
    strands = np.asarray(hairy).sum(axis=2) < 150
    assert cleaned.size == hairy.size and strands.sum() > 200
    before = np.abs(np.asarray(hairy, np.float32) - np.asarray(skin, np.float32))[strands].mean()
    after = np.abs(np.asarray(cleaned, np.float32) - np.asarray(skin, np.float32))[strands].mean()
    assert after < 0.25 * before


def test_remove_hair_shrinks_large_uploads():
    big = Image.new("RGB", (3000, 2000), (200, 150, 140))
    assert max(quality.remove_hair(big).size) == quality.HAIR_MAX_SIDE


def test_hair_removal_was_judged_on_validation_and_is_off_unless_it_helped():
    hair = RECORD["hair_removal"]
    assert hair["split"] == "ham10000 val" and hair["n"] == 1503
    assert hair["default"] == (hair["difference_ci95"][0] > 0)
    assert quality.hair_removal_default() == hair["default"]
