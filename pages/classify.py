"""Classify: one image (upload, camera or example) -> the diagnosis, its heatmap and a case report; or a batch ->
a table, the full CSV and per-case reports. Layout only: every verdict comes from model_zoo.diagnosis."""
from __future__ import annotations

import hashlib
from typing import Optional

import pandas as pd
import streamlit as st

import app_cache
import app_charts
import app_ui
from model_zoo import ImageError, ModelUnavailable, clinic
from model_zoo.case_report import case_report, report_filename
from model_zoo.classes import class_info, display_name
from model_zoo.batch_export import batch_csv
from model_zoo.constants import EXPLAINER_LABELS, HEATMAP_OPACITY, UPLOAD_TYPES
from model_zoo.diagnosis import diagnose, heatmap
from model_zoo.diagnosis_result import Diagnosis, Heatmap
from model_zoo.inference import abstention_sentence, melanoma_sentence, test_recall_sentence
from model_zoo.metadata import PatientDetails
from model_zoo.overlay import COLORMAPS, HOT_COLOUR, render_overlay, to_png_bytes
from model_zoo.uploads import batch_items, count_items

app_ui.route_deep_link()

BATCH_PROGRESS_CHUNK = 16         # images per forward pass in a batch, and per step of its progress bar
# the batch table on the page (clinic.batch_view); the CSV has every column
BATCH_COLUMNS = {"outcome": st.column_config.TextColumn(width="medium"),
                 "probability": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1),
                 "malignant or pre-malignant": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                               max_value=1)}


# ------------------------------------------------------------------------------------------------- inputs


def image_source_ui(card: dict) -> tuple[str, bytes | None, str | None]:
    """Returns (name, image bytes or None, true label for examples or None)."""
    options = ["Upload a file", "Take a photo", "Example from the test set"]
    source = st.radio("Image", options, horizontal=True, key="classify_source")
    if source == options[0]:
        upload = st.file_uploader("Dermoscopy image (JPEG, PNG, BMP, TIFF or WebP)", type=list(UPLOAD_TYPES),
                                  key="classify_upload")
        return (upload.name, upload.getvalue(), None) if upload else ("", None, None)
    if source == options[1]:
        shot = st.camera_input("Take a photo through a dermatoscope", key="classify_camera")
        return ("camera.jpg", shot.getvalue(), None) if shot else ("", None, None)
    return example_ui(card)


def example_ui(card: dict) -> tuple[str, bytes | None, str | None]:
    """A test-split case of the model's dataset: the whole split with the data folder, else the bundled cases."""
    case = app_ui.example_case_ui(card["dataset"], key="classify_example")
    return (case.image_id, case.read_bytes(), case.label) if case else ("", None, None)


def details_ui(card: dict) -> PatientDetails | None:
    """Optional age, sex and body site, for a model with a fitted patient-details model; None otherwise."""
    sites = app_cache.metadata_sites(card["id"])
    if not sites:
        return None
    with st.expander("Patient details (optional): age, sex, body site"):
        st.caption("The model can weigh these with the image, as dermatologists do: a model of the HAM10000 patients' "
                   "age, sex and lesion site is combined with the image model, with a weight chosen on validation "
                   "images. Leave them empty to classify the image alone. Nothing you enter is stored.")
        c1, c2, c3 = st.columns(3)
        age = c1.number_input("Age (years)", min_value=0, max_value=110, value=None, step=1, key="details_age")
        sex = c2.selectbox("Sex", ["not given", "female", "male"], key="details_sex")
        site = c3.selectbox("Body site", ["not given"] + sites, key="details_site")
    details = PatientDetails(None if age is None else float(age), None if sex == "not given" else sex,
                             None if site == "not given" else site)
    return details if details.given else None


def model_or_error(card: dict):
    """The loaded model, or None after showing why it is unavailable."""
    try:
        return app_cache.load_model(card["id"])
    except ModelUnavailable as exc:
        st.error(str(exc))
        return None


# ------------------------------------------------------------------------------------------------ results


def refusal_ui(d: Diagnosis, name: str) -> None:
    """A refused image: the image, the plain-language reason and how each refusing gate decides."""
    left, right = st.columns([1, 1.3])
    left.image(d.image, caption=name or None, width="stretch")
    with right:
        st.error(d.refusal, icon=":material/block:")
        if "quality" in d.refusal_reasons:
            st.caption(clinic.quality_how_decided())
        if "not_dermoscopy" in d.refusal_reasons and d.not_dermoscopy.how_decided:
            st.caption(d.not_dermoscopy.how_decided)


def gate_notes_ui(d: Diagnosis) -> None:
    """Say which safety check could not run, so a missing refusal is not read as a pass."""
    if d.not_dermoscopy.note:
        st.caption(d.not_dermoscopy.note)
    if d.quality is None and d.quality_status:
        st.caption(f"Note: {d.quality_status}, so blurred or badly exposed images are not refused.")


