"""PH² is an external test set only: training, tuning, calibration and threshold fitting, model ranking, example
drawing and quality-threshold fitting refuse it with a message that says why."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from model_zoo import store
from trainer.cli import main
from trainer.data import ExternalOnlyError, read_split, refuse_test_only

WHY = "external test set only"


def test_train_command_refuses_ph2_while_parsing(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "-a", "custom_cnn", "-d", "ph2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert WHY in err and "python -m trainer external" in err


def test_training_refuses_ph2_before_any_work():
    from trainer.config import TrainConfig
    from trainer.train import run

    for config in (TrainConfig("custom_cnn", "ph2"), TrainConfig("custom_cnn", "ham10000", extra_train="ph2")):
        with pytest.raises(ExternalOnlyError, match=WHY):
            run(config)


def test_splits_and_tuning_refuse_ph2():
    from trainer.tune import tune

    with pytest.raises(ExternalOnlyError, match=WHY):
        read_split("ph2")
    with pytest.raises(ExternalOnlyError, match="tuning"):
        tune("custom_cnn", "ph2")
    refuse_test_only("ham10000")                       # the training sets pass


@pytest.fixture
def ph2_card_model(tmp_zoo):
    """A zoo model whose card claims to be trained on PH² (what a leak would look like)."""
    folder = tmp_zoo / "leaky"
    folder.mkdir()
    card = {"id": "leaky", "dataset": "ph2", "classes": ["mel", "nv"], "input_size": [32, 32]}
    (folder / store.CARD_FILE).write_text(json.dumps(card))
    (folder / store.METRICS_FILE).write_text("{}")
    (folder / store.PREDICTIONS_FILE).write_text("split,image_id,path,true,predicted,p_mel,p_nv\n")
    return "leaky", tmp_zoo


def test_calibration_and_clinical_thresholds_refuse_ph2(ph2_card_model):
    from trainer.calibrate import calibrate_model
    from trainer.clinical import clinical_for_model

    model_id, root = ph2_card_model
    with pytest.raises(ExternalOnlyError, match="calibration"):
        calibrate_model(model_id, root)
    with pytest.raises(ExternalOnlyError, match="thresholds"):
        clinical_for_model(model_id, root)


def test_ranking_refuses_ph2(ph2_card_model):
    from trainer.ensemble import rank_combinations

    model_id, root = ph2_card_model
    shutil.copytree(root / model_id, root / "leaky2")
    card = json.loads((root / "leaky2" / store.CARD_FILE).read_text())
    (root / "leaky2" / store.CARD_FILE).write_text(json.dumps({**card, "id": "leaky2"}))
    with pytest.raises(ExternalOnlyError, match="ranking models"):
        rank_combinations([model_id, "leaky2"], root)


def test_quality_thresholds_refuse_ph2():
    from trainer.quality import choose

    frame = pd.DataFrame({"sharpness": [100.0], "brightness": [150.0], "dark_share": [0.0], "bright_share": [0.0],
                          "width": [300], "height": [225]})
    with pytest.raises(ExternalOnlyError, match="quality"):
        choose({"ham10000": frame, "ph2": frame})


def test_examples_refuse_ph2(tmp_path):
    from trainer.examples import draw_examples

    with pytest.raises(ExternalOnlyError, match="example"):
        draw_examples(tmp_path, datasets=("ph2",))
