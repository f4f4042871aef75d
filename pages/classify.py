"""Classify: one image (upload, camera or example) -> probabilities, summary, heatmap; or a batch -> table."""
from __future__ import annotations

import hashlib
import io

import altair as alt
import pandas as pd
import streamlit as st

import app_cache
import app_ui
from model_zoo import ImageError, ModelUnavailable, load_image
from model_zoo.classes import class_info, display_name, is_concerning
from model_zoo.explainers import LABELS as EXPLAINER_LABELS
from model_zoo.metadata import PatientDetails
from model_zoo.inference import (abstains, abstention_sentence, batch_row, melanoma_sentence, read,
                                  test_recall_sentence)
from model_zoo.overlay import render_overlay, to_png_bytes
from model_zoo.preprocessing import prepare_image
from model_zoo.uploads import iter_zip

app_ui.route_deep_link()

IMAGE_TYPES = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"]


def probability_chart(reading) -> alt.Chart:
    """Horizontal bars, highest first; malignant / pre-malignant classes in red."""
    frame = pd.DataFrame({
        "class": [display_name(c) for c, _ in reading.ranked()],
        "probability": [p for _, p in reading.ranked()],
        "group": ["malignant or pre-malignant" if is_concerning(c) else "benign" for c, _ in reading.ranked()],
    })
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), title="probability",
                    axis=alt.Axis(format="%", values=[0, 0.25, 0.5, 0.75, 1], labelFlush=True)),   # "100%" ends inside
            y=alt.Y("class:N", sort="-x", title=None, axis=alt.Axis(labelLimit=320, labelOverlap=False)),
            color=alt.Color("group:N", scale=alt.Scale(domain=["malignant or pre-malignant", "benign"],
                                                       range=["#c0392b", "#2e86c1"]),
                            # one entry per line: side by side, the second was cut off at the chart's edge
                            legend=alt.Legend(orient="bottom", direction="vertical", title=None, labelLimit=320, offset=8)),
            tooltip=["class", alt.Tooltip("probability:Q", format=".1%"), "group"],
        )
        .properties(height=alt.Step(24))        # 24 px per class; the axis and legend are added below
    )


def image_source_ui(card: dict) -> tuple[str, bytes | None, str | None]:
    """Returns (name, image bytes or None, true label for examples or None)."""
    options = ["Upload a file", "Take a photo", "Example from the test set"]
    source = st.radio("Image", options, horizontal=True, key="classify_source")
    if source == options[0]:
        upload = st.file_uploader("Dermoscopy image (JPEG, PNG, BMP, TIFF or WebP)", type=IMAGE_TYPES, key="classify_upload")
        return (upload.name, upload.getvalue(), None) if upload else ("", None, None)
    if source == options[1]:
        shot = st.camera_input("Take a photo through a dermatoscope", key="classify_camera")
        return ("camera.jpg", shot.getvalue(), None) if shot else ("", None, None)
    return example_ui(card)


def example_ui(card: dict) -> tuple[str, bytes | None, str | None]:
    """A test-split case of the model's dataset: the whole split with the data folder, else the bundled cases."""
    case = app_ui.example_case_ui(card["dataset"], key="classify_example")
    return (case.image_id, case.read_bytes(), case.label) if case else ("", None, None)


def summary_ui(reading, card: dict, true_label: str | None, metrics: dict) -> None:
    top_name = display_name(reading.top)
    if abstains(reading, card):
        st.error(f"**Uncertain — refer to a clinician.** The model's confidence ({reading.top_probability:.0%}) is "
                 "below the level at which it answers; the classes below are shown for teaching only.",
                 icon=":material/help:")
    st.subheader(f"Most likely: {top_name} ({reading.top_probability:.0%})")
    st.caption(f"Second: {display_name(reading.runner_up)} ({reading.runner_up_probability:.0%}). "
               "Probabilities are calibrated on validation images (temperature scaling).")
    concern = reading.concerning_probability
    text = (f"Malignant or pre-malignant classes together: **{concern:.0%}** "
            "(melanoma, basal cell carcinoma, squamous cell carcinoma, actinic keratosis).")
    (st.error if concern >= 0.5 else st.info)(text)
    melanoma = next((c for c in reading.classes if c in ("melanoma", "mel")), None)
    alert = melanoma_sentence(card, float(reading.probabilities[reading.classes.index(melanoma)])) if melanoma else None
    if alert:
        (st.error if alert[0] else st.info)(alert[1])
    for sentence in (test_recall_sentence(metrics, reading.top), abstention_sentence(card)):
        if sentence:
            st.caption(sentence)
    if true_label is not None:
        with st.expander("Reveal the true label (guess first!)"):
            verdict = "correct" if true_label == reading.top else "wrong"
            st.write(f"True label: **{display_name(true_label)}** — the model was **{verdict}**.")


