"""Model cards (Mitchell et al. 2019): what each zoo model is, what it is for, how good, and its limits."""
import pandas as pd
import streamlit as st

import app_cache
import app_external
import app_ui
import model_zoo
from model_zoo import (card_views, clinical_views, dataset_prose, formatting, metric_tables, subgroup_views,
                       training_recipes)
from model_zoo.classes import display_name

app_ui.route_deep_link()


def _metrics(model_id: str) -> dict:
    try:
        return app_cache.metrics(model_id) or {}
    except (OSError, ValueError, model_zoo.ModelUnavailable):
        return {}


def _bullets(items) -> str:
    return "\n".join(f"- {item}" for item in items)


def _label(card: dict) -> str:
    name = card.get("display_name") or card["id"]
    return name if card.get("status") == "ok" else f"{name} (unavailable)"


def details_ui(card: dict) -> None:
    st.subheader("Model details")
    st.table(pd.DataFrame(card_views.card_details(card)), hide_index=True, border="horizontal")
    summary = training_recipes.training_summary(card)
    if summary:
        with st.expander("Training configuration"):
            st.dataframe(pd.DataFrame([{"Setting": k, "Value": formatting.fmt_value(v)} for k, v in summary.items()]),
                         hide_index=True, width="stretch")
            command = training_recipes.train_command(card)
            if command:
                st.markdown("Command that repeats this configuration:")
                st.code(command, language="bash")


def use_ui() -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Intended use")
        st.markdown(_bullets(card_views.INTENDED_USE))
        st.caption("Intended users: teachers, students and researchers in dermatology and machine learning.")
    with right:
        st.subheader("Out-of-scope use")
        st.markdown(_bullets(card_views.OUT_OF_SCOPE))
    st.error("**This model is not a medical device** and must not be used to diagnose, triage or screen "
             "patients. A model can be confidently wrong; any worrying lesion needs a clinician.", icon=":material/block:")


def data_ui(card: dict) -> None:
    st.subheader("Training data and splits")
    facts = dataset_prose.dataset_facts(card.get("dataset", ""))
    st.markdown(f"**Dataset:** {facts.get('name', card.get('dataset'))}")
    if facts.get("source"):
        st.markdown(facts["source"])
    if facts.get("splits"):
        st.markdown(_bullets(facts["splits"]))
    trained_on = card.get("trained_on") or {}
    counts = card_views.split_counts(card)
    if counts:
        st.dataframe(pd.DataFrame(counts), hide_index=True, width="content")
    extra = []
    if trained_on.get("split_file"):
        extra.append(f"Split file: `{trained_on['split_file']}` (image ids and labels only).")
    if "label_conflicts_in_training" in trained_on:
        extra.append("Label-conflict images were "
                     + ("**included** in training." if trained_on["label_conflicts_in_training"] else "left out of training."))
    limit = training_recipes.training_config(card).get("limit_per_class")
    if limit:
        extra.append(f"Quick run: at most {limit} images per class and split were used.")
    if extra:
        st.caption(" ".join(extra))


def metrics_ui(card: dict) -> None:
    st.subheader("Metrics")
    metrics = _metrics(card["id"])
    test = metrics.get("test") or {}
    if not test:
        headline = card.get("headline") or {}
        st.info("This model has no metrics.json. Headline from its card: test balanced accuracy "
                f"{formatting.pct(headline.get('test_balanced_accuracy'))}.")
        return
    ci95 = test.get("ci95", {}) or {}
    st.markdown(
        f"On the **{test.get('n', '?')} test images** (never used in training or model choice): "
        f"balanced accuracy **{formatting.with_ci(test.get('balanced_accuracy'), ci95.get('balanced_accuracy'))}**, "
        f"accuracy {formatting.with_ci(test.get('accuracy'), ci95.get('accuracy'))}, "
        f"macro F1 {formatting.with_ci(test.get('macro_f1'), ci95.get('macro_f1'))}."
    )
    validation = metrics.get("validation") or {}
    if validation:
        st.caption(f"Validation balanced accuracy {formatting.pct(validation.get('balanced_accuracy'))} "
                   f"on {validation.get('n', '?')} images (used to choose the best epoch). "
                   "Balanced accuracy is the average recall over classes: each diagnosis counts equally.")
    rows = metric_tables.per_class_table(test)
    if rows:
        frame = pd.DataFrame([{"Class": r["Class"], "Recall (sensitivity)": formatting.pct(r["Recall (sensitivity)"]),
                               "Precision": formatting.pct(r["Precision"]), "Test images": r["Support (images)"],
                               "Weak (recall < 50%)": "⚠️ yes" if r["Weak"] else ""} for r in rows])
        st.dataframe(frame, hide_index=True, width="stretch")
    worst = metric_tables.worst_class(test)
    if worst:
        clinical = clinical_views.clinical_figures(metrics) or {}
        span = clinical_views.recall_interval(clinical, worst["label"])
        interval = f" (95% CI {span})" if span != clinical_views.MISSING else ""
        st.markdown(f"Worst class: **{worst['name']}**, recall {formatting.pct(worst['recall'])}{interval} "
                    f"on {worst['support']} test images{clinical_views.few_images(worst['support']) if interval else ''}.")
    fusion = metrics.get("metadata_fusion")
    if fusion:
        fused_ci = (fusion["test"].get("ci95") or {}).get("balanced_accuracy")
        st.markdown(f"**With patient details** (age, sex and body site entered on the Classify page, combined with "
                    f"weight {fusion['alpha']:.1f} chosen on validation): test balanced accuracy "
                    f"**{formatting.with_ci(fusion['test']['balanced_accuracy'], fused_ci)}**, validation "
                    f"{formatting.pct(fusion['validation']['balanced_accuracy'])}. Fewer details, smaller gains: "
                    "see docs/results.md.")
    app_external.card_ui(card, metrics)
    st.caption("Full figures, confusion matrix, ROC curves and mistakes, and the other clinic's images: see the "
               "Evaluation page.")


