"""The saved splits: reproducible, leak-free, the requested proportions."""
from __future__ import annotations

import pandas as pd
import pytest

from trainer import data


def test_ham10000_no_lesion_on_two_sides():
    split = data.read_split("ham10000")
    sides = split.groupby("lesion_id")["split"].nunique()
    leaking = sides[sides > 1]
    assert leaking.empty, f"{len(leaking)} lesions are in more than one split, e.g. {list(leaking.index[:5])}"


def test_ham10000_proportions_and_stratification():
    split = data.read_split("ham10000")
    shares = split["split"].value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.70, abs=0.02)
    assert shares["val"] == pytest.approx(0.15, abs=0.02)
    assert shares["test"] == pytest.approx(0.15, abs=0.02)
    overall = split["label"].value_counts(normalize=True)
    for name in ("val", "test"):
        part = split[split["split"] == name]["label"].value_counts(normalize=True)
        for label, share in overall.items():
            assert part[label] == pytest.approx(share, abs=0.02), (name, label)


def test_isic_9class_test_split_is_official_and_untouched(data_dir):
    manifest = pd.read_csv(data_dir / "isic_9class" / "manifest.csv")
    split = data.read_split("isic_9class")
    assert set(split.loc[split["split"] == "test", "image_id"]) == set(manifest.loc[manifest["split"] == "test", "isic_id"])


def test_isic_9class_no_test_image_or_lesion_in_training():
    split = data.read_split("isic_9class")
    test = split[split["split"] == "test"]
    used = split[split["split"].isin(["train", "val"])]
    assert not set(test["image_id"]) & set(used["image_id"])
    assert not set(test["lesion_id"]) & set(used["lesion_id"]), "a test lesion has another image in train/val"


def test_isic_9class_validation_is_about_15_percent_of_train():
    split = data.read_split("isic_9class")
    counts = split["split"].value_counts()
    share = counts["val"] / (counts["val"] + counts["train"] + counts.get("excluded_lesion_leak", 0))
    assert share == pytest.approx(0.15, abs=0.02)


def test_label_conflicts_excluded_from_training_by_default():
    train = data.select("isic_9class", "train")
    assert train["label_conflict"].sum() == 0
    with_conflicts = data.select("isic_9class", "train", include_label_conflicts=True)
    assert with_conflicts["label_conflict"].sum() > 0


def test_splits_regenerate_identically(data_dir):
    for dataset, maker in (("isic_9class", data.make_isic_9class_split), ("ham10000", data.make_ham10000_split)):
        fresh = maker(data_dir)
        saved = data.read_split(dataset)
        pd.testing.assert_frame_equal(fresh.reset_index(drop=True), saved.reset_index(drop=True), check_dtype=False)


def test_split_files_hold_no_pixels():
    for dataset in data.DATASETS:
        columns = set(data.read_split(dataset).columns)
        assert columns == {"image_id", "path", "label", "lesion_id", "label_conflict", "split"}


def test_missing_data_dir_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    with pytest.raises(data.DataError, match="isic_9class"):
        data.resolve_data_dir(tmp_path / "nowhere")


def test_corrupt_image_is_skipped_and_reported(tmp_path, data_dir):
    import shutil

    rows = data.select("isic_9class", "test").head(3).copy()
    for path in rows["path"]:
        (tmp_path / "isic_9class" / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / "isic_9class" / path, tmp_path / "isic_9class" / path)
    broken = tmp_path / "isic_9class" / rows["path"].iloc[1]
    broken.write_bytes(broken.read_bytes()[:200])
    loaded = data.load_images("isic_9class", rows, (32, 32), tmp_path)
    assert len(loaded) == 2
    assert [p for p, _ in loaded.skipped] == [rows["path"].iloc[1]]
    assert "damaged" in loaded.skipped[0][1]


def test_ham10000_extra_training_rows_hold_no_9class_evaluation_lesion(data_dir):
    """Checked against the overlap file itself, not the split's own lesion column."""
    extra = data.extra_training_rows("isic_9class", "ham10000")
    overlap = pd.read_csv(data_dir / "isic_9class_vs_ham10000_overlap.csv")
    nine = data.read_split("isic_9class")
    evaluated = set(nine.loc[nine["split"].isin(["val", "test"]), "image_id"])
    held_out_lesions = set(overlap.loc[overlap["isic_id"].isin(evaluated), "ham10000_lesion_id"])
    assert held_out_lesions, "the overlap file should link some 9-class val/test images to HAM10000 lesions"
    assert not set(extra["lesion_id"]) & held_out_lesions
    assert not set(extra["image_id"]) & set(nine["image_id"])
    assert set(extra["label"]) <= set(data.class_names("isic_9class"))
    ham = data.read_split("ham10000").set_index("image_id")
    assert "akiec" not in set(ham.loc[extra["image_id"], "label"])          # AK and Bowen's are not separable
    assert (extra["split"] == "train").all() and len(extra) > 5000


def test_extra_training_rows_cap_and_unknown_pair():
    capped = data.extra_training_rows("isic_9class", "ham10000", per_class=50)
    assert capped["label"].value_counts().max() == 50
    with pytest.raises(ValueError, match="No label mapping"):
        data.extra_training_rows("ham10000", "ham10000")


def test_isic_9class_extra_rows_for_ham10000_add_no_ham10000_image():
    extra = data.extra_training_rows("ham10000", "isic_9class")
    ham = data.read_split("ham10000")
    assert not set(extra["image_id"]) & set(ham["image_id"])           # the 1437 shared images stay out
    nine = data.read_split("isic_9class").set_index("image_id").loc[extra["image_id"]]
    assert not {"seborrheic keratosis", "squamous cell carcinoma"} & set(nine["label"])
    assert (nine["label_conflict"] == 0).all()
    assert set(extra["label"]) <= set(data.class_names("ham10000")) and (extra["label"] == "mel").sum() > 300