def explanation_ui(model_id: str, card: dict, image, array, reading, key: str) -> None:
    st.markdown("#### Where the model looked")
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox("Method", list(EXPLAINER_LABELS), format_func=EXPLAINER_LABELS.get, key="cam_method")
    classes = [c for c, _ in reading.ranked()]
    target = c2.selectbox("Explain the class", classes, format_func=display_name, key=f"cam_target_{model_id}")
    opacity = c3.slider("Heatmap opacity", 0.0, 1.0, 0.45, 0.05, key="cam_opacity")
    memo = st.session_state.setdefault("heatmaps", {})
    memo_key = (key, model_id, method, target)
    if memo_key not in memo:
        with st.spinner(f"Computing {EXPLAINER_LABELS[method]}..."):
            explainer = app_cache.get_explainer(model_id, method)
            memo.clear()                       # keep one image's heatmaps per session, not a growing pile
            memo[memo_key] = explainer(array[None], card["classes"].index(target))[0]
    overlay = render_overlay(image, memo[memo_key], opacity)
    left, right = st.columns(2)
    left.image(image, caption="Original", width="stretch")
    right.image(overlay, caption=f"{EXPLAINER_LABELS[method]} for {display_name(target)}", width="stretch")
    st.download_button("Download the overlay (PNG)", to_png_bytes(overlay), file_name=f"heatmap_{method}.png",
                       mime="image/png")
    st.caption("Red areas raised the score of the chosen class most. A heatmap shows where the model looked, "
               "not why it is right: it can highlight rulers, hair or ink marks.")


def model_or_error(card: dict):
    """The loaded model, or None after showing why it is unavailable."""
    try:
        return app_cache.load_model(card["id"])
    except ModelUnavailable as exc:
        st.error(str(exc))
        return None


def refuse_if_not_dermoscopy(model, features, image) -> bool:
    """Show the refusal and return True when the OOD detector says this is not a dermoscopy image."""
    detector = model.ood_detector
    if detector is None:
        st.caption(f"Note: {model.ood_status}, so non-dermoscopy images are not refused.")
        return False
    if not detector.rejects(features)[0]:
        return False
    st.image(image, width=320)
    st.error("**This does not look like a dermoscopy image**, so the model will not classify it. It was trained only on "
             "close-up images taken through a dermatoscope; on photos, documents, screenshots or plain colours its "
             "answer would be meaningless. Please upload a dermoscopy image of a skin lesion.", icon=":material/block:")
    ood = model.card.get("ood", {})
    if ood:
        st.caption(f"How this is decided: the image's features are compared with those of the training images "
                   f"({ood.get('method', '')}). On test, this check refused {ood['ood_rejected']:.0%} of a set of "
                   f"non-dermoscopy images and {ood['dermoscopy_wrongly_rejected']:.0%} of real dermoscopy images.")
    return True


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


