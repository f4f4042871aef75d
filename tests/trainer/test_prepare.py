"""`python -m trainer prepare` on the public layouts, rebuilt small from ../shared/data in tmp folders: the prepared
manifests and grouped splits, each refusal's message, atomic writing, and a prepared dataset trained and served."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import model_zoo
from model_zoo import datadir, splits
from trainer import prepare as prepare_module
from trainer.cli import main
from trainer.data import class_names, read_split, select
from trainer.prepare import prepare
from trainer.sources import HAM_METADATA, HAM_PARTS, PrepareError

MISSING_IN_BUNDLED_COPY = ["ISIC_0029861", "ISIC_0029938"]      # HAM10000_metadata.csv rows without an image there
ISIC9_CLASSES = ("actinic keratosis", "basal cell carcinoma", "melanoma", "nevus")
TINY = ["--input-size", "64", "--batch-size", "16", "--bootstrap", "50", "--verbose", "0", "--no-tensorboard"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- the layouts
@pytest.fixture(scope="module")
def ham_download(tmp_path_factory, data_dir) -> Path:
    """The official HAM10000 layout, small: every image of 22 nv lesions and 4 lesions of each other class, plus the
    two metadata rows whose images the bundled copy lacks; images split over the two part folders."""
    meta = pd.read_csv(data_dir / "ham10000" / HAM_METADATA)
    lesions = set(meta.loc[meta["image_id"].isin(MISSING_IN_BUNDLED_COPY), "lesion_id"])
    for dx, group in meta.groupby("dx"):
        lesions |= set(group["lesion_id"].drop_duplicates().head(22 if dx == "nv" else 4))
    subset = meta[meta["lesion_id"].isin(lesions)]
    root = tmp_path_factory.mktemp("ham_download")
    for part in HAM_PARTS:
        (root / part).mkdir()
    for i, image_id in enumerate(subset["image_id"]):
        source = data_dir / "ham10000" / "images" / f"{image_id}.jpg"
        if source.is_file():
            shutil.copy(source, root / HAM_PARTS[i % 2] / source.name)
    subset.to_csv(root / HAM_METADATA, index=False)
    return root


@pytest.fixture(scope="module")
def kaggle_download(tmp_path_factory, data_dir) -> Path:
    """The Kaggle "Skin cancer ISIC" layout, small: Train/<class>/ and Test/<class>/, with one Test image also filed
    (byte for byte, under another name) in Train."""
    manifest = pd.read_csv(data_dir / "isic_9class" / "manifest.csv")
    root = tmp_path_factory.mktemp("kaggle") / "Skin cancer ISIC The International Skin Imaging Collaboration"
    for label in ISIC9_CLASSES:
        for split, folder, count in (("train", "Train", 10), ("test", "Test", 3)):
            rows = manifest[(manifest["label"] == label) & (manifest["split"] == split)].head(count)
            (root / folder / label).mkdir(parents=True)
            for path in rows["path"]:
                shutil.copy(data_dir / "isic_9class" / path, root / folder / label / Path(path).name)
    test_image = sorted((root / "Test" / "melanoma").iterdir())[0]
    shutil.copy(test_image, root / "Train" / "melanoma" / f"{test_image.stem}(1).jpg")
    return root.parent


@pytest.fixture(scope="module")
def challenge_download(tmp_path_factory, data_dir) -> Path:
    """ISIC-challenge style: images in ISIC_2019_Training_Input/, a one-hot ground-truth CSV and a metadata CSV
    (age_approx, anatom_site_general, lesion_id, sex), built from HAM10000 images and their metadata."""
    meta = pd.read_csv(data_dir / "ham10000" / HAM_METADATA)
    meta = meta[~meta["image_id"].isin(MISSING_IN_BUNDLED_COPY)]
    codes = {"mel": "MEL", "nv": "NV", "bcc": "BCC", "akiec": "AK", "bkl": "BKL", "df": "DF", "vasc": "VASC"}
    lesions = set()
    for dx, group in meta.groupby("dx"):
        lesions |= set(group["lesion_id"].drop_duplicates().head(20 if dx == "nv" else 4))
    subset = meta[meta["lesion_id"].isin(lesions)]
    root = tmp_path_factory.mktemp("challenge")
    images = root / "ISIC_2019_Training_Input"
    images.mkdir()
    for image_id in subset["image_id"]:
        shutil.copy(data_dir / "ham10000" / "images" / f"{image_id}.jpg", images)
    truth = pd.DataFrame({"image": subset["image_id"]})
    for code in ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK"):
        truth[code] = (subset["dx"].map(codes) == code).astype(float).to_numpy()
    truth.drop(columns="SCC").to_csv(root / "ISIC_2019_Training_GroundTruth.csv", index=False)
    pd.DataFrame({"image": subset["image_id"], "age_approx": subset["age"], "anatom_site_general": subset["localization"],
                  "lesion_id": subset["lesion_id"], "sex": subset["sex"]}).to_csv(
        root / "ISIC_2019_Training_Metadata.csv", index=False)
    return root


@pytest.fixture(scope="module")
def folder_download(tmp_path_factory, data_dir) -> Path:
    """Three class folders of HAM10000 images (22, 8 and 8) with a truncated JPEG and a byte-identical duplicate."""
    manifest = pd.read_csv(data_dir / "ham10000" / "manifest.csv")
    root = tmp_path_factory.mktemp("folders")
    for label, count in (("nv", 22), ("mel", 8), ("bkl", 8)):
        (root / f"my {label}").mkdir()
        for path in manifest.loc[manifest["label"] == label, "path"].head(count):
            shutil.copy(data_dir / "ham10000" / path, root / f"my {label}")
    first = sorted((root / "my mel").iterdir())[0]
    shutil.copy(first, root / "my mel" / "same_again.jpg")
    data = sorted((root / "my bkl").iterdir())[0].read_bytes()
    (root / "my bkl" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    return root


@pytest.fixture
def out(tmp_path) -> Path:
    return tmp_path / "data"


# ---------------------------------------------------------------- HAM10000
def test_ham10000_metadata_rows_without_image_are_refused_by_name(ham_download, out):
    with pytest.raises(PrepareError, match=r"2 metadata row\(s\) name an image the source does not have: "
                                           r"ISIC_0029861, ISIC_0029938.*--skip-bad"):
        prepare(ham_download, "ham10000", "ham_small", out)
    assert not (out / "ham_small").exists()


def test_ham10000_prepared_with_lesion_grouped_splits(ham_download, out):
    folder = prepare(ham_download, "ham10000", "ham_small", out, skip_bad=True)
    info = json.loads((folder / "dataset.json").read_text())
    manifest = pd.read_csv(folder / "manifest.csv")
    split = read_split("ham_small", out)
    assert info["grouped_by"] == "lesion_id" and info["skipped"]["metadata_rows_without_image"] == 2
    assert pd.read_csv(folder / "skipped.csv")["image_id"].tolist() == MISSING_IN_BUNDLED_COPY
    assert {"lesion_id", "dx_type", "age", "sex", "localization", "sha256"} <= set(manifest.columns)
    assert set(manifest["label"]) == {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"}
    assert class_names("ham_small", out) == sorted(manifest["label"].unique())
    assert set(split["split"]) == {"train", "val", "test"}
    sides = split.groupby("lesion_id")["split"].nunique()
    assert (sides == 1).all(), "a lesion on two sides of the split"
    assert split.groupby("label")["split"].apply(lambda s: (s == "train").any()).all()
    for row in manifest.sample(5, random_state=0).itertuples():          # copied byte for byte
        assert _sha(folder / row.path) == row.sha256
    assert datadir.prepared_datasets(out) == ["ham_small"]


def test_ham10000_max_side_reduces_larger_images_only(ham_download, out):
    folder = prepare(ham_download, "ham10000", "ham_120", out, max_side=120, skip_bad=True)
    manifest = pd.read_csv(folder / "manifest.csv")
    with Image.open(folder / manifest["path"].iloc[0]) as image:
        assert image.format == "JPEG" and image.size == (120, 90)        # 200 x 150, aspect ratio kept
    assert (manifest["original_width"] == 200).all()
    folder = prepare(ham_download, "ham10000", "ham_big", out, max_side=400, skip_bad=True)   # nothing larger
    row = pd.read_csv(folder / "manifest.csv").iloc[0]
    assert _sha(folder / row["path"]) == row["sha256"]


def test_ham10000_misnamed_and_missing_columns_are_named(ham_download, tmp_path, out):
    source = tmp_path / "renamed"
    shutil.copytree(ham_download, source)
    meta = pd.read_csv(source / HAM_METADATA)
    meta.rename(columns={"dx": "DX", "lesion_id": "lesion"}).to_csv(source / HAM_METADATA, index=False)
    with pytest.raises(PrepareError) as error:
        prepare(source, "ham10000", "renamed", out)
    message = str(error.value)
    assert "HAM10000_metadata.csv lacks the column(s) 'lesion_id', 'dx'" in message
    assert "'DX' looks like 'dx': rename it" in message


def test_ham10000_unknown_labels_are_refused_with_counts(ham_download, tmp_path, out):
    source = tmp_path / "relabelled"
    shutil.copytree(ham_download, source)
    meta = pd.read_csv(source / HAM_METADATA)
    meta.loc[meta.index[:3], "dx"] = "melanoma"
    meta.to_csv(source / HAM_METADATA, index=False)
    with pytest.raises(PrepareError, match=r"Unknown label\(s\) in HAM10000_metadata.csv \(column dx\): "
                                           r"'melanoma' \(3 images\)\. This format's labels are akiec, bcc"):
        prepare(source, "ham10000", "relabelled", out, skip_bad=True)


def test_ham10000_without_its_part_folders_is_refused(tmp_path, ham_download, out):
    source = tmp_path / "flat"
    source.mkdir()
    shutil.copy(ham_download / HAM_METADATA, source)
    with pytest.raises(PrepareError, match="lacks HAM10000_images_part_1/ and HAM10000_images_part_2/"):
        prepare(source, "ham10000", "flat", out)


# ---------------------------------------------------------------- Kaggle 9-class
def test_kaggle_layout_keeps_its_test_split_and_drops_the_duplicate(kaggle_download, out):
    folder = prepare(kaggle_download, "isic_9class", "kaggle_small", out)
    split = read_split("kaggle_small", out)
    duplicates = pd.read_csv(folder / "duplicates.csv")
    assert len(duplicates) == 1 and duplicates["source_file"].iloc[0].endswith("(1).jpg")
    assert duplicates["kept_image_id"].iloc[0] in set(split.loc[split["split"] == "test", "image_id"])
    assert (split["split"] == "test").sum() == 3 * len(ISIC9_CLASSES)         # the download's own Test, whole
    assert set(split["split"]) == {"train", "val", "test"}
    manifest = pd.read_csv(folder / "manifest.csv")
    assert set(manifest.loc[manifest["source_split"] == "test", "image_id"]) == set(
        split.loc[split["split"] == "test", "image_id"])
    assert "the download's own test split kept" in json.loads((folder / "dataset.json").read_text())["split_rule"]


def test_kaggle_layout_with_an_unknown_class_folder_is_refused(kaggle_download, tmp_path, out):
    source = tmp_path / "kaggle"
    shutil.copytree(kaggle_download, source)
    inner = next(source.iterdir())
    shutil.copytree(inner / "Train" / "nevus", inner / "Train" / "mole")
    with pytest.raises(PrepareError, match=r"Unknown label\(s\) in the class folders of .*'mole' \(1 image\)"):
        prepare(source, "isic_9class", "kaggle_bad", out)


# ---------------------------------------------------------------- ISIC challenge
def test_challenge_csv_becomes_labels_metadata_and_grouped_splits(challenge_download, out):
    folder = prepare(challenge_download, "isic_challenge", "challenge_small", out)
    manifest = pd.read_csv(folder / "manifest.csv")
    info = json.loads((folder / "dataset.json").read_text())
    assert set(manifest["label"]) == {"ak", "bcc", "bkl", "df", "mel", "nv", "vasc"}    # UNK: no image, no class
    assert info["grouped_by"] == "lesion_id" and {"age", "sex", "localization"} <= set(info["metadata_columns"])
    split = read_split("challenge_small", out)
    assert (split.groupby("lesion_id")["split"].nunique() == 1).all()
    assert manifest["age"].notna().mean() > 0.9 and set(manifest["sex"].dropna()) <= {"male", "female", "unknown"}


@pytest.mark.parametrize("change, message", [
    (lambda t: t.rename(columns={"image": "img"}), r"lacks the column\(s\) 'image'; it has 'img', 'MEL'"),
    (lambda t: t.assign(XYZ=0.0), r"Unknown label column\(s\) in ISIC_2019_Training_GroundTruth.csv: XYZ"),
    (lambda t: t.assign(MEL=1.0), r"row\(s\) of ISIC_2019_Training_GroundTruth.csv are not one-hot"),
    (lambda t: t.assign(**{c: 0.0 for c in ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC")}, UNK=1.0),
     r"Unknown label\(s\) in ISIC_2019_Training_GroundTruth.csv .*'UNK'"),
])
def test_challenge_csv_refusals(challenge_download, tmp_path, out, change, message):
    source = tmp_path / "challenge"
    shutil.copytree(challenge_download, source)
    truth_path = source / "ISIC_2019_Training_GroundTruth.csv"
    change(pd.read_csv(truth_path)).to_csv(truth_path, index=False)
    with pytest.raises(PrepareError, match=message):
        prepare(source, "isic_challenge", "challenge_bad", out)


# ---------------------------------------------------------------- any class folders
def test_folders_with_a_truncated_file_are_refused_by_name(folder_download, out):
    with pytest.raises(PrepareError, match=r"1 image\(s\) cannot be opened .*truncated.jpg: The image data is "
                                           r"damaged or incomplete.*--skip-bad"):
        prepare(folder_download, "folders", "three", out)
    assert not (out / "three").exists()


def test_folders_prepared_stratified_with_duplicate_listed(folder_download, out):
    folder = prepare(folder_download, "folders", "three", out, skip_bad=True)
    info = json.loads((folder / "dataset.json").read_text())
    split = read_split("three", out)
    assert info["classes"] == {"my bkl": 8, "my mel": 8, "my nv": 22}           # truncated file and copy left out
    assert pd.read_csv(folder / "skipped.csv")["file"].tolist() == ["my bkl/truncated.jpg"]
    duplicates = pd.read_csv(folder / "duplicates.csv")
    assert duplicates["source_file"].tolist() == ["my mel/same_again.jpg"]
    assert info["grouped_by"].startswith("image_id") and "stratified" in info["grouped_by"]
    assert (split.groupby("label")["split"].apply(lambda s: set(s)) == {"train", "val", "test"}).all()
    assert info["split_rule"].startswith("70/15/15")


@pytest.mark.parametrize("layout, message", [
    ({"a": 3, "b": 0}, r"Class\(es\) without images: 'b'"),
    ({"a": 3, "b": 1}, r"Class\(es\) with a single image: 'b' \(1\)"),
    ({"a": 3}, r"should hold one folder per class \(at least two\)"),
])
def test_empty_and_one_image_classes_are_refused(tmp_path, out, data_dir, layout, message):
    images = sorted((data_dir / "ham10000" / "images").iterdir())
    source, used = tmp_path / "source", 0
    for label, count in layout.items():
        (source / label).mkdir(parents=True)
        for path in images[used:used + count]:
            shutil.copy(path, source / label)
        used += count
    with pytest.raises(PrepareError, match=message):
        prepare(source, "folders", "tiny", out)


@pytest.mark.parametrize("name", ["isic_9class", "ham10000", "ph2"])
def test_builtin_names_are_refused(folder_download, out, name):
    with pytest.raises(PrepareError, match=f"'{name}' is the name of a built-in dataset"):
        prepare(folder_download, "folders", name, out, skip_bad=True)


def test_an_existing_dataset_is_replaced_only_when_asked(folder_download, out):
    prepare(folder_download, "folders", "again", out, skip_bad=True)
    with pytest.raises(PrepareError, match="pass --overwrite"):
        prepare(folder_download, "folders", "again", out, skip_bad=True)
    prepare(folder_download, "folders", "again", out, skip_bad=True, overwrite=True)
    assert datadir.prepared_datasets(out) == ["again"]


def test_an_interrupted_prepare_leaves_no_dataset(folder_download, out, monkeypatch):
    """Stopped while writing images: nothing under the name; a killed run's temporary folder is no dataset, and
    the next prepare of that name removes it."""
    real = prepare_module.write_images

    def write_then_stop(rows, folder, max_side):
        real(rows.head(5), folder, max_side)
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "write_images", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        prepare(folder_download, "folders", "halfway", out, skip_bad=True)
    assert not (out / "halfway").exists() and not list(out.glob(".tmp-*"))
    monkeypatch.setattr(prepare_module, "write_images", real)
    stale = out / ".tmp-halfway-deadbeef"                    # what SIGKILL leaves behind
    (stale / "images").mkdir(parents=True)
    (stale / "dataset.json").write_text("{}")
    assert datadir.prepared_datasets(out) == [] and not datadir.has_dataset(out)
    prepare(folder_download, "folders", "halfway", out, skip_bad=True)
    assert not stale.exists() and datadir.prepared_datasets(out) == ["halfway"]


def test_cli_prints_the_refusal_and_exits_2(folder_download, out, capsys):
    assert main(["prepare", str(folder_download), "--format", "folders", "--name", "three", "--data-dir",
                 str(out)]) == 2
    assert "error: 1 image(s) cannot be opened" in capsys.readouterr().err
    assert main(["prepare", str(folder_download), "--format", "folders", "--name", "three", "--data-dir",
                 str(out), "--skip-bad"]) == 0
    assert str(out / "three") in capsys.readouterr().out


# ---------------------------------------------------------------- the split rule
def test_small_sets_split_in_seven_folds_and_keep_every_class_in_training():
    labels = ["a"] * 12 + ["b"] * 3
    plan = splits.fold_plan(labels)
    assert plan == (7, (0,), (1,)) and splits.describe_plan(*plan) == "72/14/14"
    result = splits.grouped_split(labels, [str(i) for i in range(15)], 42, *plan)
    assert (result[np.array(labels) == "b"] == "train").any()
    with pytest.raises(splits.SplitError, match="needs at least 7 groups"):
        splits.grouped_split(["a"] * 8, ["g1", "g2"] * 4)


# ---------------------------------------------------------------- trained and served
def test_a_prepared_dataset_trains_into_the_zoo_and_is_served(folder_download, tmp_path, tmp_zoo, capsys):
    data = tmp_path / "data"
    prepare(folder_download, "folders", "three", data, skip_bad=True)
    assert main(["train", "-a", "custom_cnn", "-d", "three", "--epochs", "1", *TINY, "--data-dir", str(data),
                 "--zoo-dir", str(tmp_zoo), "--run-dir", str(tmp_path / "run")]) == 0
    card = model_zoo.get_card("custom_cnn_three", tmp_zoo)
    assert card["dataset"] == "three" and card["classes"] == ["my bkl", "my mel", "my nv"]
    assert card["trained_on"]["split_file"].startswith("three/split.csv in the data folder")
    assert card["trained_on"]["counts"]["test"] == len(select("three", "test", data_dir=data))
    model = model_zoo.load("custom_cnn_three", tmp_zoo)
    paths = [data / "three" / p for p in select("three", "test", data_dir=data)["path"][:3]]
    probabilities = model.predict(paths)
    assert probabilities.shape == (3, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert main(["evaluate", "custom_cnn_three", "--zoo-dir", str(tmp_zoo), "--data-dir", str(data),
                 "--bootstrap", "20"]) == 0
    assert main(["calibrate", "custom_cnn_three", "--zoo-dir", str(tmp_zoo), "--bootstrap", "20"]) == 0
    metrics = json.loads((Path(card["folder"]) / "metrics.json").read_text())
    assert "ood" in metrics and metrics["clinical"]["bootstrap"]["test_images"] == card["trained_on"]["counts"]["test"]
    capsys.readouterr()
    assert main(["subgroups", "custom_cnn_three", "--zoo-dir", str(tmp_zoo), "--data-dir", str(data)]) == 2
    assert "prepared datasets whose manifest records sex, age or body site" in capsys.readouterr().err
    assert main(["train", "-a", "custom_cnn", "-d", "nowhere", "--data-dir", str(data), "--zoo-dir", str(tmp_zoo),
                 "--run-dir", str(tmp_path / "run2")]) == 2
    assert "Unknown dataset 'nowhere'" in capsys.readouterr().err


def test_tune_and_subgroups_take_a_prepared_dataset(ham_download, tmp_path):
    """KerasTuner on a prepared dataset's saved split; subgroup metrics from its manifest's patient details."""
    from trainer.subgroups import subgroup_metrics
    from trainer.tune import OBJECTIVE, tune

    data = tmp_path / "data"
    folder = prepare(ham_download, "ham10000", "ham_small", data, skip_bad=True)
    best = tune("custom_cnn", "ham_small", data_dir=data, max_trials=1, epochs=1, limit_per_class=3,
                directory=str(tmp_path / "tuner"), sizes=[32], initial_points=1)
    assert best["trials"] == 1 and 0.0 <= best[OBJECTIVE] <= 1.0
    test = select("ham_small", "test", data_dir=data)
    predictions = pd.DataFrame({"split": "test", "image_id": test["image_id"], "true": test["label"],
                                "predicted": test["label"]})
    groups = subgroup_metrics(predictions, pd.read_csv(folder / "manifest.csv"), 20)
    assert set(groups) == {"sex", "age_band", "localization"}
    assert sum(row["n"] for row in groups["sex"].values()) == len(test)


@pytest.mark.slow
def test_the_whole_ham10000_download_gets_the_committed_split(data_dir, tmp_path, monkeypatch):
    """Prepared from the official layout (every metadata row, the images in the two part folders), HAM10000's
    split is trainer/splits/ham10000.csv exactly: models trained on a full-resolution download are tested on the
    same lesions as the zoo's."""
    source = tmp_path / "download"
    for part in HAM_PARTS:
        (source / part).mkdir(parents=True)
    for i, path in enumerate(sorted((data_dir / "ham10000" / "images").iterdir())):
        (source / HAM_PARTS[i % 2] / path.name).symlink_to(path)
    shutil.copy(data_dir / "ham10000" / HAM_METADATA, source)
    monkeypatch.setattr(prepare_module, "write_images", lambda rows, folder, max_side: None)   # the split only
    prepare(source, "ham10000", "ham_full", tmp_path / "data", max_side=450, skip_bad=True)
    prepared = read_split("ham_full", tmp_path / "data").set_index("image_id")["split"]
    committed = read_split("ham10000").set_index("image_id")["split"]
    assert len(prepared) == len(committed) == 10013
    assert prepared.sort_index().equals(committed.sort_index())
