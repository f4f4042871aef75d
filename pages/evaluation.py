"""Evaluation: how good is a model, class by class, and where does it fail (layout only; see model_zoo.reports)."""
import altair as alt
import pandas as pd
import streamlit as st

import app_cache
import app_clinical
import app_external
import app_ui
import model_zoo
from model_zoo import clinical_views, reports
from model_zoo.classes import display_name

app_ui.route_deep_link()

PERCENT_COLUMNS = ["Precision", "Recall (sensitivity)", "F1", "Specificity", "ROC AUC"]
GALLERY_SIZE = 12
GALLERY_COLUMNS = 4
HEATMAP_OPACITY = 0.45


def _load(loader, model_id: str, empty):
    """A zoo file through the cache; a missing or unreadable file gives `empty` (the page says so)."""
    try:
        return loader(model_id) or empty
    except (OSError, ValueError, KeyError, model_zoo.ModelUnavailable):
        return empty


def headline_ui(split_metrics: dict, split_name: str) -> None:
    ci95 = split_metrics.get("ci95", {}) or {}
    cols = st.columns(4)
    cols[0].metric("Balanced accuracy", reports.pct(split_metrics.get("balanced_accuracy"), 1),
                   help=reports.METRIC_EXPLANATIONS["balanced_accuracy"][1])
    cols[1].metric("Accuracy", reports.pct(split_metrics.get("accuracy"), 1),
                   help=reports.METRIC_EXPLANATIONS["accuracy"][1])
    cols[2].metric("Macro F1", reports.pct(split_metrics.get("macro_f1"), 1),
                   help=reports.METRIC_EXPLANATIONS["macro_f1"][1])
    cols[3].metric(f"{split_name.capitalize()} images", str(split_metrics.get("n", "n/a")))
    st.caption(
        f"95% confidence intervals (bootstrap over the {split_name} images): balanced accuracy "
        f"{reports.with_ci(split_metrics.get('balanced_accuracy'), ci95.get('balanced_accuracy'))}, accuracy "
        f"{reports.with_ci(split_metrics.get('accuracy'), ci95.get('accuracy'))}, macro F1 "
        f"{reports.with_ci(split_metrics.get('macro_f1'), ci95.get('macro_f1'))}. "
        f"A wide interval means the {split_name} set is too small to pin the figure down."
    )


def worst_class_ui(split_metrics: dict) -> None:
    worst = reports.worst_class(split_metrics)
    if worst is None:
        return
    found = round(worst["recall"] * worst["support"])
    text = (f"**Worst class: {worst['name']}** — recall {reports.pct(worst['recall'])} "
            f"(found {found} of {worst['support']} images).")
    weak = reports.weak_classes(split_metrics)
    if weak:
        names = ", ".join(display_name(c) for c in weak)
        st.warning(f"{text} Classes with recall below {reports.pct(reports.WEAK_RECALL)}: {names}. "
                   "An average can look fine while these are mostly missed.", icon=":material/warning:")
    else:
        st.info(text)


def metrics_ui(split_metrics: dict, split_name: str) -> None:
    st.subheader("Overall metrics")
    headline_ui(split_metrics, split_name)
    worst_class_ui(split_metrics)
    st.table(pd.DataFrame(reports.metric_table(split_metrics)), hide_index=True, border="horizontal")
    st.caption("Percentages are shares of images. Precision: when the model says X, how often it is X. "
               "Recall (sensitivity): of the images that truly are X, how many it finds.")


