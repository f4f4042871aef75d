"""model_zoo.reports: shaping metrics.json / predictions.csv / history.csv / card.json for the pages."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import model_zoo
from model_zoo import reports
from trainer.metrics import compute_metrics

CLASSES = ["melanoma", "nevus", "vascular lesion"]


@pytest.fixture(scope="module")
def sample():
    """12 images, 3 classes: melanoma mostly missed (recall 1/4), nevus perfect, vascular 3/4."""
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    predicted = [1, 1, 1, 0, 1, 1, 1, 1, 2, 2, 2, 0]
    rng = np.random.default_rng(0)
    proba = rng.uniform(0.0, 0.2, (12, 3))
    for i, p in enumerate(predicted):
        proba[i, p] = 0.6 + 0.03 * i
    proba /= proba.sum(axis=1, keepdims=True)
    metrics = {"test": compute_metrics(y_true, proba, CLASSES, n_bootstrap=50)}
    rows = []
    for i, (t, p) in enumerate(zip(y_true, proba)):
        row = {"split": "test" if i < 12 else "val", "image_id": f"ISIC_{i:07d}", "path": f"Test/x/ISIC_{i:07d}.jpg",
               "true": CLASSES[t], "predicted": CLASSES[int(p.argmax())]}
        row.update({f"p_{c}": float(v) for c, v in zip(CLASSES, p)})
        rows.append(row)
    rows.append({"split": "val", "image_id": "ISIC_9", "path": "v.jpg", "true": "nevus", "predicted": "melanoma",
                 "p_melanoma": 0.99, "p_nevus": 0.005, "p_vascular lesion": 0.005})
    return y_true, proba, metrics, rows


def test_formatting():
    assert reports.pct(0.714) == "71%"
    assert reports.pct(0.714, 1) == "71.4%"
    assert reports.pct(None) == "n/a"
    assert reports.pct(float("nan")) == "n/a"
    assert reports.with_ci(0.71, [0.63, 0.78]) == "71% (95% CI 63–78%)"
    assert reports.with_ci(0.71, None) == "71%"
    assert reports.human_bytes(512) == "512 bytes"
    assert reports.human_bytes(9 * 1024 * 1024) == "9.0 MB"
    assert reports.human_seconds(42) == "42 s"
    assert reports.human_seconds(75) == "1 min 15 s"
    assert reports.human_seconds(4000) == "1 h 06 min"
    assert reports.human_seconds(None) == "n/a"


def test_metric_table_has_every_metric_with_ci_and_explanation(sample):
    _, _, metrics, _ = sample
    rows = reports.metric_table(metrics["test"])
    by_name = {r["Metric"]: r for r in rows}
    assert {"Balanced accuracy", "Accuracy", "Macro F1", "Macro precision", "Macro recall (sensitivity)",
            "Weighted F1", "Macro ROC AUC", "Log loss", "Images (n)"} <= set(by_name)
    assert by_name["Accuracy"]["Value"] == reports.pct(metrics["test"]["accuracy"], 1)
    assert by_name["Balanced accuracy"]["95% CI"].count("%") == 2
    assert by_name["Weighted F1"]["95% CI"] == ""
    assert by_name["Images (n)"]["Value"] == "12"
    assert all(r["What it means"] for r in rows)
    assert reports.metric_table({}) == []


def test_per_class_flags_weak_classes_and_names_the_worst(sample):
    _, _, metrics, _ = sample
    rows = reports.per_class_table(metrics["test"])
    assert [r["label"] for r in rows] == CLASSES
    assert [r["Class"] for r in rows] == ["Melanoma", "Melanocytic nevus (mole)", "Vascular lesion"]
    assert [r["Weak"] for r in rows] == [True, False, False]
    assert rows[0]["Recall (sensitivity)"] == pytest.approx(0.25)
    assert rows[0]["Support (images)"] == 4
    assert reports.weak_classes(metrics["test"]) == ["melanoma"]
    worst = reports.worst_class(metrics["test"])
    assert worst == {"label": "melanoma", "name": "Melanoma", "recall": pytest.approx(0.25), "support": 4}
    assert reports.worst_class({}) is None


def test_absent_class_is_not_called_weak_or_worst():
    split = {"per_class": {"a": {"recall": 0.0, "support": 0}, "b": {"recall": 0.8, "support": 5}}}
    assert reports.weak_classes(split) == []
    assert reports.worst_class(split)["label"] == "b"


def test_confusion_rows_counts_and_row_shares(sample):
    _, _, metrics, _ = sample
    rows = reports.confusion_rows(metrics["test"])
    assert len(rows) == 9
    cell = next(r for r in rows if r["True"] == "Melanoma" and r["Predicted"] == "Melanocytic nevus (mole)")
    assert cell["Count"] == 3 and cell["Row share"] == pytest.approx(0.75) and not cell["Correct"]
    for true in {r["True"] for r in rows}:
        assert sum(r["Row share"] for r in rows if r["True"] == true) == pytest.approx(1.0)
    assert sum(r["Count"] for r in rows) == 12
    assert reports.class_order(metrics["test"])[0] == "Melanoma"
    assert reports.confusion_rows({}) == []


def test_roc_curves_match_sklearn_auc(sample):
    y_true, proba, metrics, rows = sample
    points, aucs = reports.roc_curves(rows, "test")
    assert set(aucs) == set(CLASSES)
    for c, name in enumerate(CLASSES):
        assert aucs[name] == pytest.approx(roc_auc_score(y_true == c, proba[:, c]))
        assert aucs[name] == pytest.approx(metrics["test"]["per_class"][name]["roc_auc"])
    mel = [p for p in points if p["Class"] == "Melanoma"]
    assert mel[0]["False positive rate"] == 0 and mel[-1]["True positive rate"] == 1
    assert mel[0]["Legend"] == f"Melanoma (AUC {aucs['melanoma']:.2f})"
    assert all(0 <= p["Threshold"] <= 1 for p in points)   # sklearn's leading inf threshold is clipped
    json.dumps(points)                                      # chart data must be JSON-safe


def test_roc_curves_skip_classes_absent_from_the_split(sample):
    *_, rows = sample
    points, aucs = reports.roc_curves(rows, "validation")   # "validation" means predictions.csv's "val"
    assert aucs == {}                                       # one image: no class has both positives and negatives
    assert points == []
    assert reports.roc_curves([], "test") == ([], {})


def test_misclassified_most_confident_first(sample):
    *_, rows = sample
    wrong = reports.misclassified(rows, "test")
    assert len(wrong) == 4
    assert all(w["true"] != w["predicted"] for w in wrong)
    confidences = [w["confidence"] for w in wrong]
    assert confidences == sorted(confidences, reverse=True)
    assert {"image_id", "path", "true", "predicted", "confidence", "p_true"} <= set(wrong[0])
    assert len(reports.misclassified(rows, "test", limit=2)) == 2
    val = reports.misclassified(rows, "validation")
    assert [w["image_id"] for w in val] == ["ISIC_9"] and val[0]["confidence"] == 0.99


def test_history_long_and_phase_starts():
    history = [
        {"epoch": 1.0, "phase": "head", "loss": 1.2, "val_loss": 1.1, "accuracy": 0.5, "val_accuracy": 0.55,
         "balanced_accuracy": 0.4, "val_balanced_accuracy": 0.45, "learning_rate": 0.001},
        {"epoch": 2.0, "phase": "head", "loss": 1.0, "val_loss": "", "accuracy": 0.6, "val_accuracy": 0.6},
        {"epoch": 3.0, "phase": "finetune", "loss": 0.8, "val_loss": 0.9, "accuracy": 0.7, "val_accuracy": 0.65},
    ]
    rows = reports.history_long(history)
    assert {r["Metric"] for r in rows} == {"Loss", "Accuracy", "Balanced accuracy"}
    assert {r["Set"] for r in rows} == {"training", "validation"}
    assert not any(r["Epoch"] == 2 and r["Metric"] == "Loss" and r["Set"] == "validation" for r in rows)
    assert len(rows) == 6 + 3 + 4
    assert reports.phase_starts(history) == [{"Epoch": 2.5, "Phase": "finetune"}]
    assert reports.history_long([]) == [] and reports.phase_starts([]) == []


def _card(model_id="m1", dataset="isic_9class", classes=CLASSES, **extra):
    card = {
        "id": model_id, "display_name": f"Model {model_id}", "architecture": "mobilenet_v2",
        "architecture_description": "MobileNetV2", "dataset": dataset, "classes": list(classes),
        "input_size": [192, 192], "pretrained": "ImageNet (offline copy)", "parameters": 2_269_513,
        "preprocessing": {"shared_function": "prepare_image", "input": "RGB 0..255", "inside_model": "x/127.5-1"},
        "trained_on": {"split_file": "trainer/splits/isic_9class.csv", "date": "2025-01-01",
                       "counts": {"train": 1750, "val": 289, "test": 118, "skipped_unreadable": {}},
                       "label_conflicts_in_training": False},
        "training": {"seconds": 1234.5, "phases": {"head": 200.0, "finetune": 1034.5},
                     "hardware": "2 CPU cores, no GPU", "strategy": "_DefaultDistributionStrategy",
                     "config": {"architecture": "mobilenet_v2", "dataset": dataset, "model_id": model_id,
                                "display_name": f"Model {model_id} (x)", "imagenet_weights": "auto",
                                "input_size": 192, "batch_size": 32, "head_epochs": 3, "epochs": 15,
                                "learning_rate": 0.001, "fine_tune_learning_rate": 0.0003, "dropout": None,
                                "label_smoothing": 0.1, "include_label_conflicts": False, "mixed_precision": False,
                                "augment": "default", "balance": "class_weight", "seed": 42}},
        "size_bytes": 9_500_000, "sha256": "ab" * 32, "status": "ok", "status_reason": "", "folder": "/x",
    }
    card.update(extra)
    return card


def test_comparison_rows(sample):
    _, _, metrics, _ = sample
    cards = [_card("m1"), _card("m2", classes=["nevus", "other"])]
    rows = reports.comparison_rows(cards, {"m1": metrics, "m2": {}})
    assert [r["Model"] for r in rows] == ["Model m1", "Model m2"]
    assert rows[0]["Balanced accuracy (95% CI)"].startswith(reports.pct(metrics["test"]["balanced_accuracy"]))
    assert "95% CI" in rows[0]["Balanced accuracy (95% CI)"]
    assert rows[0]["Melanoma recall"] == "25%"
    assert rows[0]["Worst class recall"] == "Melanoma: 25%"
    assert rows[0]["Training time"] == "20 min 34 s" and rows[0]["File size"] == "9.1 MB"
    assert rows[1]["Melanoma recall"] == "no melanoma class" and rows[1]["Accuracy"] == "n/a"
    assert reports.melanoma_label(["akiec", "mel", "nv"]) == "mel"
    assert reports.melanoma_label(["nevus"]) is None


def test_card_details_and_training_summary():
    card = _card()
    details = {r["Field"]: r["Value"] for r in reports.card_details(card)}
    assert details["Parameters"] == "2,269,513"
    assert details["Input size (px)"] == "192 x 192"
    assert details["Pretrained weights"].startswith("ImageNet")
    assert details["sha256 of model.keras"] == "ab" * 32
    assert details["Model file size"] == "9.1 MB"
    assert "fine-tuning" in details["Training time"]
    assert details["Hardware"] == "2 CPU cores, no GPU"
    assert details["Served by"].startswith("Keras") and "Evaluated on" not in details
    gpu = {**card, "training": {**card["training"], "hardware": "1 x GPU (NVIDIA H200); Keras jax backend",
                                "backend": "jax", "evaluated_on": "2 CPU cores, no GPU"}}
    gpu_details = {r["Field"]: r["Value"] for r in reports.card_details(gpu)}
    assert gpu_details["Keras backend"] == "jax" and gpu_details["Evaluated on"] == "2 CPU cores, no GPU"
    exported = {r["Field"]: r["Value"] for r in reports.card_details(
        {**card, "litert": {"file": "model.tflite", "size_bytes": 9_000_000, "max_probability_diff": 2e-6,
                            "checked_on": "16 validation images", "fmap_outputs": ["fmap_0"],
                            "head": {"file": "head.npz"}}})}
    assert exported["Served by"].startswith("LiteRT") and "2e-06" in exported["Served by"] and "Grad-CAM" in exported["Served by"]
    summary = reports.training_summary(card)
    assert summary["Input size (px)"] == 192 and "Dropout" not in summary
    # a nearly empty card still renders
    assert reports.card_details({"id": "x"}) == [{"Field": "Model id", "Value": "x"}]
    assert reports.training_summary({}) == {}


def test_split_counts_limitations_and_license():
    card = _card()
    assert reports.split_counts(card) == [{"Split": "Training", "Images": 1750}, {"Split": "Validation", "Images": 289},
                                          {"Split": "Test", "Images": 118}]
    text = " ".join(reports.limitations(card))
    assert "180 x 180" in text and "seborrheic keratosis" in text.lower() and "3 vascular" in text
    assert "fair-skinned" in text and "Dermoscopy only" in text
    ham = " ".join(reports.limitations(_card(dataset="ham10000")))
    assert "200 x 150" in ham
    assert "43" in " ".join(reports.dataset_facts("isic_9class")["splits"])
    assert "lesion_id" in " ".join(reports.dataset_facts("ham10000")["splits"])
    assert "CC BY-NC 4.0" in reports.license_text("ham10000")
    assert "doi:10.1038/sdata.2018.161" in reports.license_text("isic_9class")
    assert "CC-0" in reports.license_text("isic_9class")
    assert reports.dataset_facts("unknown")["splits"] == []


def test_train_command_repeats_the_recorded_config():
    command = reports.train_command(_card())
    flat = command.replace("\\\n", " ")
    assert flat.startswith("python -m trainer train -a mobilenet_v2 -d isic_9class")
    assert "--display-name 'Model m1 (x)'" in flat
    for flag in ("--model-id m1", "--input-size 192", "--head-epochs 3", "--epochs 15",
                 "--fine-tune-learning-rate 0.0003", "--label-smoothing 0.1"):
        assert flag in flat
    assert "--dropout" not in flat and "--mixed-precision" not in flat and "--imagenet-weights" not in flat
    assert all(len(line) <= 95 for line in command.splitlines())
    assert reports.train_command({}) == ""


def test_train_command_parses_with_the_trainer_cli():
    from trainer.cli import build_parser, config_from_args
    import shlex

    card = _card()
    argv = shlex.split(reports.train_command(card).replace("\\\n", " "))[3:]   # drop "python -m trainer"
    config = config_from_args(build_parser().parse_args(argv))
    recorded = card["training"]["config"]
    for key in ("architecture", "dataset", "model_id", "display_name", "input_size", "epochs", "head_epochs",
                "learning_rate", "fine_tune_learning_rate", "label_smoothing", "seed"):
        assert getattr(config, key) == recorded[key], key


def test_recipe_row_and_card_json():
    row = reports.recipe_row(_card())
    assert row["Epochs (head + main)"] == "3 + 15"
    assert row["Dataset"] == "ISIC 9-class" and row["Training time"] == "20 min 34 s"
    scratch = reports.recipe_row(_card(pretrained="none (trained from scratch)"))
    assert scratch["Epochs (head + main)"] == "15"
    ensemble = reports.recipe_row(_card(architecture="ensemble", members=[{"id": "a"}, {"id": "b"}]))
    assert ensemble["Epochs (head + main)"] == ensemble["Augmentation"] == "each of the 2 members' own"
    assert "—" not in ensemble["Learning rate (fine-tune)"]
    stored = json.loads(reports.card_json(_card()))
    assert "status" not in stored and "folder" not in stored and stored["id"] == "m1"


def test_best_epoch_maps_the_phase_epoch_to_the_history_numbering():
    history = [{"epoch": float(i), "phase": "head" if i <= 3 else "finetune"} for i in range(1, 8)]
    assert reports.best_epoch(history, {"phase": "finetune", "epoch": 2, "value": 0.6}) == 5
    assert reports.best_epoch(history, {"phase": "head", "epoch": 3}) == 3
    assert reports.best_epoch(history, {"phase": "finetune", "epoch": 9}) is None
    assert reports.best_epoch(history, None) is None and reports.best_epoch([], {"phase": "head", "epoch": 1}) is None


def test_train_command_uses_the_card_id_when_no_model_id_was_given():
    card = _card()
    card["training"]["config"]["model_id"] = None
    assert "--model-id m1" in reports.train_command(card).replace("\\\n", " ")
    assert card["training"]["config"]["model_id"] is None          # the card itself is not changed


def test_weakest_subgroup_ignores_small_groups_and_rows_show_cis():
    row = {"n": 40, "small": False, "accuracy": 0.7, "balanced_accuracy": 0.6, "balanced_accuracy_ci95": [0.5, 0.7],
           "melanomas": 5, "melanoma_recall": 0.4}
    groups = {"sex": {"male": row, "female": {**row, "balanced_accuracy": 0.8}},
              "localization": {"ear": {**row, "n": 9, "small": True, "balanced_accuracy": 0.1},
                               "back": {**row, "balanced_accuracy": 0.55, "melanoma_recall": None}}}
    weakest = reports.weakest_subgroup(groups)
    assert (weakest["column"], weakest["group"], weakest["balanced_accuracy"]) == ("Body site", "back", 0.55)
    rows = reports.subgroup_rows(groups, "localization")
    assert [r["small group"] for r in rows] == ["small", ""]
    assert rows[1]["melanoma recall"] == "n/a" and "50" in rows[0]["balanced accuracy"]
    assert reports.weakest_subgroup({}) is None


NOT_REPRODUCED = {"data_dir", "zoo_dir", "run_dir", "imagenet_weights", "resume", "set_default", "verbose", "notes",
                  "extra", "fit_only"}     # where files live and how the run is watched: not what it learns


def test_train_command_repeats_every_setting_that_shapes_the_model():
    """Each TrainConfig field, set away from its default, must come back from the printed command: a new
    training option that the recipe forgets fails here."""
    from dataclasses import fields
    import shlex

    from trainer.cli import build_parser, config_from_args
    from trainer.config import TrainConfig

    recorded = TrainConfig(
        "efficientnet_lite0", "ham10000", model_id="m9", display_name="M 9", input_size=224, batch_size=16,
        head_epochs=2, epochs=12, learning_rate=0.002, fine_tune_learning_rate=3e-4, fine_tune_fraction=0.7,
        lr_schedule="plateau", warmup_epochs=0.5, weight_decay=1e-5, label_smoothing=0.1, loss="focal",
        focal_gamma=1.5, dropout=0.3, dense_units=128, augment="fast_strong", balance="sampling", mix="mixup", hair=0.4,
        device_shift=0.3, fov_crop=True,
        color_constancy=True, early_stopping_patience=3, include_label_conflicts=True, extra_train="isic_9class",
        extra_per_class=50, exclude_lesions_of="isic_9class",
        init_from="lite0_ham_safe", limit_per_class=20, mixed_precision=True, max_minutes=85.0, seed=7, bootstrap=200,
    ).as_dict()
    card = {"id": "m9", "training": {"config": recorded}}
    argv = shlex.split(reports.train_command(card).replace("\\\n", " "))[3:]   # drop "python -m trainer"
    rebuilt = config_from_args(build_parser().parse_args(argv)).as_dict()
    defaults = TrainConfig("efficientnet_lite0", "ham10000").as_dict()
    for field in fields(TrainConfig):
        if field.name in NOT_REPRODUCED:
            continue
        assert recorded[field.name] != defaults[field.name] or field.name in ("architecture", "dataset"), field.name
        assert rebuilt[field.name] == recorded[field.name], field.name


def test_train_command_leaves_out_quiet_defaults():
    card = _card()
    card["training"]["config"].update(loss="crossentropy", focal_gamma=2.0, mix="none", color_constancy=False)
    flat = reports.train_command(card).replace("\\\n", " ")
    assert "--loss" not in flat and "--focal-gamma" not in flat and "--mix" not in flat
    assert "--color-constancy" not in flat


def test_the_9class_shortcut_in_the_limitations_matches_the_data(data_dir):
    """The limitation text's numbers, recomputed from the data's manifest: every test melanoma and nevus is
    from the first archive batch, where Train has nevi and no melanoma."""
    import re

    import pandas as pd

    manifest = pd.read_csv(data_dir / "isic_9class" / "manifest.csv")
    manifest["number"] = manifest["isic_id"].str[5:].astype(int)
    test = manifest[(manifest["split"] == "test") & manifest["label"].isin(["melanoma", "nevus"])]
    batch = test["number"].max()
    train = manifest[(manifest["split"] == "train") & (manifest["number"] <= batch)]
    text = " ".join(reports.dataset_facts("isic_9class")["limitations"])
    assert f"all {len(test)} test melanomas and nevi" in text and f"ISIC_{batch:07d}" in text
    assert int(re.search(r"holds (\d+) nevi", text).group(1)) == (train["label"] == "nevus").sum()
    assert (train["label"] == "melanoma").sum() == 0
    first = manifest.loc[(manifest["split"] == "train") & (manifest["label"] == "melanoma"), "number"].min()
    assert f"first training melanoma is ISIC_{first:07d}" in text


def test_the_9class_source_shortcut_in_the_limitations_matches_the_data_and_the_model(data_dir):
    """Recomputed from the manifest (which images are HAM10000 images) and the committed Lite0's predictions."""
    import re

    import pandas as pd

    manifest = pd.read_csv(data_dir / "isic_9class" / "manifest.csv")
    manifest["ham"] = manifest["ham10000_dx"].notna()
    train = manifest[manifest["split"] == "train"]
    ham_only = sorted(train.loc[train["ham"], "label"].unique())
    text = " ".join(reports.dataset_facts("isic_9class")["limitations"])
    listed = [c for c in ham_only if train.loc[train["label"] == c, "ham"].all()]
    assert len(listed) == 6 and all(c in text for c in listed)
    assert train.loc[train["label"].isin(["melanoma", "seborrheic keratosis"]), "ham"].sum() == 0
    assert train.loc[train["label"] == "nevus", "ham"].sum() == 1 and "all nevi but 1" in text
    shifted = manifest[(manifest["split"] == "test") & manifest["label"].isin(listed) & ~manifest["ham"]]
    assert f"**{len(shifted)}** test images of those six classes" in text
    predictions = model_zoo.read_predictions("efficientnet_lite0_224_isic_9class")
    test = {row["image_id"]: row for row in predictions if row["split"] == "test"}
    on_shifted = [test[i] for i in shifted["isic_id"]]
    right = sum(r["true"] == r["predicted"] for r in on_shifted)
    mel_or_nevus = sum(r["predicted"] in ("melanoma", "nevus") for r in on_shifted)
    assert re.search(rf"gets {right} of them right and calls {mel_or_nevus} melanoma or nevus", text)
    ham_test = [test[i] for i in manifest.loc[(manifest["split"] == "test") & manifest["ham"], "isic_id"]]
    assert f"{sum(r['true'] == r['predicted'] for r in ham_test)} of the {len(ham_test)} test HAM10000" in text


def test_committed_models_store_per_class_roc_curves_the_evaluation_page_draws():
    """The app draws the trainer's stored curves (no scikit-learn in the server); their AUCs agree with a
    fresh computation from predictions.csv within the calibration's small reordering."""
    for card in [c for c in model_zoo.list_models() if c["status"] == "ok"]:
        metrics = model_zoo.read_metrics(card["id"])
        points, aucs = reports.stored_roc_curves(metrics, "test")
        assert points and set(aucs) <= set(card["classes"]), card["id"]
        _, fresh = reports.roc_curves(model_zoo.read_predictions(card["id"]), "test", card["classes"])
        for label, area in aucs.items():
            assert abs(area - fresh[label]) < 0.02, (card["id"], label, area, fresh[label])
        assert reports.stored_roc_curves(metrics, "validation")[0]
    assert reports.stored_roc_curves({}, "test") == ([], {})
