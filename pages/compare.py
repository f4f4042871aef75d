"""Compare models: one image through every compatible model, a table and a grid of heatmaps."""
from __future__ import annotations

import pandas as pd
import streamlit as st

import app_cache
import app_ui
from model_zoo import ImageError, ModelUnavailable, load_image
from model_zoo.classes import display_name
from model_zoo.inference import read
from model_zoo.overlay import render_overlay
from model_zoo.preprocessing import prepare_image

app_ui.route_deep_link()

COLUMNS = 3


def image_ui(datasets: list[str]) -> tuple[bytes | None, str | None]:
    """(image bytes or None, true label for an example case or None)."""
    options = ["Upload", "Example case"]
    source = st.radio("Image source", options, horizontal=True, key="compare_source")
    if source == options[0]:
        upload = st.file_uploader("Dermoscopy image", type=["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"],
                                  key="compare_upload")
        return (upload.getvalue(), None) if upload else (None, None)
    if not datasets:
        return None, None
    dataset = st.selectbox("Example case from", datasets, format_func=lambda d: app_ui.DATASET_LABELS.get(d, d),
                           key="compare_example_dataset")
    case = app_ui.example_case_ui(dataset, key="compare_example")
    return (case.read_bytes(), case.label) if case else (None, None)


st.title("Compare models on one image")
app_ui.disclaimer_ui()
st.caption("Every usable model in the zoo classifies the same image; where they disagree is worth a discussion.")
cards = app_cache.usable_cards()
datasets = sorted({c["dataset"] for c in cards})
chosen = st.multiselect("Datasets", datasets, default=datasets, format_func=lambda d: app_ui.DATASET_LABELS.get(d, d))
cards = [c for c in cards if c["dataset"] in chosen]
data, true_label = image_ui(chosen)
if data is None:
    st.info("Upload an image, or pick an example case, to compare the models.")
elif not cards:
    st.error("No usable model for these datasets.")
else:
    try:
        image = load_image(data)
    except ImageError as exc:
        st.error(f"Cannot use this file: {exc}")
        st.stop()
    rows, heatmaps = [], []
    progress = st.progress(0.0, text="Running the models...")
    for i, card in enumerate(cards):
        try:
            model = app_cache.load_model(card["id"])
        except ModelUnavailable as exc:
            rows.append({"model": card["display_name"], "prediction": f"unavailable: {exc}"})
            continue
        array = prepare_image(image, model.input_size)
        reading = read(model.predict_arrays(array[None])[0], model.classes)
        heat = app_cache.get_explainer(card["id"], "gradcam")(array[None], model.classes.index(reading.top))[0]
        rows.append({
            "model": card["display_name"],
            "dataset": app_ui.DATASET_LABELS.get(card["dataset"], card["dataset"]),
            "prediction": display_name(reading.top),
            "probability": reading.top_probability,
            "malignant or pre-malignant": reading.concerning_probability,
            "second choice": f"{display_name(reading.runner_up)} ({reading.runner_up_probability:.0%})",
            "test balanced accuracy": card.get("headline", {}).get("test_balanced_accuracy"),
        })
        heatmaps.append((card, reading, render_overlay(image, heat, 0.45)))
        progress.progress((i + 1) / len(cards), text=f"{card['display_name']} done")
    progress.empty()
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="percent") for c in
                                ("probability", "malignant or pre-malignant", "test balanced accuracy")})
    tops = {r["prediction"] for r in rows if "probability" in r}
    if len(tops) > 1:
        st.warning(f"The models disagree: {', '.join(sorted(tops))}.")
    if true_label is not None:
        with st.expander("Reveal the true label (guess first!)"):
            st.write(f"True label: **{display_name(true_label)}**.")
    st.markdown("#### Grad-CAM of each model's top class")
    grid = st.columns(COLUMNS)
    for i, (card, reading, overlay) in enumerate(heatmaps):
        grid[i % COLUMNS].image(overlay, caption=f"{card['display_name']}: {display_name(reading.top)} "
                                                 f"({reading.top_probability:.0%})", width="stretch")
