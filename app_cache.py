"""Cached loaders for the app, keyed by model id strings (never by model objects).

Models are loaded once per process and shared by all sessions (st.cache_resource,
bounded: models beyond MODEL_CACHE_SIZE are evicted, not accumulated); tables
and metrics are cached as data.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import streamlit as st

import model_zoo

MODEL_CACHE_SIZE = int(os.environ.get("DERMLAB_MODEL_CACHE", "3"))
DATA_ENV = "DERMLAB_DATA_DIR"
ROOT = Path(__file__).resolve().parent


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
    """The image folder if present ($DERMLAB_DATA_DIR, else ../shared/data); None when absent."""
    for candidate in (os.environ.get(DATA_ENV), ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "isic_9class").is_dir():
            return Path(candidate)
    return None


def dataset_image(dataset: str, relative_path: str) -> Optional[Path]:
    """Path of a dataset image, if the data folder is present."""
    root = data_dir()
    path = root / dataset / relative_path if root else None
    return path if path and path.is_file() else None