def with_details(model, raw, details: PatientDetails | None, card: dict, metrics: dict):
    """(probabilities, card view, metrics view, note): fused with the patient details when given and fitted."""
    meta = model.metadata_model if details is not None else None
    variant = meta.variant_for(details) if meta is not None else None
    if variant is None:
        return model.calibrate(raw)[0], card, metrics, None
    fused = meta.predict(raw, [details])[0]
    image_only = read(model.calibrate(raw)[0], model.classes)
    given = ", ".join(t for t in (f"age {details.age:.0f}" if details.age is not None else "", details.sex or "",
                                  details.site or "") if t)
    note = (f"Using the image **and** the patient details ({given}). The image alone gives "
            f"{display_name(image_only.top)} {image_only.top_probability:.0%}. With these details this model's "
            f"validation balanced accuracy is {variant.record['val_balanced_accuracy']:.0%} (image alone "
            f"{metrics.get('validation', {}).get('balanced_accuracy', float('nan')):.0%}).")
    fusion = metrics.get("metadata_fusion", {}) if variant is meta.full else {}
    return fused, {**card, **variant.record.get("card_summary", {})}, fusion, note


def single_ui(card: dict) -> None:
    name, data, true_label = image_source_ui(card)
    details = details_ui(card)
    if data is None:
        st.caption("Upload a dermoscopy image to see the model's probabilities and a heatmap.")
        return
    try:
        image = load_image(data)
    except ImageError as exc:
        st.error(f"Cannot use this file: {exc}")
        return
    model = model_or_error(card)
    if model is None:
        return

    array = prepare_image(image, model.input_size)
    raw, features = model.predict_with_features(array[None], calibrated=False)
    if refuse_if_not_dermoscopy(model, features, image):
        return
    if st.session_state.get("classify_tta"):
        raw = model.predict_arrays(array[None], calibrated=False, tta=True)
    probabilities, view, metrics, note = with_details(model, raw, details, card, app_cache.metrics(card["id"]))
    reading = read(probabilities, model.classes)
    left, right = st.columns([1, 1.3])
    with left:
        st.image(image, caption=name, width="stretch")
    with right:
        if note:
            st.info(note, icon=":material/person:")
        summary_ui(reading, view, true_label, metrics)
        st.altair_chart(probability_chart(reading), width="stretch")
    with st.expander("What do these classes mean?"):
        for label, p in reading.ranked()[:3]:
            info = class_info(label)
            st.markdown(f"**{info['name']}** ({info['group']}, {p:.0%}) — {info['description']}")
    explanation_ui(card["id"], card, image, array, reading, key=hashlib.sha1(data).hexdigest())


def batch_ui(card: dict) -> None:
    uploads = st.file_uploader("Several images, or one zip of images", type=IMAGE_TYPES + ["zip"],
                               accept_multiple_files=True, key="classify_batch")
    if not uploads:
        st.caption("Drop several images (or a .zip) to get a table of predictions and a CSV file.")
        return
    model = model_or_error(card)
    if model is None:
        return

    items = []
    for upload in uploads:
        if upload.name.lower().endswith(".zip"):
            items += [(f"{upload.name}/{n}", d, p) for n, d, p in iter_zip(upload.getvalue())]
        else:
            items.append((upload.name, upload.getvalue(), ""))
    rows, arrays, names = [], [], []
    for name, data, problem in items:
        if data is None:
            rows.append(batch_row(name, None, problem))
            continue
        try:
            arrays.append(prepare_image(load_image(data), model.input_size))
            names.append(name)
        except ImageError as exc:
            rows.append(batch_row(name, None, str(exc)))
    if arrays:
        import numpy as np

        probabilities, features = model.predict_with_features(np.stack(arrays))
        refused = model.ood_detector.rejects(features) if model.ood_detector is not None else np.zeros(len(names), bool)
        rows = [batch_row(n, None, "Not a dermoscopy image: not classified.") if r else
                batch_row(n, read(p, model.classes), card=card)
                for n, p, r in zip(names, probabilities, refused)] + rows
    table = pd.DataFrame(rows)
    st.dataframe(table, width="stretch", hide_index=True,
                 column_config={"probability": st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1),
                                "malignant_or_premalignant": st.column_config.ProgressColumn(
                                    "malignant or pre-malignant", format="%.2f", min_value=0, max_value=1)})
    classified = sum(1 for row in rows if not row["error"])
    st.caption(f"{classified} image(s) classified, {len(rows) - classified} could not be used.")
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    st.download_button("Download the table (CSV)", buffer.getvalue(), file_name="predictions.csv", mime="text/csv")


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
