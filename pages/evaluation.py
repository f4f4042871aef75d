"""Evaluation: how good is a model, class by class, and where does it fail (layout only).

The figures are shaped by model_zoo.metric_tables, prediction_views, history_views and subgroup_views, drawn by
app_eval_charts; the Calibration tab is app_calibration, the Mistakes tab app_mistakes."""
import pandas as pd
import streamlit as st

import app_cache
import app_calibration
import app_clinical
import app_eval_charts
import app_external
import app_mistakes
import app_ui
import model_zoo
from model_zoo import (clinical_views, dataset_prose, formatting, history_views, metric_tables, prediction_views,
                       subgroup_views)
from model_zoo.classes import display_name

app_ui.route_deep_link()

PERCENT_COLUMNS = ["Precision", "Recall (sensitivity)", "F1", "Specificity", "ROC AUC"]


def _load(loader, model_id: str, empty):
    """A zoo file through the cache; a missing or unreadable file gives `empty` (the page says so)."""
    try:
        return loader(model_id) or empty
    except (OSError, ValueError, KeyError, model_zoo.ModelUnavailable):
        return empty


def headline_ui(split_metrics: dict, split_name: str) -> None:
    ci95 = split_metrics.get("ci95", {}) or {}
    cols = st.columns(4)
    cols[0].metric("Balanced accuracy", formatting.pct(split_metrics.get("balanced_accuracy"), 1),
                   help=metric_tables.METRIC_EXPLANATIONS["balanced_accuracy"][1])
    cols[1].metric("Accuracy", formatting.pct(split_metrics.get("accuracy"), 1),
                   help=metric_tables.METRIC_EXPLANATIONS["accuracy"][1])
    cols[2].metric("Macro F1", formatting.pct(split_metrics.get("macro_f1"), 1),
                   help=metric_tables.METRIC_EXPLANATIONS["macro_f1"][1])
    cols[3].metric(f"{split_name.capitalize()} images", str(split_metrics.get("n", "n/a")))
    st.caption(
        f"95% confidence intervals (bootstrap over the {split_name} images): balanced accuracy "
        f"{formatting.with_ci(split_metrics.get('balanced_accuracy'), ci95.get('balanced_accuracy'))}, accuracy "
        f"{formatting.with_ci(split_metrics.get('accuracy'), ci95.get('accuracy'))}, macro F1 "
        f"{formatting.with_ci(split_metrics.get('macro_f1'), ci95.get('macro_f1'))}. "
        f"A wide interval means the {split_name} set is too small to pin the figure down."
    )


def worst_class_ui(split_metrics: dict) -> None:
    worst = metric_tables.worst_class(split_metrics)
    if worst is None:
        return
    found = round(worst["recall"] * worst["support"])
    text = (f"**Worst class: {worst['name']}** — recall {formatting.pct(worst['recall'])} "
            f"(found {found} of {worst['support']} images).")
    weak = metric_tables.weak_classes(split_metrics)
    if weak:
        names = ", ".join(display_name(c) for c in weak)
        st.warning(f"{text} Classes with recall below {formatting.pct(metric_tables.WEAK_RECALL)}: {names}. "
                   "An average can look fine while these are mostly missed.", icon=":material/warning:")
    else:
        st.info(text)


def metrics_ui(split_metrics: dict, split_name: str) -> None:
    st.subheader("Overall metrics")
    headline_ui(split_metrics, split_name)
    worst_class_ui(split_metrics)
    st.table(pd.DataFrame(metric_tables.metric_table(split_metrics)), hide_index=True, border="horizontal")
    st.caption("Percentages are shares of images. Precision: when the model says X, how often it is X. "
               "Recall (sensitivity): of the images that truly are X, how many it finds.")


def per_class_ui(split_metrics: dict) -> None:
    st.subheader("Per class")
    rows = metric_tables.per_class_table(split_metrics)
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
        {c: (lambda v: formatting.pct(v, 0)) for c in PERCENT_COLUMNS})
    st.dataframe(styled, hide_index=True, width="stretch")
    st.caption(f"Rows in red: recall below {formatting.pct(metric_tables.WEAK_RECALL)} — the model misses most images of "
               "that class. Specificity: of the images that are *not* X, how many it correctly does not call X. "
               "ROC AUC: how well the probability for X ranks X images above the others (50% = chance). "
               "Support: number of images of that class; with a handful of images a percentage is very uncertain.")


def confusion_ui(split_metrics: dict) -> None:
    st.subheader("Confusion matrix")
    rows = metric_tables.confusion_rows(split_metrics)
    if not rows:
        st.info("No confusion matrix in this model's metrics.json.")
        return
    mode = st.radio("Show", ["Counts", "Share of each true class (row-normalised)"], horizontal=True,
                    key="eval_confusion_mode")
    normalised = mode != "Counts"
    order = metric_tables.class_order(split_metrics)
    st.altair_chart(app_eval_charts.confusion_chart(rows, order, normalised), width="stretch")
    st.caption("Each row is the true diagnosis, each column what the model said. The diagonal holds the correct "
               "answers; off-diagonal cells show which lesions are confused with which.")


