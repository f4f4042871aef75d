"""Compare models: one image through every compatible model with Classify's safety gates, a table and a grid of
heatmaps. Layout only: model_zoo.diagnosis.diagnose_models refuses the image for every model when any gate does."""
from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

import app_cache
import app_ui
from model_zoo import ImageError, ModelUnavailable, clinic
from model_zoo.classes import display_name
from model_zoo.constants import HEATMAP_OPACITY, UPLOAD_TYPES
from model_zoo.diagnosis import diagnose_models, heatmap
from model_zoo.diagnosis_result import Diagnosis
from model_zoo.overlay import render_overlay

app_ui.route_deep_link()

COLUMNS = 3
PERCENT_COLUMNS = ("probability", "malignant or pre-malignant", "test balanced accuracy")
# long model and class names are cut (in full on hover), so the verdict and probability stay in view
COLUMN_CONFIG = {"model": st.column_config.TextColumn(width="medium"),
                 "prediction": st.column_config.TextColumn(width="medium"),
                 **{c: st.column_config.NumberColumn(format="percent") for c in PERCENT_COLUMNS}}


def image_ui(datasets: list[str]) -> tuple[str, bytes | None, str | None]:
    """(name, image bytes or None, true label for an example case or None)."""
    options = ["Upload", "Example case"]
    source = st.radio("Image source", options, horizontal=True, key="compare_source")
    if source == options[0]:
        upload = st.file_uploader("Dermoscopy image", type=list(UPLOAD_TYPES), key="compare_upload")
        return (upload.name, upload.getvalue(), None) if upload else ("", None, None)
    if not datasets:
        return "", None, None
    dataset = st.selectbox("Example case from", datasets, format_func=lambda d: app_ui.DATASET_LABELS.get(d, d),
                           key="compare_example_dataset")
    case = app_ui.example_case_ui(dataset, key="compare_example")
    return (case.image_id, case.read_bytes(), case.label) if case else ("", None, None)


def load_models(cards: list[dict]) -> tuple[list, list[dict], list[dict]]:
    """(models, their cards, rows for the models that could not be loaded)."""
    models, loaded, unavailable = [], [], []
    for card in cards:
        try:
            models.append(app_cache.load_model(card["id"]))
            loaded.append(card)
        except ModelUnavailable as exc:
            unavailable.append({"model": card["display_name"], "verdict": f"unavailable: {exc}"})
    return models, loaded, unavailable


def run_models(models: list, cards: list[dict], data: bytes, name: str) -> tuple[list[Diagnosis], list]:
    """Every model's diagnosis, then Grad-CAM overlays of the top classes (none for a refused image)."""
    with st.spinner("Running the models..."):
        diagnoses = diagnose_models(models, data, name=name)
    overlays = []
    if not diagnoses[0].refused:
        progress = st.progress(0.0, text="Drawing the heatmaps...")
        for i, (model, card, d) in enumerate(zip(models, cards, diagnoses)):
            heat = heatmap(model, d, None, "gradcam", explainer=app_cache.get_explainer(card["id"], "gradcam"))
            overlays.append(render_overlay(d.image, heat.values, HEATMAP_OPACITY))
            progress.progress((i + 1) / len(models), text=f"{card['display_name']} done")
        progress.empty()
    return diagnoses, overlays


def refusal_ui(diagnoses: list[Diagnosis]) -> None:
    left, right = st.columns([1, 2])
    left.image(diagnoses[0].image, width="stretch")
    with right:
        st.error(clinic.compare_refusal(diagnoses), icon=":material/block:")
        how = clinic.refusing_how_decided(diagnoses)
        if "quality" in diagnoses[0].refusal_reasons:
            st.caption(clinic.quality_how_decided())
        if how:
            st.caption(how)


def heatmap_grid_ui(cards: list[dict], diagnoses: list[Diagnosis], overlays: list) -> None:
    st.markdown("#### Grad-CAM of each model's top class")
    grid = st.columns(COLUMNS)
    for i, (card, d, overlay) in enumerate(zip(cards, diagnoses, overlays)):
        uncertain = " — uncertain, refer" if d.abstains else " — unlike its training images, refer" if d.unlike_training else ""
        grid[i % COLUMNS].image(overlay, caption=f"{card['display_name']}: {display_name(d.top)} "
                                                 f"({d.top_probability:.0%}){uncertain}", width="stretch")


st.title("Compare models on one image")
app_ui.disclaimer_ui()
st.caption("Every usable model in the zoo classifies the same image, behind the same safety checks as Classify; "
           "where they disagree is worth a discussion.")
all_cards = app_cache.usable_cards()
datasets = sorted({c["dataset"] for c in all_cards})
chosen = st.multiselect("Datasets", datasets, default=datasets, format_func=lambda d: app_ui.DATASET_LABELS.get(d, d))
cards = [c for c in all_cards if c["dataset"] in chosen]
name, data, true_label = image_ui(chosen)
if data is None:
    st.info("Upload an image, or pick an example case, to compare the models.")
    st.stop()
if not cards:
    st.error("No usable model for these datasets.")
    st.stop()
models, loaded, unavailable = load_models(cards)
if not models:
    st.dataframe(pd.DataFrame(unavailable), hide_index=True, width="stretch")
    st.stop()
key = (hashlib.sha1(data).hexdigest(), tuple(c["id"] for c in loaded))
try:
    diagnoses, overlays = app_cache.session_memo("compare", key, lambda: run_models(models, loaded, data, name))
except ImageError as exc:
    st.error(f"Cannot use this file: {exc}")
    st.stop()
if diagnoses[0].refused:
    refusal_ui(diagnoses)
rows = [clinic.compare_row(d, card) for d, card in zip(diagnoses, loaded)] + unavailable
table = pd.DataFrame(rows)
if diagnoses[0].refused:                       # no answers: only who refused it, and how good each model is
    table = table[["model", "verdict", "test balanced accuracy"]]
st.dataframe(table, hide_index=True, width="stretch", column_config=COLUMN_CONFIG)
if not diagnoses[0].refused:
    st.caption(clinic.compare_caption(diagnoses))
    tops = {r["prediction"] for r in rows if r.get("prediction")}
    if len(tops) > 1:
        st.warning(f"The models disagree: {', '.join(sorted(tops))}.")
if true_label is not None:
    with st.expander("Reveal the true label (guess first!)"):
        st.write(f"True label: **{display_name(true_label)}**.")
if overlays:
    heatmap_grid_ui(loaded, diagnoses, overlays)