def per_class_ui(split_metrics: dict) -> None:
    st.subheader("Per class")
    rows = reports.per_class_table(split_metrics)
    if not rows:
        st.info("No per-class figures in this model's metrics.json.")
        return
    frame = pd.DataFrame(rows)
    weak = frame.pop("Weak")
    frame = frame.drop(columns=["label"])

    def highlight(row):
        style = "background-color: rgba(255, 75, 75, 0.18)" if weak.loc[row.name] else ""
        return [style] * len(row)

    styled = frame.style.apply(highlight, axis=1).format(
        {c: (lambda v: reports.pct(v, 0)) for c in PERCENT_COLUMNS})
    st.dataframe(styled, hide_index=True, width="stretch")
    st.caption(f"Rows in red: recall below {reports.pct(reports.WEAK_RECALL)} — the model misses most images of "
               "that class. Specificity: of the images that are *not* X, how many it correctly does not call X. "
               "ROC AUC: how well the probability for X ranks X images above the others (50% = chance). "
               "Support: number of images of that class; with a handful of images a percentage is very uncertain.")


def confusion_ui(split_metrics: dict) -> None:
    st.subheader("Confusion matrix")
    rows = reports.confusion_rows(split_metrics)
    if not rows:
        st.info("No confusion matrix in this model's metrics.json.")
        return
    mode = st.radio("Show", ["Counts", "Share of each true class (row-normalised)"], horizontal=True,
                    key="eval_confusion_mode")
    normalised = mode != "Counts"
    field, fmt = ("Row share", ".0%") if normalised else ("Count", "d")
    frame = pd.DataFrame(rows)
    order = reports.class_order(split_metrics)
    top = float(frame[field].max()) or 1.0
    base = alt.Chart(frame).encode(
        x=alt.X("Predicted:N", sort=order, title="Predicted class",
                axis=alt.Axis(labelAngle=-35, labelLimit=180, labelOverlap=False)),
        y=alt.Y("True:N", sort=order, title="True class", axis=alt.Axis(labelLimit=220)),
    )
    tooltip = [alt.Tooltip("True:N"), alt.Tooltip("Predicted:N"), alt.Tooltip("Count:Q"),
               alt.Tooltip("Row share:Q", format=".1%", title="Share of true class")]
    heat = base.mark_rect().encode(
        color=alt.Color(f"{field}:Q", scale=alt.Scale(scheme="blues"), title="Share" if normalised else "Images",
                        legend=alt.Legend(format=fmt)),
        tooltip=tooltip,
    )
    text = base.mark_text(fontSize=12).encode(
        text=alt.Text(f"{field}:Q", format=fmt),
        color=alt.condition(alt.datum[field] > 0.55 * top, alt.value("white"), alt.value("black")),
        tooltip=tooltip,
    )
    st.altair_chart((heat + text).properties(height=60 + 38 * len(order)), width="stretch")
    st.caption("Each row is the true diagnosis, each column what the model said. The diagonal holds the correct "
               "answers; off-diagonal cells show which lesions are confused with which.")


def roc_ui(card: dict, predictions: list[dict], split: str) -> None:
    st.subheader("ROC curves (one class against the rest)")
    points, aucs = reports.stored_roc_curves(app_cache.metrics(card["id"]), split)
    if not points:                        # a model evaluated before the trainer stored its curves
        points, aucs = reports.roc_curves(predictions, split, card.get("classes"))
    if not points:
        st.info("No per-image predictions for this split (predictions.csv is missing), so no ROC curves. "
                f"Recompute them with `python -m trainer evaluate {card['id']}`.")
        return
    frame = pd.DataFrame(points)
    pick = alt.selection_point(fields=["Legend"], bind="legend")
    curves = alt.Chart(frame).mark_line(interpolate="linear").encode(
        x=alt.X("False positive rate:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"),
                title="False positive rate (1 − specificity)"),
        y=alt.Y("True positive rate:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"),
                title="True positive rate (sensitivity)"),
        color=alt.Color("Legend:N", title="Class (AUC)", legend=alt.Legend(labelLimit=320)),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
        tooltip=[alt.Tooltip("Class:N"), alt.Tooltip("False positive rate:Q", format=".1%"),
                 alt.Tooltip("True positive rate:Q", format=".1%"), alt.Tooltip("Threshold:Q", format=".3f")],
    ).add_params(pick)
    chance = alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]})).mark_line(
        strokeDash=[4, 4], color="gray").encode(x="x:Q", y="y:Q")
    st.altair_chart((chance + curves).properties(height=420).interactive(), width="stretch")
    st.caption("Each curve shows, for one class, the trade-off between finding more of that class (up) and "
               "raising more false alarms (right) as the probability threshold moves. The dashed line is chance. "
               "Click a legend entry to highlight one class; scroll to zoom. Classes with very few images give "
               "jagged curves and unreliable AUCs.")