def roc_ui(card: dict, predictions: list[dict], split: str) -> None:
    st.subheader("ROC curves (one class against the rest)")
    points, aucs = prediction_views.stored_roc_curves(app_cache.metrics(card["id"]), split)
    if not points:                        # a model evaluated before the trainer stored its curves
        points, aucs = prediction_views.roc_curves(predictions, split, card.get("classes"))
    if not points:
        st.info("No per-image predictions for this split (predictions.csv is missing), so no ROC curves. "
                f"Recompute them with `python -m trainer evaluate {card['id']}`.")
        return
    st.altair_chart(app_eval_charts.roc_chart(points), width="stretch")
    st.caption("Each curve shows, for one class, the trade-off between finding more of that class (up) and "
               "raising more false alarms (right) as the probability threshold moves. The dashed line is chance. "
               "Click a legend entry to highlight one class; scroll to zoom. Classes with very few images give "
               "jagged curves and unreliable AUCs.")


def history_ui(card: dict, all_metrics: dict) -> None:
    st.subheader("Training curves")
    history = _load(app_cache.history, card["id"], [])
    rows = history_views.history_long(history)
    if not rows:
        st.info("This model has no training history (history.csv is missing).")
        return
    starts = pd.DataFrame(history_views.phase_starts(history))
    if not starts.empty:
        starts["Label"] = starts["Phase"].map(lambda p: f"{history_views.PHASE_NAMES.get(p, p)} starts")
    best = history_views.best_epoch(history, all_metrics.get("best_epoch"))
    charts = app_eval_charts.training_curve_charts(rows, starts, best)
    cols = st.columns(len(charts))
    for col, (title, chart) in zip(cols, charts):
        col.markdown(f"**{title}**")
        col.altair_chart(chart, width="stretch")
    phases = ", ".join(dict.fromkeys(history_views.PHASE_NAMES.get(str(r.get("phase")), str(r.get("phase"))) for r in history))
    marker = " The dashed grey line marks where fine-tuning of the backbone starts." if not starts.empty else ""
    if best is not None:
        marker += f" The green line marks epoch {best}, whose weights were kept (best validation balanced accuracy)."
    st.caption(f"Phases: {phases}.{marker} Training figures are measured on augmented images while the model changes; validation figures "
               "on untouched images. A validation curve that worsens while training improves signals over-fitting.")


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
    st.table(pd.DataFrame(metric_tables.comparison_rows(cards, metrics_by_id, split)), hide_index=True, border="horizontal")
    st.caption(f"All figures on the same {split_name} images. Balanced accuracy is the average recall over classes. "
               "Models whose confidence intervals overlap are not clearly different.")
    if len(cards) < 2:
        return
    recalls = [{"Model": c["display_name"], "Class": row["Class"], "Recall": row["Recall (sensitivity)"]}
               for c in cards for row in metric_tables.per_class_table(metrics_by_id[c["id"]].get(split) or {})]
    if not recalls:
        return
    order = metric_tables.class_order(metrics_by_id[card["id"]].get(split) or {})
    chart = app_eval_charts.recall_by_model_chart(recalls, order, len(cards))
    st.markdown("**Recall per class, model by model** — a weak class shows up here even when the averages look alike.")
    st.altair_chart(chart)


def subgroups_ui(card: dict, all_metrics: dict) -> None:
    """Test metrics by subgroup (HAM10000: sex, age band, body site; 9-class: image source), small groups marked."""
    groups = all_metrics.get("subgroups")
    if not groups:
        st.info("No subgroup metrics for this model yet: compute them with "
                f"`python -m trainer subgroups {card['id']}` (needs the dataset's manifest).")
        return
    st.caption("Test images only. Groups with fewer than 30 images are marked 'small': their figures are unreliable "
               "(see the intervals). " + dataset_prose.SUBGROUP_NOTES.get(card["dataset"], ""))
    for column, title in subgroup_views.SUBGROUP_COLUMNS.items():
        if column in groups:
            st.markdown(f"**{title}**")
            st.dataframe(pd.DataFrame(subgroup_views.subgroup_rows(groups, column)), hide_index=True, width="stretch")


def clinical_tab_ui(view, card: dict, clinical: dict | None, split: str, *args) -> None:
    """A clinical view (app_clinical) of the stored test figures, or how to compute them."""
    if clinical is None:
        app_clinical.missing_ui(card)
        return
    app_clinical.test_split_note_ui(split)
    view(clinical, *args)


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
    app_calibration.calibration_ui(card, all_metrics)
with tabs[8]:
    subgroups_ui(card, all_metrics)
with tabs[9]:
    history_ui(card, all_metrics)
with tabs[10]:
    app_mistakes.gallery_ui(card, predictions, split, split_name)
with tabs[11]:
    compare_ui(card, split, split_name)
if external:
    with tabs[12]:
        app_external.ph2_ui(card, all_metrics)
