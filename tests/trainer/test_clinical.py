"""Clinical views (trainer/clinical.py, model_zoo/conformal.py): lesion bootstrap, conformal sets, stored fields."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import model_zoo
from model_zoo import store
from model_zoo.calibration import apply_temperature
from model_zoo.conformal import prediction_set, set_mask
from trainer import clinical

ROOT = Path(__file__).resolve().parents[2]


def _calibrated_synthetic(n: int, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them: exchangeable and calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.6), size=n)
    labels = (rng.random((n, 1)) > p.cumsum(axis=1)).sum(axis=1).clip(0, k - 1)
    return p, labels


# ---------------------------------------------------------------- lesion (cluster) bootstrap
def test_cluster_resamples_take_whole_lesions():
    groups = np.array(["a"] * 5 + ["b"] * 1 + ["c"] * 3 + ["d"] * 2 + [f"s{i}" for i in range(6)])
    for index in clinical.cluster_resamples(groups, n_bootstrap=200, seed=1):
        drawn = np.bincount(index, minlength=len(groups))
        for lesion in np.unique(groups):
            counts = drawn[groups == lesion]
            assert (counts == counts[0]).all(), f"lesion {lesion} was split: {counts}"


def test_lesion_bootstrap_is_wider_when_images_of_a_lesion_agree():
    """30 lesions x 10 images, each lesion all right or all wrong: 30 pieces of evidence, not 300."""
    rng = np.random.default_rng(3)
    lesion_correct = rng.random(30) < 0.6
    groups = np.repeat(np.arange(30), 10)
    y_true = np.zeros(300, int)
    y_pred = np.where(np.repeat(lesion_correct, 10), 0, 1)
    by_image = clinical.headline_intervals(y_true, y_pred, 2, clinical.cluster_resamples(np.arange(300), 500))
    by_lesion = clinical.headline_intervals(y_true, y_pred, 2, clinical.cluster_resamples(groups, 500))
    width = lambda ci: ci[1] - ci[0]
    assert width(by_lesion["accuracy"]) > 2.5 * width(by_image["accuracy"])
    assert width(by_lesion["accuracy"]) == pytest.approx(2 * 1.96 * np.sqrt(0.6 * 0.4 / 30), rel=0.35)


def test_ham10000_test_images_are_grouped_by_their_split_lesion_ids():
    split = pd.read_csv(ROOT / "trainer" / "splits" / "ham10000.csv")
    test = split[split["split"] == "test"]
    groups, known = clinical.lesion_groups("ham10000", test["image_id"].tolist())
    assert known == len(test) and (groups == test["lesion_id"].to_numpy()).all()
    assert len(set(groups)) < len(groups)                    # several images of some lesions
    groups, known = clinical.lesion_groups(None, ["x", "y"])
    assert known == 0 and list(groups) == ["x", "y"]


def test_per_class_intervals_leave_out_undefined_resamples():
    y_true = np.array([0, 0, 0, 1, 1, 2] * 5)
    y_pred = np.array([0, 0, 1, 1, 1, 0] * 5)               # class 2 is never predicted: precision undefined
    rows = clinical.per_class_intervals(y_true, y_pred, ["a", "b", "c"], clinical.cluster_resamples(np.arange(30), 200))
    assert rows["c"]["precision"] is None and rows["c"]["ci95"]["precision"] is None
    assert rows["c"]["recall"] == 0 and rows["a"]["recall"] == pytest.approx(2 / 3)
    for row in rows.values():
        for name in clinical.PER_CLASS_METRICS:
            if row[name] is not None:
                low, high = row["ci95"][name]
                assert low <= row[name] <= high


# ---------------------------------------------------------------- conformal prediction
def test_conformal_coverage_on_an_exchangeable_split():
    p, labels = _calibrated_synthetic(22000, seed=5)
    cal, test = slice(0, 2000), slice(2000, None)
    qhat = clinical.fit_conformal(p[cal], labels[cal], 0.90)
    sets = set_mask(p[test], qhat)
    coverage = sets[np.arange(20000), labels[test]].mean()
    assert 0.88 <= coverage <= 0.93
    # the guarantee is on average over calibration draws: mean over a few is >= target up to noise
    runs = []
    for seed in range(8):
        p, labels = _calibrated_synthetic(3000, seed=100 + seed)
        q = clinical.fit_conformal(p[:500], labels[:500], 0.90)
        runs.append(set_mask(p[500:], q)[np.arange(2500), labels[500:]].mean())
    assert np.mean(runs) >= 0.895


def test_conformal_sets_grow_as_coverage_rises():
    p, labels = _calibrated_synthetic(4000, seed=7)
    targets = (0.5, 0.8, 0.9, 0.99)
    masks = [set_mask(p[2000:], clinical.fit_conformal(p[:2000], labels[:2000], t)) for t in targets]
    sizes = [m.sum(axis=1).mean() for m in masks]
    assert all(a < b for a, b in zip(sizes, sizes[1:])), sizes
    for smaller, larger in zip(masks, masks[1:]):
        assert not (smaller & ~larger).any()                 # nested: a class once in stays in
    assert clinical.fit_conformal(p[:5], labels[:5], 0.90) == 1.0        # too few images: every class


def test_prediction_set_app_side():
    entry = {"qhat": 0.8, "non_empty": True}
    classes = ["a", "b", "c", "d"]
    assert prediction_set([0.1, 0.5, 0.25, 0.15], entry, classes) == ["b", "c"]
    assert prediction_set([0.1, 0.5, 0.25, 0.15], {"clinical": {"conformal": entry}}, classes) == ["b", "c"]
    assert prediction_set([0.26, 0.25, 0.25, 0.24], {"qhat": 0.5}, classes) == ["a"]     # never empty
    with pytest.raises(ValueError):
        prediction_set([0.5, 0.5], entry, classes)
    with pytest.raises(KeyError):
        prediction_set([0.1, 0.5, 0.25, 0.15], {"test": {}}, classes)


# ---------------------------------------------------------------- the committed zoo
def _committed() -> list[tuple[dict, dict]]:
    return [(card, model_zoo.read_metrics(card["id"])) for card in model_zoo.list_models()]


@pytest.mark.parametrize("card_metrics", _committed(), ids=lambda cm: cm[0]["id"])
def test_committed_models_have_sane_clinical_fields(card_metrics):
    card, metrics = card_metrics
    c = metrics.get("clinical")
    assert c, f"run `python -m trainer clinical {card['id']}`"
    assert c["schema_version"] == clinical.SCHEMA_VERSION
    assert c["temperature"] == pytest.approx(card["calibration"]["temperature"]), "stale: the card was recalibrated"
    classes = card["classes"]
    test = metrics["test"]

    bm = c["benign_malignant"]
    assert 0.5 < bm["test"]["roc_auc"] <= 1
    low, high = bm["test"]["roc_auc_ci95"]
    assert low <= bm["test"]["roc_auc"] <= high
    op = bm["malignant_operating_point"]
    assert op["chosen_on"] == "validation" and op["validation"]["sensitivity"] >= op["target_sensitivity"]
    assert op["test"]["positives"] == sum(row["support"] for name, row in test["per_class"].items()
                                          if name in bm["malignant_classes"])
    mel = bm["melanoma_alert"]
    assert mel["test"]["threshold"] == card["melanoma_operating_point"]["validation"]["threshold"]
    assert mel["test"]["sensitivity"] == pytest.approx(card["melanoma_operating_point"]["test"]["sensitivity"])

    for name in classes:
        row = c["per_class"][name]
        assert row["support"] == test["per_class"][name]["support"]
        assert row["recall"] == pytest.approx(test["per_class"][name]["recall"])
        for m in clinical.PER_CLASS_METRICS:
            if row[m] is not None:
                low, high = row["ci95"][m]
                assert low - 1e-12 <= row[m] <= high + 1e-12, (name, m)
        curve = c["pr_curves"][name]
        assert len(curve["recall"]) <= clinical.CURVE_POINTS
        if curve["positives"]:
            assert 0 < curve["average_precision"] <= 1
            assert all(a >= b for a, b in zip(curve["recall"], curve["recall"][1:]))

    head = c["headline_ci95"]
    assert head["values"]["balanced_accuracy"] == pytest.approx(test["balanced_accuracy"])
    if card["dataset"] == "ham10000":
        assert c["bootstrap"]["unit"] == "lesion" and head["lesion"] is not None
        assert c["bootstrap"]["test_lesions"] < c["bootstrap"]["test_images"]
        assert "not independent" in c["bootstrap"]["note"]

    conf = c["conformal"]
    assert conf["method"] == "LAC" and conf["fitted_on"] == "validation" and conf["target_coverage"] == 0.9
    coverage, size = conf["test"]["coverage"], conf["test"]["mean_set_size"]
    assert 1 <= size <= len(classes)
    assert conf["test_coverage_below_target"] == (conf["test"]["coverage_ci95"][1] < conf["target_coverage"])
    if card["dataset"] == "ham10000":          # validation and test drawn alike (lesion-grouped folds)
        assert abs(coverage - 0.90) <= 0.03
    else:                                      # isic_9class: a shifted test split is flagged, not hidden
        assert coverage >= 0.90 - 0.03 or conf["warning"]


def test_app_side_sets_reproduce_the_stored_test_coverage():
    card = model_zoo.list_models()[0]                          # the default model
    metrics = model_zoo.read_metrics(card["id"])
    classes = card["classes"]
    table = clinical.read_prediction_table(model_zoo.zoo.model_folder(card["id"]), classes)
    test = table[table["split"] == "test"]
    calibrated = apply_temperature(test[[f"p_{c}" for c in classes]].to_numpy(), card["calibration"]["temperature"])
    covered = [true in prediction_set(p, metrics, classes) for p, true in zip(calibrated, test["true"])]
    assert np.mean(covered) == pytest.approx(metrics["clinical"]["conformal"]["test"]["coverage"])


# ---------------------------------------------------------------- the CLI
def test_cli_recomputes_a_copied_model_and_leaves_its_card_alone(tmp_zoo):
    from trainer.cli import main

    source = ROOT / "model_zoo" / "models" / "custom_cnn_isic_9class"
    folder = tmp_zoo / "copy_of_cnn"
    folder.mkdir()
    for name in (store.CARD_FILE, store.PREDICTIONS_FILE):
        shutil.copy(source / name, folder / name)
    metrics = json.loads((source / store.METRICS_FILE).read_text())
    metrics.pop("clinical", None)
    (folder / store.METRICS_FILE).write_text(json.dumps(metrics))
    card_before = (folder / store.CARD_FILE).read_bytes()

    assert main(["clinical", "copy_of_cnn", "--bootstrap", "30"]) == 0
    after = json.loads((folder / store.METRICS_FILE).read_text())
    assert set(metrics) | {"clinical"} == set(after) and after["test"] == metrics["test"]
    assert after["clinical"]["bootstrap"]["resamples"] == 30
    assert after["clinical"]["conformal"]["test"]["n"] == metrics["test"]["n"]
    assert (folder / store.CARD_FILE).read_bytes() == card_before
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]        # no temporary file left behind

    assert main(["clinical", "--all", "--bootstrap", "10", "--coverage", "0.8"]) == 0
    assert json.loads((folder / store.METRICS_FILE).read_text())["clinical"]["conformal"]["target_coverage"] == 0.8
    assert main(["clinical", "no_such_model"]) == 2
    assert main(["clinical"]) == 2


def test_calibrate_recomputes_the_clinical_block(tmp_zoo):
    """calibrate_model (the flow after training and for ensembles) refreshes the block with the new temperature."""
    from trainer.calibrate import calibrate_model

    source = ROOT / "model_zoo" / "models" / "custom_cnn_isic_9class"
    folder = tmp_zoo / "copy"
    folder.mkdir()
    for name in (store.CARD_FILE, store.PREDICTIONS_FILE):
        shutil.copy(source / name, folder / name)
    (folder / store.METRICS_FILE).write_text("{}\n")
    result = calibrate_model("copy", n_bootstrap=20)
    stored = json.loads((folder / store.METRICS_FILE).read_text())["clinical"]
    assert stored["temperature"] == result["temperature"] and stored["bootstrap"]["resamples"] == 20


def test_a_quick_run_with_tiny_splits_still_gets_a_block():
    """Quick runs (--limit-per-class) publish a few images per class; a class can be missing from validation."""
    classes = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    rng = np.random.default_rng(0)
    val_y, test_y = np.repeat(np.arange(6), 3), np.repeat(np.arange(7), 2)     # no vasc in validation
    val_p, test_p = rng.dirichlet(np.ones(7), len(val_y)), rng.dirichlet(np.ones(7), len(test_y))
    ids = lambda n, s: np.array([f"{s}{i}" for i in range(n)])
    block = clinical.clinical_metrics(classes, (ids(len(val_y), "v"), val_p, val_y), (ids(len(test_y), "t"), test_p, test_y),
                                      "not_a_dataset", 1.0, ("mel", 0.2), n_bootstrap=20)
    json.dumps(block, allow_nan=False)                       # strict JSON: no NaN sneaks in
    assert block["bootstrap"]["unit"] == "image" and block["headline_ci95"]["lesion"] is None
    assert block["conformal"]["qhat"] <= 1 and block["conformal"]["test"]["n"] == 14
