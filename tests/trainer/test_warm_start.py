"""--exclude-lesions-of and --init-from: a dermoscopy backbone for another dataset, without leaking its
held-out lesions. Real split files; tiny real trainings."""
from __future__ import annotations

import json

import numpy as np
import pytest

from trainer.cli import main
from trainer.data import held_out_ids, read_split, select, without_lesions_of
from trainer.warm_start import LeakageError, WarmStartError, check_source, copy_backbone

TINY = ["--input-size", "32", "--limit-per-class", "3", "--batch-size", "16", "--epochs", "1", "--bootstrap", "20",
        "--verbose", "0", "--no-tensorboard"]


def test_ham10000_training_without_9class_lesions_shares_none_of_them():
    """HAM10000 holds 69 of the 9-class Test images; the filtered training split holds none of their lesions."""
    train = select("ham10000", "train")
    kept = without_lesions_of(train, "isic_9class")
    lesions, images = held_out_ids("isic_9class")
    assert 0 < len(train) - len(kept) < 0.1 * len(train)          # some removed, most kept
    assert not set(kept["lesion_id"]) & lesions and not set(kept["image_id"]) & images
    nine = read_split("isic_9class")
    test_lesions = set(nine.loc[nine["split"] == "test", "lesion_id"])
    assert set(train["lesion_id"]) & test_lesions, "the unfiltered split does leak (the reason for the option)"


def _card(dataset: str, architecture: str = "custom_cnn", **config) -> dict:
    return {"id": "source", "architecture": architecture, "dataset": dataset,
            "training": {"config": {"architecture": architecture, "dataset": dataset, **config}}}


def test_check_source_refuses_a_backbone_that_saw_held_out_lesions():
    with pytest.raises(LeakageError, match="--exclude-lesions-of isic_9class"):
        check_source(_card("ham10000"), "custom_cnn", "isic_9class")
    with pytest.raises(WarmStartError, match="architecture"):
        check_source(_card("ham10000", exclude_lesions_of="isic_9class"), "mobilenet_v2", "isic_9class")
    check_source(_card("ham10000", exclude_lesions_of="isic_9class"), "custom_cnn", "isic_9class")
    check_source(_card("isic_9class"), "custom_cnn", "isic_9class")       # same dataset, same split file


def test_copy_backbone_copies_every_backbone_weight_and_keeps_the_head_new():
    import keras

    from trainer.architectures import backbone_layers, create_model

    keras.utils.set_random_seed(1)
    source = create_model("custom_cnn", 7, input_size=32, weights=None)
    target = create_model("custom_cnn", 9, input_size=32, weights=None)
    copied = copy_backbone(source, target)
    pairs = [(s, t) for s, t in zip(backbone_layers(source), backbone_layers(target)) if t.weights]
    assert copied == len(pairs) > 3
    for s, t in pairs:
        for a, b in zip(s.get_weights(), t.get_weights()):
            np.testing.assert_array_equal(a, b)
    assert target.get_layer("pred").get_weights()[0].shape[-1] == 9


def test_init_from_runs_end_to_end_and_refuses_a_leaking_source(tmp_path, data_dir, capsys):
    zoo = str(tmp_path / "zoo")
    common = ["--zoo-dir", zoo, "--data-dir", str(data_dir), *TINY]
    assert main(["train", "-a", "custom_cnn", "-d", "ham10000", "--model-id", "leaky",
                 "--run-dir", str(tmp_path / "r1"), *common]) == 0
    assert main(["train", "-a", "custom_cnn", "-d", "isic_9class", "--init-from", "leaky",
                 "--run-dir", str(tmp_path / "r2"), *common]) == 2
    assert "--exclude-lesions-of isic_9class" in capsys.readouterr().err
    assert not (tmp_path / "zoo" / "custom_cnn_isic_9class").exists()

    assert main(["train", "-a", "custom_cnn", "-d", "ham10000", "--model-id", "safe", "--exclude-lesions-of",
                 "isic_9class", "--run-dir", str(tmp_path / "r3"), *common]) == 0
    assert main(["train", "-a", "custom_cnn", "-d", "isic_9class", "--model-id", "warm", "--init-from", "safe",
                 "--run-dir", str(tmp_path / "r4"), *common]) == 0
    card = json.loads((tmp_path / "zoo" / "warm" / "card.json").read_text())
    assert card["pretrained"].startswith("the backbone of zoo model safe (ham10000, lesions held out by isic_9class")
    assert card["training"]["config"]["init_from"] == "safe"
    source = json.loads((tmp_path / "zoo" / "safe" / "card.json").read_text())
    assert source["training"]["config"]["exclude_lesions_of"] == "isic_9class"
