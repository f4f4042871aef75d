"""model_zoo.training_recipes: the command that repeats a card's training run."""
from __future__ import annotations

import sys
from pathlib import Path

from model_zoo import training_recipes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_samples import make_card  # noqa: E402


def test_train_command_repeats_the_recorded_config():
    command = training_recipes.train_command(make_card())
    flat = command.replace("\\\n", " ")
    assert flat.startswith("python -m trainer train -a mobilenet_v2 -d isic_9class")
    assert "--display-name 'Model m1 (x)'" in flat
    for flag in ("--model-id m1", "--input-size 192", "--head-epochs 3", "--epochs 15",
                 "--fine-tune-learning-rate 0.0003", "--label-smoothing 0.1"):
        assert flag in flat
    assert "--dropout" not in flat and "--mixed-precision" not in flat and "--imagenet-weights" not in flat
    assert all(len(line) <= 95 for line in command.splitlines())
    assert training_recipes.train_command({}) == ""


def test_train_command_parses_with_the_trainer_cli():
    from trainer.cli import build_parser, config_from_args
    import shlex

    card = make_card()
    argv = shlex.split(training_recipes.train_command(card).replace("\\\n", " "))[3:]   # drop "python -m trainer"
    config = config_from_args(build_parser().parse_args(argv))
    recorded = card["training"]["config"]
    for key in ("architecture", "dataset", "model_id", "display_name", "input_size", "epochs", "head_epochs",
                "learning_rate", "fine_tune_learning_rate", "label_smoothing", "seed"):
        assert getattr(config, key) == recorded[key], key


def test_train_command_uses_the_card_id_when_no_model_id_was_given():
    card = make_card()
    card["training"]["config"]["model_id"] = None
    assert "--model-id m1" in training_recipes.train_command(card).replace("\\\n", " ")
    assert card["training"]["config"]["model_id"] is None          # the card itself is not changed


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
    argv = shlex.split(training_recipes.train_command(card).replace("\\\n", " "))[3:]   # drop "python -m trainer"
    rebuilt = config_from_args(build_parser().parse_args(argv)).as_dict()
    defaults = TrainConfig("efficientnet_lite0", "ham10000").as_dict()
    for field in fields(TrainConfig):
        if field.name in NOT_REPRODUCED:
            continue
        assert recorded[field.name] != defaults[field.name] or field.name in ("architecture", "dataset"), field.name
        assert rebuilt[field.name] == recorded[field.name], field.name


def test_train_command_leaves_out_quiet_defaults():
    card = make_card()
    card["training"]["config"].update(loss="crossentropy", focal_gamma=2.0, mix="none", color_constancy=False)
    flat = training_recipes.train_command(card).replace("\\\n", " ")
    assert "--loss" not in flat and "--focal-gamma" not in flat and "--mix" not in flat
    assert "--color-constancy" not in flat

