"""The Evaluation page's gallery of mistakes (layout only): the most confident wrong answers of a split, each
with a Grad-CAM heatmap on request.

Images come from the data folder, or, in a hosted copy without one, from the bundled example cases. A heatmap
is computed on the first click only and kept in the session.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

import app_cache
import app_ui
from model_zoo.classes import display_name
from model_zoo.constants import HEATMAP_OPACITY
from model_zoo.formatting import pct
from model_zoo.prediction_views import misclassified, split_rows

GALLERY_SIZE = 12
GALLERY_COLUMNS = 4


def _heatmap_png(model_id: str, path: Path, class_index: int) -> bytes:
    from model_zoo.overlay import render_overlay, to_png_bytes
    from model_zoo.preprocessing import load_image, prepare_image

    model = app_cache.load_model(model_id)
    explainer = app_cache.get_explainer(model_id, "gradcam")
    image = load_image(path)
    heatmap = explainer(prepare_image(image, model.input_size)[None], class_index)[0]
    return to_png_bytes(render_overlay(image, heatmap, HEATMAP_OPACITY))


def _toggle_heatmap(key: str) -> None:
    shown = st.session_state.setdefault("eval_heatmaps_shown", set())
    shown ^= {key}


def gallery_ui(card: dict, predictions: list[dict], split: str, split_name: str) -> None:
    """The split's mistakes, most confident first, GALLERY_SIZE at a time, filterable by true class."""
    st.subheader(f"Mistakes on the {split_name} images")
    if not predictions:
        st.info("No per-image predictions for this model (predictions.csv is missing).")
        return
    wrong_all = misclassified(predictions, split, limit=None)
    total = len(split_rows(predictions, split))
    if not wrong_all:
        st.success(f"No mistakes on the {total} {split_name} images.")
        return
    st.caption(f"{len(wrong_all)} of {total} {split_name} images are misclassified. Most confident mistakes first: "
               "these are the most instructive (and the most dangerous).")
    if not app_cache.has_dataset(card["dataset"]):
        wrong_all, bundled = app_cache.bundled_mistakes(card["dataset"], split, wrong_all)
        if not bundled:
            app_ui.data_hint_ui("The misclassification gallery")
            return
        st.caption(f"Drawn from the bundled examples only: the data folder is absent, so the gallery shows the "
                   f"{len(wrong_all)} mistakes among the {bundled} example cases bundled with the app.")
        if not wrong_all:
            return
    true_classes = list(dict.fromkeys(w["true"] for w in wrong_all))
    chosen = st.selectbox("True class", ["All classes"] + true_classes, key=f"eval_gallery_class_{card['id']}",
                          format_func=lambda c: c if c == "All classes" else display_name(c))
    wrong = [w for w in wrong_all if chosen == "All classes" or w["true"] == chosen][:GALLERY_SIZE]
    classes = list(card.get("classes") or [])
    overlays = st.session_state.setdefault("eval_heatmaps", {})
    shown = st.session_state.setdefault("eval_heatmaps_shown", set())
    for i, item in enumerate(wrong):
        if i % GALLERY_COLUMNS == 0:
            cols = st.columns(GALLERY_COLUMNS)
        col = cols[i % GALLERY_COLUMNS]
        path = app_cache.case_image(card["dataset"], item["image_id"], item["path"])
        caption = (f"True: {display_name(item['true'])} · Predicted: {display_name(item['predicted'])} "
                   f"({pct(item['confidence'])} sure; {pct(item['p_true'])} for the true class)")
        if path is None:
            col.caption(f"{item['image_id']}: image file not found. {caption}")
            continue
        key = f"{card['id']}/{item['image_id']}"
        if key in shown and key not in overlays:
            try:
                with st.spinner("Computing the Grad-CAM heatmap..."):
                    overlays[key] = _heatmap_png(card["id"], path, classes.index(item["predicted"]))
            except Exception as exc:  # noqa: BLE001  (the page stays up; the reason is shown)
                shown.discard(key)
                col.error(f"No heatmap for {item['image_id']}: {exc}")
        if key in shown and key in overlays:
            col.image(overlays[key], caption=f"Grad-CAM for '{display_name(item['predicted'])}' — {caption}",
                      width="stretch")
            col.button("Hide heatmap", key=f"eval_cam_hide_{key}", on_click=_toggle_heatmap, args=(key,))
        else:
            col.image(str(path), caption=f"{item['image_id']} — {caption}", width="stretch")
            col.button("Show heatmap", key=f"eval_cam_show_{key}", on_click=_toggle_heatmap, args=(key,),
                       help="Grad-CAM: the regions that pushed the model towards its (wrong) answer")
    if len(wrong_all) > GALLERY_SIZE and chosen == "All classes":
        st.caption(f"Showing {min(GALLERY_SIZE, len(wrong))} of {len(wrong_all)} mistakes; pick a true class to see others.")
