"""Ensembles: two real (tiny) trained models joined into one zoo model; checked against the members themselves."""
from __future__ import annotations

import json

import numpy as np
import pytest

import model_zoo
from model_zoo.explainers import create_explainer, expand_and_normalize
from model_zoo.preprocessing import prepare_batch
from trainer.cli import build_parser, config_from_args, main
from trainer.ensemble import EnsembleError, check_members, create_ensemble, rank_combinations
from trainer.train import run

TINY = ["-a", "custom_cnn", "-d", "isic_9class", "--limit-per-class", "6", "--batch-size", "16", "--epochs", "1",
        "--bootstrap", "50", "--verbose", "0", "--no-tensorboard"]


def _train(base, data_dir, model_id: str, size: int, seed: int) -> None:
    args = build_parser().parse_args(["train", *TINY, "--input-size", str(size), "--seed", str(seed), "--model-id",
                                      model_id, "--run-dir", str(base / model_id), "--zoo-dir", str(base / "zoo"),
                                      "--data-dir", str(data_dir)])
    run(config_from_args(args))


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, data_dir):
    """Two custom CNNs (different seeds) at 64 px, and their ensemble."""
    base = tmp_path_factory.mktemp("ensemble")
    _train(base, data_dir, "a", 64, 1)
    _train(base, data_dir, "b", 64, 2)
    create_ensemble(["a", "b"], "a_b", data_dir=str(data_dir), zoo_root=base / "zoo", bootstrap=50)
    return base / "zoo"


def _logits(keras_model, batch: np.ndarray) -> np.ndarray:
    import keras

    pred = keras_model.get_layer("pred")
    penultimate = keras.Model(keras_model.inputs, pred.input)(batch, training=False)
    return np.asarray(penultimate) @ np.asarray(pred.kernel) + np.asarray(pred.bias)


@pytest.fixture(scope="module")
def batch(test_images) -> np.ndarray:
    return prepare_batch([p for p, _ in test_images[:4]], (64, 64))


def test_ensemble_is_a_complete_zoo_model(zoo):
    folder = zoo / "a_b"
    for name in ("model.keras", "card.json", "metrics.json", "predictions.csv"):
        assert (folder / name).is_file(), name
    card = json.loads((folder / "card.json").read_text())
    assert card["architecture"] == "ensemble" and [m["id"] for m in card["members"]] == ["a", "b"]
    assert card["cam_layer"] == ["m0_block4_relu2", "m1_block4_relu2"]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert {"validation", "test", "calibration"} <= set(metrics)
    assert card["headline"]["test_balanced_accuracy"] == metrics["test"]["balanced_accuracy"]
    assert any(c["id"] == "a_b" and c["status"] == "ok" for c in model_zoo.list_models(zoo))


def test_ranking_predicts_what_the_built_ensemble_predicts_on_validation(zoo, capsys):
    """The ranking (from saved probabilities, validation only) scores what the real ensemble predicts."""
    from sklearn.metrics import balanced_accuracy_score

    (row,) = rank_combinations(["a", "b"], zoo)
    val = {m: {r["image_id"]: r for r in model_zoo.read_predictions(m, zoo) if r["split"] == "val"} for m in "ab"}
    common = sorted(set(val["a"]) & set(val["b"]))        # tiny members (seeds differ) drew different images
    built = {r["image_id"]: r for r in model_zoo.read_predictions("a_b", zoo) if r["split"] == "val"}
    common = [i for i in common if i in built]
    assert row["members"] == ["a", "b"] and row["images"] == len(common) > 0 and row["one_input_size"]
    expected = balanced_accuracy_score([built[i]["true"] for i in common], [built[i]["predicted"] for i in common])
    assert row["val_balanced_accuracy"] == pytest.approx(expected, abs=1e-9)
    assert main(["ensemble", "a,b", "--rank", "--zoo-dir", str(zoo)]) == 0
    assert "a + b" in capsys.readouterr().out
    assert main(["ensemble", "a,b", "--zoo-dir", str(zoo)]) == 2          # building needs --model-id
    assert "--model-id" in capsys.readouterr().err
    assert main(["ensemble", "a,b,a_b", "--rank", "--check-against", "a,b", "--zoo-dir", str(zoo)]) == 0
    out = capsys.readouterr().out
    assert "Selection check" in out and "the reference a + b scores" in out
    assert main(["ensemble", "a,a_b", "--rank", "--check-against", "a,b", "--zoo-dir", str(zoo)]) == 2
    assert "reference combination must be made of the candidates" in capsys.readouterr().err


