"""Cached loaders for the app, keyed by model id strings (never by model objects).

Models are loaded once per process and shared by all sessions (st.cache_resource,
bounded: models beyond MODEL_CACHE_SIZE are evicted, not accumulated); tables
and metrics are cached as data.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, TypeVar

import streamlit as st

import model_zoo
from model_zoo import datadir, examples

MODEL_CACHE_SIZE = int(os.environ.get("DERMLAB_MODEL_CACHE", "3"))
DATA_ENV = datadir.DATA_ENV
ROOT = Path(__file__).resolve().parent
T = TypeVar("T")


@st.cache_data(ttl=30, show_spinner=False)
def list_cards() -> list[dict]:
    """Zoo cards, default model first; each has status "ok" or "unavailable" with a reason."""
    return model_zoo.list_models()


def usable_cards() -> list[dict]:
    return [card for card in list_cards() if card["status"] == "ok"]


def card_by_id(model_id: str) -> Optional[dict]:
    return next((card for card in list_cards() if card["id"] == model_id), None)


@st.cache_resource(max_entries=MODEL_CACHE_SIZE, show_spinner="Loading model...")
def load_model(model_id: str) -> model_zoo.ZooModel:
    """The loaded model (raises model_zoo.ModelUnavailable with a reason)."""
    print(f"Loading model {model_id}", flush=True)       # one line per real load: the load test counts them
    model = model_zoo.load(model_id)
    # Warm the compiled graph once so the first visitor does not pay for tracing.
    import numpy as np

    height, width = model.input_size
    model.predict_arrays(np.zeros((1, height, width, 3), np.float32))
    return model


@st.cache_resource(max_entries=2 * MODEL_CACHE_SIZE, show_spinner="Preparing the heatmap method...")
def get_explainer(model_id: str, method: str):
    """Grad-CAM from the LiteRT class maps when the model has them; other methods load Keras (TensorFlow) here."""
    return load_model(model_id).explainer(method)


@st.cache_data(show_spinner=False)
def metrics(model_id: str) -> dict:
    return model_zoo.read_metrics(model_id)


@st.cache_data(show_spinner=False)
def metadata_sites(model_id: str) -> list[str]:
    """Body sites the model's patient-details model knows (empty when it has none)."""
    from model_zoo.metadata import load_metadata_model

    card = card_by_id(model_id)
    model = load_metadata_model(Path(card["folder"]), card["classes"])[0] if card else None
    return list(model.sites) if model else []


@st.cache_data(show_spinner=False)
def history(model_id: str) -> list[dict]:
    return model_zoo.read_history(model_id)


@st.cache_data(show_spinner=False)
def predictions(model_id: str) -> list[dict]:
    return model_zoo.read_predictions(model_id)


def data_dir() -> Optional[Path]:
    """The image folder if present; None when absent.

    model_zoo.datadir decides: $DERMLAB_DATA_DIR if set (a folder without data counts as absent, not as a
    reason to look elsewhere), else ../shared/data.
    """
    return datadir.find_data_dir()


def has_dataset(dataset: str) -> bool:
    """Whether the data folder holds this dataset's images (else the pages use the bundled example cases)."""
    root = data_dir()
    return root is not None and datadir.has_dataset(root, dataset)


def dataset_image(dataset: str, relative_path: str) -> Optional[Path]:
    """Path of a dataset image, if the data folder is present."""
    root = data_dir()
    path = root / dataset / relative_path if root else None
    return path if path and path.is_file() else None


@st.cache_data(show_spinner=False)
def _cases(dataset: str, root: Optional[str]) -> list[examples.Case]:
    return examples.cases(dataset, Path(root) if root else None)


def cases(dataset: str) -> list[examples.Case]:
    """The dataset's whole test split when the data folder holds it, else the bundled example cases."""
    root = data_dir() if has_dataset(dataset) else None
    return _cases(dataset, str(root) if root else None)


def case_image(dataset: str, image_id: str, relative_path: str) -> Optional[Path]:
    """A predictions.csv image: from the data folder when present, else from the bundled cases (or None)."""
    if has_dataset(dataset):
        return dataset_image(dataset, relative_path)
    case = examples.find(cases(dataset), image_id)
    return case.path if case else None


def bundled_mistakes(dataset: str, split: str, mistakes: list[dict]) -> tuple[list[dict], int]:
    """The mistakes among the bundled example cases and how many cases there are ([], 0 off the test split:
    the bundled cases are test images only)."""
    if split != examples.TEST_SPLIT:
        return [], 0
    bundled = _cases(dataset, None)
    return examples.among(mistakes, bundled), len(bundled)


# ---------------------------------------------------------------------------------------------- shared cases
# A teacher's link sends a class to the same cases: each case's diagnosis and heatmap is computed once per
# process and shared by every session (keyed by model id and case key, never by the image object).
@st.cache_data(max_entries=4096, show_spinner=False)
def case_view(model_id: str, case_key: str, _data: bytes) -> dict:
    """What the model says about one case, through the one diagnosis path, as plain data:
    {"top", "ranked" [(label, p)], "abstains", "melanoma_alert", "melanoma_probability",
    "melanoma_threshold", "refusal", "prediction_set"}. `case_key` must identify `_data`."""
    from model_zoo.diagnosis import diagnose

    result = diagnose(load_model(model_id), _data, name=case_key, metrics=metrics(model_id))
    reading = result.reading
    return {"top": result.top, "ranked": reading.ranked() if reading else [], "abstains": bool(result.abstains),
            "unlike_training": bool(result.unlike_training), "ood_warning": result.ood_warning,
            "melanoma_alert": bool(result.melanoma_alert), "melanoma_probability": result.melanoma_probability,
            "melanoma_threshold": result.melanoma_threshold, "refusal": result.refusal,
            "prediction_set": list(result.prediction_set or [])}


@st.cache_data(max_entries=512, show_spinner=False)
def case_heatmap_png(model_id: str, case_key: str, _data: bytes, target: str, method: str, colormap: str) -> bytes:
    """The heatmap overlay of one case for one class, method and colour map, as PNG bytes."""
    from model_zoo.diagnosis import heatmap
    from model_zoo.overlay import render_overlay, to_png_bytes
    from model_zoo.preprocessing import load_image

    image = load_image(_data)
    heat = heatmap(load_model(model_id), image, target, method, explainer=get_explainer(model_id, method))
    return to_png_bytes(render_overlay(image, heat.values, colormap=colormap))


# --------------------------------------------------------------------------------------------- per session
def session_memo(slot: str, key: tuple, compute: Callable[[], T]) -> T:
    """This session's value in `slot`, computed again only when `key` changes.

    A widget that only changes the display (heatmap method, opacity, a download) reruns the page; the model
    must not run again for it. One value per slot, so a session holds one image's or one batch's results.
    """
    memo = st.session_state.setdefault("memo", {})
    held = memo.get(slot)
    if held is None or held[0] != key:
        memo.pop(slot, None)                 # free the old value before computing the new one
        memo[slot] = (key, compute())
    return memo[slot][1]


def session_held(slot: str, key: tuple):
    """This session's value in `slot` if it was computed for `key`, else None (nothing is computed)."""
    held = st.session_state.get("memo", {}).get(slot)
    return held[1] if held is not None and held[0] == key else None


def session_drop(*slots: str) -> None:
    """Free this session's values in `slots` (a batch's results and reports once its files are removed)."""
    memo = st.session_state.get("memo", {})
    for slot in slots:
        memo.pop(slot, None)
