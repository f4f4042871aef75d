"""Atomic writes and model-file checks of the zoo."""
from __future__ import annotations

import json

import pytest

from model_zoo import store, zoo


def _fill_ok(folder):
    (folder / store.MODEL_FILE).write_bytes(b"x" * 10)
    (folder / store.CARD_FILE).write_text(json.dumps({"id": "m", "dataset": "d", "classes": ["a"]}))


def test_failed_write_leaves_nothing(tmp_zoo):
    def fill(folder):
        (folder / store.MODEL_FILE).write_bytes(b"partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.write_model_folder("m", fill, tmp_zoo)
    assert list(tmp_zoo.iterdir()) == []


def test_replacing_keeps_old_until_new_is_complete(tmp_zoo):
    store.write_model_folder("m", _fill_ok, tmp_zoo)

    def broken(folder):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.write_model_folder("m", broken, tmp_zoo)
    assert (tmp_zoo / "m" / store.MODEL_FILE).read_bytes() == b"x" * 10
    assert [p.name for p in tmp_zoo.iterdir()] == ["m"]


def test_hidden_temporary_folders_are_not_models(tmp_zoo):
    (tmp_zoo / ".tmp-m-1234").mkdir()
    (tmp_zoo / ".tmp-m-1234" / store.CARD_FILE).write_text("{}")
    assert zoo.list_models(tmp_zoo) == []


def test_tampered_or_missing_file_is_unavailable(tmp_zoo):
    folder = store.write_model_folder("m", _fill_ok, tmp_zoo)
    card = json.loads((folder / store.CARD_FILE).read_text())
    card["sha256"] = store.sha256_file(folder / store.MODEL_FILE)
    card["size_bytes"] = 10
    (folder / store.CARD_FILE).write_text(json.dumps(card))
    assert zoo.list_models(tmp_zoo)[0]["status"] == "ok"
    (folder / store.MODEL_FILE).write_bytes(b"y" * 10)
    listed = zoo.list_models(tmp_zoo)[0]
    assert listed["status"] == "unavailable" and "sha256" in listed["status_reason"]
    with pytest.raises(zoo.ModelUnavailable, match="sha256"):
        zoo.load("m", tmp_zoo)
    (folder / store.MODEL_FILE).write_bytes(b"y" * 3)
    assert "truncated" in zoo.list_models(tmp_zoo)[0]["status_reason"]
    (folder / store.MODEL_FILE).unlink()
    assert "missing" in zoo.list_models(tmp_zoo)[0]["status_reason"]


def test_unknown_model_is_a_clear_error(tmp_zoo):
    with pytest.raises(zoo.ModelUnavailable, match="No model called"):
        zoo.load("nope", tmp_zoo)


def test_model_needing_unsafe_code_is_refused(tmp_zoo):
    """safe_mode=True: a Lambda layer (arbitrary code) is never deserialised, even with a matching sha256."""
    import keras

    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    model = keras.Model(inputs, outputs)

    def fill(folder):
        model.save(folder / store.MODEL_FILE)
        card = {"id": "lambda", "dataset": "d", "classes": ["a"], "sha256": store.sha256_file(folder / store.MODEL_FILE),
                "size_bytes": (folder / store.MODEL_FILE).stat().st_size}
        (folder / store.CARD_FILE).write_text(json.dumps(card))

    store.write_model_folder("lambda", fill, tmp_zoo)
    assert zoo.list_models(tmp_zoo)[0]["status"] == "ok"      # the file is intact...
    with pytest.raises(zoo.ModelUnavailable, match="could not be loaded"):
        zoo.load("lambda", tmp_zoo)                          # ...but it is not loaded