def history_ui(card: dict, all_metrics: dict) -> None:
    st.subheader("Training curves")
    history = _load(app_cache.history, card["id"], [])
    rows = reports.history_long(history)
    if not rows:
        st.info("This model has no training history (history.csv is missing).")
        return
    frame = pd.DataFrame(rows)
    starts = pd.DataFrame(reports.phase_starts(history))
    if not starts.empty:
        starts["Label"] = starts["Phase"].map(lambda p: f"{reports.PHASE_NAMES.get(p, p)} starts")
    best = reports.best_epoch(history, all_metrics.get("best_epoch"))
    charts = []
    for title, metrics in (("Loss (lower is better)", ["Loss"]),
                           ("Accuracy and balanced accuracy", ["Accuracy", "Balanced accuracy"])):
        part = frame[frame["Metric"].isin(metrics)]
        if part.empty:
            continue
        layers = [alt.Chart(part).mark_line(point=True).encode(
            x=alt.X("Epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("Value:Q", title=None, axis=alt.Axis(format="%") if metrics[0] != "Loss" else alt.Axis()),
            color=alt.Color("Set:N", title="Data", scale=alt.Scale(domain=["training", "validation"],
                                                                    range=["#1f77b4", "#ff7f0e"])),
            strokeDash=alt.StrokeDash("Metric:N", legend=alt.Legend(title="Metric") if len(metrics) > 1 else None),
            tooltip=[alt.Tooltip("Epoch:Q"), alt.Tooltip("Phase:N"), alt.Tooltip("Metric:N"), alt.Tooltip("Set:N"),
                     alt.Tooltip("Value:Q", format=".3f")],
        )]
        if not starts.empty:
            layers.append(alt.Chart(starts).mark_rule(strokeDash=[6, 3], color="gray").encode(
                x="Epoch:Q", tooltip=[alt.Tooltip("Label:N", title="Phase")]))
            layers.append(alt.Chart(starts).mark_text(align="left", dx=4, dy=10, color="gray").encode(
                x="Epoch:Q", y=alt.value(0), text="Label:N"))
        if best is not None:
            kept = pd.DataFrame([{"Epoch": best, "Label": "kept (best validation)"}])
            layers.append(alt.Chart(kept).mark_rule(color="green", strokeWidth=2, opacity=0.6).encode(
                x="Epoch:Q", tooltip=[alt.Tooltip("Label:N", title="Weights"), alt.Tooltip("Epoch:Q")]))
        charts.append((title, alt.layer(*layers).properties(height=300).interactive()))
    cols = st.columns(len(charts))
    for col, (title, chart) in zip(cols, charts):
        col.markdown(f"**{title}**")
        col.altair_chart(chart, width="stretch")
    phases = ", ".join(dict.fromkeys(reports.PHASE_NAMES.get(str(r.get("phase")), str(r.get("phase"))) for r in history))
    marker = " The dashed grey line marks where fine-tuning of the backbone starts." if not starts.empty else ""
    if best is not None:
        marker += f" The green line marks epoch {best}, whose weights were kept (best validation balanced accuracy)."
    st.caption(f"Phases: {phases}.{marker} Training figures are measured on augmented images while the model changes; validation figures "
               "on untouched images. A validation curve that worsens while training improves signals over-fitting.")


def _heatmap_png(model_id: str, path, class_index: int) -> bytes:
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
    st.subheader(f"Mistakes on the {split_name} images")
    if not predictions:
        st.info("No per-image predictions for this model (predictions.csv is missing).")
        return
    wrong_all = reports.misclassified(predictions, split, limit=None)
    total = len(reports.split_rows(predictions, split))
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
                   f"({reports.pct(item['confidence'])} sure; {reports.pct(item['p_true'])} for the true class)")
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