def prediction_set_ui(d: Diagnosis) -> None:
    """The conformal set, right under the top class: the honest answer is often more than one diagnosis."""
    view = clinic.conformal_view(d)
    if view is None:
        return
    st.markdown(f"**{view.heading}:** " + ", ".join(display_name(c) for c in view.labels))
    if view.note:
        st.caption(view.note)
    if view.warning:
        st.warning(f"Caution about this set: {view.warning}", icon=":material/info:")


def melanoma_ui(d: Diagnosis) -> None:
    sentence = melanoma_sentence(d.card, d.melanoma_probability) if d.melanoma_probability is not None else None
    if sentence is None:
        return
    if d.melanoma_alert:
        st.error(f"**Melanoma alert.** {sentence[1]}", icon=":material/emergency:")
    else:
        st.info(sentence[1])


def summary_ui(d: Diagnosis, true_label: str | None) -> None:
    """Abstention, the top class with the conformal set, the malignant total and the melanoma alert."""
    if d.unlike_training:
        st.warning(f"**{d.ood_warning}**", icon=":material/travel_explore:")   # the message says why and what to do
    if d.abstains:
        st.error(f"**Uncertain — refer to a clinician.** The model's confidence ({d.top_probability:.0%}) is below "
                 f"the level at which it answers ({d.abstention_threshold:.0%}); the classes below are shown for "
                 "teaching only.", icon=":material/help:")
    st.subheader(f"Most likely: {display_name(d.top)} ({d.top_probability:.0%})")
    prediction_set_ui(d)
    st.caption(f"Second: {display_name(d.runner_up)} ({d.runner_up_probability:.0%}). "
               "Probabilities are calibrated on validation images (temperature scaling).")
    concern = d.concerning_probability
    text = (f"Malignant or pre-malignant classes together: **{concern:.0%}** "
            "(melanoma, basal cell carcinoma, squamous cell carcinoma, actinic keratosis).")
    (st.error if concern >= 0.5 else st.info)(text)
    melanoma_ui(d)
    for sentence in (test_recall_sentence(d.metrics, d.top), abstention_sentence(d.card)):
        if sentence:
            st.caption(sentence)
    if true_label is not None:
        with st.expander("Reveal the true label (guess first!)"):
            verdict = "correct" if true_label == d.top else "wrong"
            st.write(f"True label: **{display_name(true_label)}** — the model was **{verdict}**.")


def classes_ui(d: Diagnosis) -> None:
    with st.expander("What do these classes mean?"):
        for label, p in d.ranked()[:3]:
            info = class_info(label)
            st.markdown(f"**{info['name']}** ({info['group']}, {p:.0%}) — {info['description']}")


def explanation_ui(model, d: Diagnosis, image_key: str) -> Heatmap:
    """Method, class, colours and opacity; returns the heatmap shown (the case report carries it)."""
    st.markdown("#### Where the model looked")
    c1, c2, c3, c4 = st.columns(4)
    method = c1.selectbox("Method", list(EXPLAINER_LABELS), format_func=EXPLAINER_LABELS.get, key="cam_method")
    target = c2.selectbox("Explain the class", [c for c, _ in d.ranked()], format_func=display_name,
                          key=f"cam_target_{d.model_id}")
    colormap = c3.selectbox("Heatmap colours", list(COLORMAPS), format_func=COLORMAPS.get, key="cam_colormap")
    opacity = c4.slider("Heatmap opacity", 0.0, 1.0, HEATMAP_OPACITY, 0.05, key="cam_opacity")
    computed = app_cache.session_memo("heatmaps", (image_key, d.model_id), dict)   # this image's, per session
    if (method, target) not in computed:
        with st.spinner(f"Computing {EXPLAINER_LABELS[method]}..."):
            computed[(method, target)] = heatmap(model, d, target, method,
                                                 explainer=app_cache.get_explainer(d.model_id, method))
    heat = computed[(method, target)]
    overlay = render_overlay(d.image, heat.values, opacity, colormap)
    left, right = st.columns(2)
    left.image(d.image, caption="Original", width="stretch")
    right.image(overlay, caption=f"{heat.label} for {display_name(target)}", width="stretch")
    st.caption(f"{HOT_COLOUR[colormap].capitalize()} areas raised the score of the chosen class most. A heatmap shows "
               "where the model looked, not why it is right: it can highlight rulers, hair or ink marks.")
    st.download_button("Download the overlay (PNG)", to_png_bytes(overlay), file_name=f"heatmap_{method}.png",
                       mime="image/png", icon=":material/image:")
    return heat


def report_ui(d: Diagnosis, heat: Optional[Heatmap], name: str) -> None:
    """The one-page PDF, made in memory only when the button is clicked (nothing is stored on the server)."""
    st.download_button("Download the case report (PDF)", lambda: case_report(d, heat, upload_name=name),
                       file_name=report_filename(d.model_id, name), mime="application/pdf", on_click="ignore",
                       icon=":material/picture_as_pdf:", key="case_report")
    shown = f", the {heat.label} heatmap shown above" if heat is not None else ""
    st.caption(f"One page: the image{shown}, the probabilities, the safety checks, the abstention and melanoma "
               "verdicts with their test figures, and the model's id and sha256. Made in memory when you click; "
               "nothing is stored on the server.")