def test_ensemble_averages_the_members_logits(zoo, batch):
    a, b, ensemble = (model_zoo.load(m, zoo) for m in ("a", "b", "a_b"))
    expected = (_logits(a.keras_model, batch) + _logits(b.keras_model, batch)) / 2
    expected = np.exp(expected - expected.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    got = ensemble.predict_arrays(batch, calibrated=False)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not np.allclose(got, a.predict_arrays(batch, calibrated=False), atol=1e-3)   # the members differ


def test_ensemble_gradcam_is_gradcam_over_both_members_channels(zoo, batch):
    """Independent computation on the standalone members: relu of the sum of their halved weighted maps."""
    import keras
    import tensorflow as tf

    ensemble = model_zoo.load("a_b", zoo)
    class_index = int(np.argmax(ensemble.predict_arrays(batch[:1], calibrated=False)))
    total = 0.0
    for member_id in ("a", "b"):
        member = model_zoo.load(member_id, zoo).keras_model
        pred = member.get_layer("pred")
        view = keras.Model(member.inputs, [member.get_layer("block4_relu2").output, pred.input])
        with tf.GradientTape() as tape:
            features, penultimate = view(batch[:1], training=False)
            tape.watch(features)
            score = (tf.matmul(penultimate, pred.kernel) + pred.bias)[:, class_index] / 2
        weights = tf.reduce_mean(tape.gradient(score, features), axis=(1, 2), keepdims=True)
        total += tf.reduce_sum(weights * features, axis=-1).numpy()
    expected = expand_and_normalize(np.maximum(total, 0.0), (64, 64))
    heat = create_explainer("gradcam", ensemble.keras_model, ensemble.card["cam_layer"])(batch[:1], class_index)
    assert heat.shape == (1, 64, 64)
    np.testing.assert_allclose(heat, expected, atol=1e-4)
    plus = create_explainer("gradcam++", ensemble.keras_model, ensemble.card["cam_layer"])(batch[:1], class_index)
    assert plus.shape == (1, 64, 64) and np.isfinite(plus).all() and plus.max() <= 1.0


def test_members_that_do_not_match_are_refused(zoo, data_dir, capsys):
    card = model_zoo.get_card("a", zoo)
    with pytest.raises(EnsembleError, match="input_size"):
        check_members([card, {**card, "id": "small", "input_size": [48, 48]}])
    with pytest.raises(EnsembleError, match="classes"):
        check_members([card, {**card, "id": "other", "classes": card["classes"][:7]}])
    with pytest.raises(EnsembleError, match="appear once.*: a$"):      # a is also a member of a_b
        check_members([card, model_zoo.get_card("a_b", zoo)])
    with pytest.raises(EnsembleError, match="at least two"):
        create_ensemble(["a"], "bad", data_dir=str(data_dir), zoo_root=zoo)
    assert main(["ensemble", "a,missing", "--model-id", "bad", "--zoo-dir", str(zoo)]) == 2
    assert "missing" in capsys.readouterr().err
    assert not (zoo / "bad").exists()


def test_ensemble_card_command_rebuilds_it_with_the_cli(zoo):
    import shlex

    from model_zoo import card_views, training_recipes

    card = model_zoo.get_card("a_b", zoo)
    command = training_recipes.train_command(card)
    assert command.startswith("python -m trainer ensemble a,b --model-id a_b")
    args = build_parser().parse_args(shlex.split(command)[3:])
    assert (args.command, args.members, args.model_id) == ("ensemble", "a,b", "a_b")
    details = {row["Field"]: row["Value"] for row in card_views.card_details(card)}
    assert "m0_block4_relu2, m1_block4_relu2" == details["Grad-CAM layer"]
    assert "(a, validation balanced accuracy" in details["Members (ensemble)"]


def test_ensemble_is_offered_and_explained_in_the_app(zoo, test_images, monkeypatch):
    """The Classify page predicts with the ensemble and draws its heatmap; the Model cards page lists its members."""
    from pathlib import Path

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("DERMLAB_ZOO", str(zoo))
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        card = model_zoo.get_card("a_b", zoo)
        path = test_images[0][0]
        expected = model_zoo.load("a_b", zoo).predict([path.read_bytes()])[0]
        at = AppTest.from_file(str(root / "pages" / "classify.py"), default_timeout=180).run()
        next(s for s in at.selectbox if s.key == "classify_model").set_value(card).run()
        at.file_uploader(key="classify_upload").set_value((path.name, path.read_bytes(), "image/jpeg")).run()
        assert not at.exception, at.exception
        headline = [s.value for s in at.subheader if s.value.startswith("Most likely")]
        assert headline and f"({expected.max():.0%})" in headline[0]
        assert len(at.get("image")) >= 3, "the upload and the Grad-CAM overlay"

        cards_page = AppTest.from_file(str(root / "pages" / "model_cards.py"), default_timeout=180).run()
        cards_page.selectbox(key="cards_model").set_value(card).run()
        assert not cards_page.exception
        tables = list(cards_page.table) + list(cards_page.dataframe)
        text = "\n".join(t.value.to_string() for t in tables) + "\n".join(
            m.value for m in list(cards_page.markdown) + list(cards_page.code))
        assert "Members (ensemble)" in text and "python -m trainer ensemble a,b" in text
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()


@pytest.fixture(scope="module")
def nested(zoo, data_dir):
    """A third tiny model c, and the ensemble of the ensemble a_b with c."""
    _train(zoo.parent, data_dir, "c", 64, 3)
    create_ensemble(["a_b", "c"], "a_b_c", data_dir=str(data_dir), zoo_root=zoo, bootstrap=50)
    return zoo


def test_an_ensemble_joined_with_a_model_is_the_flat_ensemble_of_all_three(nested, batch):
    """a_b + c weighs a, b and c alike: the same probabilities and Grad-CAM as an ensemble built from a, b, c."""
    from trainer.ensemble import build_ensemble

    a, b, c, joined = (model_zoo.load(m, nested) for m in ("a", "b", "c", "a_b_c"))
    expected = sum(_logits(m.keras_model, batch) for m in (a, b, c)) / 3
    np.testing.assert_allclose(_logits(joined.keras_model, batch), expected, atol=1e-4)
    card = joined.card
    assert [m["id"] for m in card["members"]] == ["a", "b", "c"]
    assert card["cam_layer"] == ["m0_m0_block4_relu2", "m0_m1_block4_relu2", "m1_block4_relu2"]
    assert card["training"]["config"]["members"] == ["a_b", "c"]
    assert card["architecture_description"].startswith("Ensemble of 3 zoo models")

    flat = build_ensemble([a.keras_model, b.keras_model, c.keras_model], name="flat")
    flat_cams = [f"m{k}_block4_relu2" for k in range(3)]
    class_index = int(np.argmax(expected[0]))
    np.testing.assert_allclose(create_explainer("gradcam", joined.keras_model, card["cam_layer"])(batch[:1], class_index),
                               create_explainer("gradcam", flat, flat_cams)(batch[:1], class_index), atol=1e-4)


def test_ranking_weighs_an_ensemble_by_its_members_and_skips_repeats(nested):
    """The ranking scores a_b + c as the built a_b_c predicts, and never offers a model twice (a with a_b)."""
    from sklearn.metrics import balanced_accuracy_score

    rows = {tuple(r["members"]): r for r in rank_combinations(["a_b", "c", "a"], nested)}
    assert set(rows) == {("a_b", "c"), ("c", "a")}
    built = {r["image_id"]: r for r in model_zoo.read_predictions("a_b_c", nested) if r["split"] == "val"}
    val = [{r["image_id"] for r in model_zoo.read_predictions(m, nested) if r["split"] == "val"} for m in ("a_b", "c", "a")]
    common = sorted(set(built).intersection(*val))
    assert rows[("a_b", "c")]["images"] == len(common) > 0
    expected = balanced_accuracy_score([built[i]["true"] for i in common], [built[i]["predicted"] for i in common])
    assert rows[("a_b", "c")]["val_balanced_accuracy"] == pytest.approx(expected, abs=1e-9)


def test_tta_is_measured_on_validation_and_test(zoo, data_dir):
    """TTA is judged on validation (the same images evaluation used) and reported on test."""
    from trainer.tta import measure_tta

    result = measure_tta("a_b", str(data_dir), zoo, n_bootstrap=20)
    metrics = model_zoo.read_metrics("a_b", zoo)
    validation = metrics["tta_validation"]
    assert validation["plain"]["balanced_accuracy"] == pytest.approx(metrics["validation"]["balanced_accuracy"], abs=1e-6)
    assert result["plain"]["balanced_accuracy"] == pytest.approx(metrics["test"]["balanced_accuracy"], abs=1e-6)
    assert 0.0 <= validation["tta"]["balanced_accuracy"] <= 1.0 and "ece" in result["tta"]