def compare_ui(card: dict, split: str, split_name: str) -> None:
    st.subheader("Compare models")
    others = [c for c in app_cache.usable_cards() if c["dataset"] == card["dataset"] and c["id"] != card["id"]]
    picked = []
    if others:
        picked = st.multiselect("Compare with", others, format_func=lambda c: c["display_name"], key=f"eval_compare_{card['id']}",
                                placeholder="Pick other models trained on the same data")
    else:
        st.info(f"No other usable model trained on {app_ui.DATASET_LABELS.get(card['dataset'], card['dataset'])} "
                "to compare with. Train one (see the Train page).")
    cards = [card] + list(picked)
    metrics_by_id = {c["id"]: _load(app_cache.metrics, c["id"], {}) for c in cards}
    st.table(pd.DataFrame(reports.comparison_rows(cards, metrics_by_id, split)), hide_index=True, border="horizontal")
    st.caption(f"All figures on the same {split_name} images. Balanced accuracy is the average recall over classes. "
               "Models whose confidence intervals overlap are not clearly different.")
    if len(cards) < 2:
        return
    recalls = [{"Model": c["display_name"], "Class": row["Class"], "Recall": row["Recall (sensitivity)"]}
               for c in cards for row in reports.per_class_table(metrics_by_id[c["id"]].get(split) or {})]
    if not recalls:
        return
    chart = alt.Chart(pd.DataFrame(recalls)).mark_bar().encode(
        x=alt.X("Recall:Q", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("Model:N", title=None, axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color("Model:N", legend=alt.Legend(orient="bottom", labelLimit=400)),
        row=alt.Row("Class:N", title=None, sort=reports.class_order(metrics_by_id[card["id"]].get(split) or {}),
                    header=alt.Header(labelAngle=0, labelAlign="left")),
        tooltip=["Model:N", "Class:N", alt.Tooltip("Recall:Q", format=".0%")],
    ).properties(height=14 * len(cards), width=420)
    st.markdown("**Recall per class, model by model** — a weak class shows up here even when the averages look alike.")
    st.altair_chart(chart)


# ------------------------------------------------------------------------------------------------- page

st.title("Evaluation")
st.caption("How good is each model, class by class, and where does it go wrong? All figures come from images "
           "the model never saw in training. Teaching and research demo, not a medical device.")

card = app_ui.model_picker_ui("eval")
if card is None:
    st.stop()

use_validation = st.toggle("Show the validation split instead of the test split", key="eval_use_validation",
                           help="Validation images were used to choose the model during training; the test images "
                                "were only used once, at the end, so test figures are the honest ones.")
split = "validation" if use_validation else "test"
split_name = "validation" if use_validation else "test"

all_metrics = _load(app_cache.metrics, card["id"], {})
split_metrics = all_metrics.get(split) or {}
predictions = _load(app_cache.predictions, card["id"], [])

def calibration_ui(card: dict, all_metrics: dict) -> None:
    """Reliability diagram, risk-coverage curve with the abstention threshold, melanoma operating point (test)."""
    result = all_metrics.get("calibration")
    if not result:
        st.info(f"No calibration for this model yet. Compute it with `python -m trainer calibrate {card['id']}`.")
        return
    test = result["test"]
    st.markdown("#### Are the probabilities honest?")
    st.caption("Temperature scaling divides the model's log-probabilities by one number T fitted on the validation "
               "images. Expected calibration error (ECE, 15 bins) is the average gap between confidence and accuracy; "
               "lower is better. Figures below are on the test images, which played no part in fitting.")
    cols = st.columns(4)
    cols[0].metric("Temperature T", f"{result['temperature']:.2f}")
    cols[1].metric("Test ECE", reports.pct(test["ece_after"], 1), delta=f"{100 * (test['ece_after'] - test['ece_before']):+.1f} pts",
                   delta_color="inverse", help=f"before scaling: {reports.pct(test['ece_before'], 1)}")
    cols[2].metric("Test NLL", f"{test['nll_after']:.3f}", delta=f"{test['nll_after'] - test['nll_before']:+.3f}",
                   delta_color="inverse", help=f"before scaling: {test['nll_before']:.3f}")
    abstention = result.get("abstention", {})
    floor = test.get("ece_floor")
    if floor:
        st.caption(f"How small can ECE be on {floor['n']} test images? A perfectly calibrated model with these "
                   f"confidences would still show an ECE of about {reports.pct(floor['median'], 1)} (up to "
                   f"{reports.pct(floor['p95'], 1)} in 95% of draws) by chance alone: gaps below that are noise.")
    cols[3].metric("Abstention threshold", reports.pct(abstention.get("threshold"), 0))
    bins = [dict(row, stage=stage) for stage, key in (("before scaling", "reliability_before"), ("after scaling", "reliability_after"))
            for row in test[key] if row["count"]]
    diagonal = alt.Chart(pd.DataFrame({"x": [0, 1], "y": [0, 1]})).mark_line(strokeDash=[4, 4], color="gray").encode(x="x", y="y")
    base = alt.Chart(pd.DataFrame(bins)).encode(
        x=alt.X("confidence:Q", scale=alt.Scale(domain=[0, 1]), title="confidence (top class)"),
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), title="accuracy"),
        color=alt.Color("stage:N", title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["stage", alt.Tooltip("confidence:Q", format=".0%"), alt.Tooltip("accuracy:Q", format=".0%"), "count"])
    points = base.mark_line(strokeWidth=2) + base.mark_circle(opacity=0.8).encode(
        size=alt.Size("count:Q", legend=None))
    left, right = st.columns(2)
    with left:
        st.markdown("**Reliability diagram** (on the diagonal = honest; dot size = images in the bin)")
        st.altair_chart((diagonal + points).properties(height=320), width="stretch")
    with right:
        st.markdown("**Coverage vs accuracy** (answer only above a confidence)")
        curve = pd.DataFrame(test["risk_coverage"])
        chart = alt.Chart(curve).mark_line().encode(
            x=alt.X("coverage:Q", axis=alt.Axis(format="%"), title="share of images answered"),
            y=alt.Y("accuracy:Q", axis=alt.Axis(format="%"), title="accuracy of the answers"),
            tooltip=[alt.Tooltip("threshold:Q", format=".0%"), alt.Tooltip("coverage:Q", format=".0%"),
                     alt.Tooltip("accuracy:Q", format=".0%")])
        layers = chart
        if abstention.get("test", {}).get("coverage") is not None:
            rule = alt.Chart(pd.DataFrame({"coverage": [abstention["test"]["coverage"]]})).mark_rule(color="#c0392b").encode(x="coverage:Q")
            layers = chart + rule
        st.altair_chart(layers.properties(height=320), width="stretch")
    if abstention.get("test"):
        test_ab = abstention["test"]
        st.caption(f"The red line is the abstention threshold ({reports.pct(abstention['threshold'])}, chosen on validation "
                   f"for {reports.pct(abstention['target_accuracy'])} accuracy on answered images). On test it answers "
                   f"{reports.pct(test_ab['coverage'])} of images ({test_ab['n_accepted']} of {test_ab['n']}) with accuracy "
                   f"{reports.pct(test_ab['accuracy'])}; the rest are 'uncertain, refer to a clinician'.")
    point = result.get("melanoma_operating_point")
    if point:
        st.markdown("#### Melanoma alert threshold")
        rows = []
        for name in ("validation", "test"):
            r = point[name]
            rows.append({"split": name, "threshold": reports.pct(r["threshold"]), "melanomas": r["positives"],
                         "sensitivity": reports.with_ci(r["sensitivity"], r["sensitivity_ci95"]),
                         "specificity": reports.with_ci(r["specificity"], r["specificity_ci95"])})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        st.caption(f"Threshold on the calibrated melanoma probability chosen on validation for sensitivity ≥ "
                   f"{reports.pct(point['target_sensitivity'])}; the test row shows how that choice held up.")


def subgroups_ui(card: dict, all_metrics: dict) -> None:
    """Test metrics by subgroup (HAM10000: sex, age band, body site; 9-class: image source), small groups marked."""
    groups = all_metrics.get("subgroups")
    if not groups:
        st.info("No subgroup metrics for this model yet: compute them with "
                f"`python -m trainer subgroups {card['id']}` (needs the dataset's manifest).")
        return
    st.caption("Test images only. Groups with fewer than 30 images are marked 'small': their figures are unreliable "
               "(see the intervals). " + reports.SUBGROUP_NOTES.get(card["dataset"], ""))
    for column, title in reports.SUBGROUP_COLUMNS.items():
        if column in groups:
            st.markdown(f"**{title}**")
            st.dataframe(pd.DataFrame(reports.subgroup_rows(groups, column)), hide_index=True, width="stretch")


def clinical_tab_ui(view, card: dict, clinical: dict | None, split: str, *args) -> None:
    """A clinical view (app_clinical) of the stored test figures, or how to compute them."""
    if clinical is None:
        app_clinical.missing_ui(card)
        return
    app_clinical.test_split_note_ui(split)
    view(clinical, *args)


clinical = clinical_views.clinical_figures(all_metrics)
classes = card.get("classes")
external = app_external.xv.applies(card)          # PH² is labelled in HAM10000's codes
tabs = st.tabs(["Metrics", "Per class", "Confusion matrix", "ROC curves", "PR curves", "Benign vs malignant",
                "Prediction sets", "Calibration", "Subgroups", "Training curves", "Mistakes", "Compare"]
               + (["Another clinic (PH²)"] if external else []))
with tabs[0]:
    if split_metrics:
        metrics_ui(split_metrics, split_name)
    else:
        st.info(f"No {split_name} metrics for this model (metrics.json is missing or incomplete). "
                f"Compute them with `python -m trainer evaluate {card['id']}`.")
    if clinical and split == "test":
        app_clinical.intervals_ui(clinical)
with tabs[1]:
    if split_metrics:
        per_class_ui(split_metrics)
    else:
        st.info(f"No {split_name} metrics for this model.")
    if clinical:
        app_clinical.test_split_note_ui(split)
        app_clinical.per_class_ui(clinical, classes)
with tabs[2]:
    if split_metrics:
        confusion_ui(split_metrics)
    else:
        st.info(f"No {split_name} metrics for this model.")
with tabs[3]:
    roc_ui(card, predictions, split)
with tabs[4]:
    clinical_tab_ui(app_clinical.pr_ui, card, clinical, split, classes)
with tabs[5]:
    clinical_tab_ui(app_clinical.benign_malignant_ui, card, clinical, split)
with tabs[6]:
    clinical_tab_ui(app_clinical.conformal_ui, card, clinical, split, classes)
with tabs[7]:
    calibration_ui(card, all_metrics)
with tabs[8]:
    subgroups_ui(card, all_metrics)
with tabs[9]:
    history_ui(card, all_metrics)
with tabs[10]:
    gallery_ui(card, predictions, split, split_name)
with tabs[11]:
    compare_ui(card, split, split_name)
if external:
    with tabs[12]:
        app_external.ph2_ui(card, all_metrics)