def single_ui(card: dict) -> None:
    name, data, true_label = image_source_ui(card)
    details = details_ui(card)
    if data is None:
        app_cache.session_drop("diagnosis", "heatmaps")
        st.caption("Upload a dermoscopy image to see the model's probabilities and a heatmap.")
        return
    model = model_or_error(card)
    if model is None:
        return
    image_key, tta = hashlib.sha1(data).hexdigest(), bool(st.session_state.get("classify_tta"))
    try:
        d = app_cache.session_memo("diagnosis", (image_key, card["id"], tta, details, name),
                                   lambda: diagnose(model, data, details, name=name, tta=tta))
    except ImageError as exc:
        st.error(f"Cannot use this file: {exc}")
        return
    if d.refused:
        refusal_ui(d, name)
        report_ui(d, None, name)
        return
    gate_notes_ui(d)
    left, right = st.columns([1, 1.3])
    left.image(d.image, caption=name or None, width="stretch")
    with right:
        if d.details_note:
            st.info(d.details_note, icon=":material/person:")
        summary_ui(d, true_label)
        st.altair_chart(app_charts.probability_chart(d.ranked()), width="stretch")
    classes_ui(d)
    heat = explanation_ui(model, d, image_key)
    report_ui(d, heat, name)


# -------------------------------------------------------------------------------------------------- batch


def run_batch(model, files: list[tuple[str, bytes]], tta: bool) -> list:
    """Every item through the one diagnosis path, chunk by chunk, with a progress bar."""
    app_cache.session_drop("batch_reports")              # the previous batch's zip
    total = count_items(files)
    bar = st.progress(0.0, text=f"Classifying {total} image(s)...")
    results = clinic.diagnose_in_chunks(
        model, batch_items(files), total=total, chunk=BATCH_PROGRESS_CHUNK, tta=tta,
        progress=lambda done, n: bar.progress(done / n, text=f"Classified {done} of {n} image(s)..."))
    bar.empty()
    return results


def reports_ui(model_id: str, results: list, files: list[tuple[str, bytes]], key: tuple) -> None:
    """On request only (about a second per case): a zip of one PDF per classified or refused row."""
    if st.button("Prepare a zip of per-case PDF reports", key="batch_reports", icon=":material/folder_zip:"):
        bar = st.progress(0.0, text="Writing the reports...")
        app_cache.session_memo("batch_reports", key, lambda: clinic.reports_zip(
            results, batch_items(files),
            progress=lambda done, n: bar.progress(done / n, text=f"Report {done} of {n}...")))
        bar.empty()
    archive = app_cache.session_held("batch_reports", key)
    if archive is not None:
        st.download_button("Download the reports (zip)", archive, file_name=f"case_reports_{model_id}.zip",
                           mime="application/zip", on_click="ignore", icon=":material/download:")
    st.caption("One page per image, without heatmaps, made in memory; nothing is stored on the server.")


def batch_ui(card: dict) -> None:
    st.caption(clinic.limits_sentence(st.get_option("server.maxUploadSize")))
    uploads = st.file_uploader("Several images, or one zip of images", type=[*UPLOAD_TYPES, "zip"],
                               accept_multiple_files=True, key="classify_batch")
    if not uploads:
        app_cache.session_drop("batch", "batch_reports")
        st.caption("Drop several images (or a .zip) to get a table of predictions and a CSV file.")
        return
    model = model_or_error(card)
    if model is None:
        return
    files = [(upload.name, upload.getvalue()) for upload in uploads]
    tta = bool(st.session_state.get("classify_tta"))
    key = (card["id"], tta, tuple((u.file_id, u.name, u.size) for u in uploads))
    results = app_cache.session_memo("batch", key, lambda: run_batch(model, files, tta))
    st.dataframe(pd.DataFrame(clinic.batch_view(results)), width="stretch", hide_index=True,
                 column_config=BATCH_COLUMNS)
    st.caption(clinic.batch_summary(results))
    st.download_button("Download the full table (CSV)", batch_csv(results), file_name=f"predictions_{card['id']}.csv",
                       mime="text/csv", on_click="ignore", icon=":material/table:")
    st.caption("The CSV holds every class's probability, the quality and not-dermoscopy flags, the melanoma alert, "
               "and the model's id and the sha256 of its file.")
    reports_ui(card["id"], results, files, key)


st.title("Classify a skin lesion")
app_ui.disclaimer_ui()
selected = app_ui.model_picker_ui("classify")
st.toggle("Test-time augmentation: average the prediction over 8 flips and rotations (slower)", key="classify_tta",
          help="Dermoscopy has no 'up'; averaging over orientations usually steadies the answer a little. "
               "Its measured effect on each model is in docs/results.md.")
if selected is not None:
    single, batch = st.tabs(["One image", "Batch"])
    with single:
        single_ui(selected)
    with batch:
        batch_ui(selected)