def clinical_ui(card: dict) -> None:
    """The stored clinical figures in a few lines: lesion-level intervals, benign versus malignant, prediction sets."""
    clinical = clinical_views.clinical_figures(_metrics(card["id"]))
    if clinical is None:
        return
    st.subheader("Clinical figures (test images)")
    headline = clinical.get("headline_ci95") or {}
    scope = "by lesion" if clinical_views.lesion_level(clinical) else "by image"
    interval = (headline.get("lesion") or headline.get("image") or {}).get("balanced_accuracy")
    lines = [f"Balanced accuracy {clinical_views.span((headline.get('values') or {}).get('balanced_accuracy'), interval)} "
             f"with the interval resampled {scope}. {clinical_views.bootstrap_sentence(clinical)}"]
    if clinical.get("benign_malignant"):
        lines.append(clinical_views.benign_malignant_sentence(clinical["benign_malignant"]))
    conformal = clinical.get("conformal") or {}
    if conformal.get("test"):
        lines.append(f"{clinical_views.coverage_sentence(conformal)} "
                     f"{clinical_views.least_covered_sentence(conformal, card.get('classes'))}")
    st.markdown(_bullets(line for line in lines if line))
    if clinical_views.below_target(conformal):
        st.warning(f"**Prediction sets fall short of their target here.** {conformal.get('warning') or ''}",
                   icon=":material/warning:")
    st.caption("Why intervals by lesion: " + str((clinical.get("bootstrap") or {}).get("note", "")) +
               " Curves and per-class tables: see the Evaluation page.")


def subgroups_ui(card: dict) -> None:
    """Test figures by subgroup (HAM10000: sex, age band, body site; 9-class: image source), so a weak group is
    not hidden behind the average."""
    groups = _metrics(card["id"]).get("subgroups")
    if not groups:
        return
    by_source = "source" in groups
    st.subheader("Performance by image source" if by_source else "Performance across patient groups")
    weakest = subgroup_views.weakest_subgroup(groups)
    if weakest:
        st.markdown(f"Weakest group with at least 30 test images: **{weakest['column'].lower()} "
                    f"{weakest['group']}**, balanced accuracy {formatting.pct(weakest['balanced_accuracy'])} "
                    f"on {weakest['n']} images.")
    for column, title in subgroup_views.SUBGROUP_COLUMNS.items():
        rows = subgroup_views.subgroup_rows(groups, column)
        if rows:
            with st.expander(f"{title}: {len(rows)} groups"):
                st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption("Test images only; groups under 30 images are marked 'small' (wide intervals). "
               + dataset_prose.SUBGROUP_NOTES.get(card["dataset"], ""))


def limitations_ui(card: dict) -> None:
    st.subheader("Known limitations")
    items = card_views.limitations(card)
    weak = metric_tables.weak_classes((_metrics(card["id"]).get("test") or {}))
    if weak:
        names = ", ".join(display_name(c) for c in weak)
        items = items + [f"This model misses most test images of: **{names}** (recall below 50%)."]
    st.markdown(_bullets(items))
    st.subheader("Ethical considerations")
    st.markdown(_bullets([
        "The images are public, de-identified research images; no patient can be contacted or identified here.",
        "Risk of over-reliance: a confident percentage invites trust it has not earned. The app shows the "
        "uncertainty and failure cases next to every figure for this reason.",
        "Skin cancer in people with darker skin is under-represented in public dermoscopy datasets; a model "
        "trained on them can widen existing gaps in care if misused.",
    ]))


def license_ui(card: dict) -> None:
    st.subheader("Data licence and citation")
    st.markdown(dataset_prose.license_text(card.get("dataset", "")))


# ------------------------------------------------------------------------------------------------- page

st.title("Model cards")
st.caption("One card per model, in the style of *Model Cards for Model Reporting* (Mitchell et al., 2019): "
           "what the model is, what it is for and not for, the data behind it, how good it is, and its limits.")

cards = app_cache.list_cards()
if not cards:
    st.info("The model zoo is empty. Train a model with `python -m trainer train ...` (see the Train page).")
    st.stop()

card = st.selectbox("Model", cards, format_func=_label, key="cards_model")
st.markdown(f"### {card.get('display_name') or card['id']}")
st.caption(f"Model id `{card['id']}` · dataset {app_ui.DATASET_LABELS.get(card.get('dataset'), card.get('dataset'))}")
if card.get("status") != "ok":
    st.error(f"**This model is unavailable:** {card.get('status_reason') or 'unknown reason'} "
             "The card below is shown for reference only; the model cannot be used for predictions.", icon=":material/do_not_disturb_on:")

st.download_button("Download card.json", card_views.card_json(card), file_name=f"{card['id']}_card.json",
                   mime="application/json", key="cards_download")

details_ui(card)
use_ui()
data_ui(card)
metrics_ui(card)
clinical_ui(card)
subgroups_ui(card)
limitations_ui(card)
license_ui(card)
