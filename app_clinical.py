"""The Evaluation page's clinical views (layout only): precision-recall curves, benign versus malignant, per-class
intervals, image- versus lesion-level intervals and conformal prediction sets.

Every figure is read from metrics.json["clinical"], written once by `python -m trainer clinical` on the test
split; model_zoo.clinical_views shapes it and app_charts draws it, so nothing is recomputed per visit.
"""
from __future__ import annotations

from typing import Optional

import pandas as pd
import streamlit as st

import app_charts
from model_zoo import clinical_views as cv
from model_zoo import formatting

PR_COLUMNS = 3
WEAK_STYLE = "background-color: rgba(255, 75, 75, 0.18)"


def missing_ui(card: dict) -> None:
    st.info("No clinical evaluation figures for this model yet. Compute them from its stored predictions with "
            f"`{cv.compute_command(card['id'])}`.")


def test_split_note_ui(split: str) -> None:
    """The clinical figures exist for the test split only; say so when the page shows validation elsewhere."""
    if split != "test":
        st.caption("These figures are on the **test** images only; the validation toggle does not change them.")


def intervals_ui(clinical: dict) -> None:
    """Headline intervals resampled by image and by lesion, side by side, with the stored reason."""
    rows = cv.headline_interval_rows(clinical)
    if not rows:
        return
    title = ("Intervals by lesion, not by image" if cv.lesion_level(clinical)
             else "Intervals (images resampled)")
    st.markdown(f"##### {title}")
    st.table(pd.DataFrame(rows), hide_index=True, border="horizontal")
    boot = clinical.get("bootstrap") or {}
    honest = (" The lesion-resampled interval is the honest one; the image-resampled one (as in the table above) "
              "is too narrow." if cv.lesion_level(clinical) else "")
    st.caption(f"{cv.bootstrap_sentence(clinical)} {boot.get('note', '')}{honest}")


def per_class_ui(clinical: dict, classes: Optional[list]) -> None:
    """Recall, precision, specificity and F1 with intervals; the weakest class named, weak rows in red."""
    rows = cv.per_class_interval_rows(clinical, classes)
    if not rows:
        return
    st.markdown("##### With 95% intervals" + (" (lesions resampled)" if cv.lesion_level(clinical) else ""))
    sentence = cv.weakest_class_sentence(clinical, classes)
    if sentence:
        st.warning(sentence, icon=":material/warning:")
    frame = pd.DataFrame(rows)
    weak = frame.pop("Weak")
    styled = frame.style.apply(lambda row: [WEAK_STYLE if weak.loc[row.name] else ""] * len(row), axis=1)
    st.dataframe(styled, hide_index=True, width="stretch",
                 column_config={"Class": st.column_config.TextColumn(width="large")})
    never = (" 'Never predicted': no test image was called this class, so its precision is undefined."
             if (frame["Precision"] == cv.NEVER_PREDICTED).any() else "")
    st.caption(f"Test images; each cell is the figure and its 95% interval; rows in red: recall below 50%. "
               f"{cv.bootstrap_sentence(clinical)} A class with few images has a wide interval: its figure could be "
               f"far from the true one. {cv.DEGENERATE_NOTE}{never}")


def pr_ui(clinical: dict, classes: Optional[list]) -> None:
    """One precision-recall curve per class with its average precision and its chance level."""
    rows = cv.pr_curve_rows(clinical, classes)
    if not rows:
        st.info("No precision-recall curves stored for this model.")
        return
    st.subheader("Precision-recall curves (one class against the rest)")
    st.caption("For each class: as the probability threshold falls, the model finds more of the class (right) "
               "but more of its calls are wrong (down). Average precision (AP) sums the curve up; the dashed line "
               "is the chance level, the class's share of the test images. Rare classes have a low chance level, "
               "so compare each AP with its own line, not with the other classes.")
    curves = clinical.get("pr_curves") or {}
    for start in range(0, len(rows), PR_COLUMNS):
        cols = st.columns(PR_COLUMNS)
        for col, row in zip(cols, rows[start:start + PR_COLUMNS]):
            col.markdown(f"**{row['Class']}**")
            col.caption(cv.pr_subtitle(row))
            col.altair_chart(app_charts.pr_curve_chart(cv.pr_points(curves[row["label"]]),
                                                       row["Chance level (prevalence)"] or 0.0), width="stretch")
    table = pd.DataFrame(rows).drop(columns=["label"])
    st.dataframe(table.style.format({"Average precision": cv.fraction, "Chance level (prevalence)": cv.fraction}),
                 hide_index=True, width="stretch", column_config={"Class": st.column_config.TextColumn(width="large")})


def benign_malignant_ui(clinical: dict) -> None:
    """AUROC with interval, the stored ROC curve, and sensitivity / specificity at the two thresholds."""
    bm = clinical.get("benign_malignant") or {}
    test = bm.get("test") or {}
    if not test:
        st.info("No benign-versus-malignant figures stored for this model.")
        return
    st.subheader("Benign versus malignant")
    st.markdown(f"Malignant or pre-malignant: **{cv.malignant_names(bm)}**; every other class counts as benign. "
                f"Score: {bm.get('score', 'summed probability of those classes')}.")
    cols = st.columns(3)
    cols[0].metric("AUROC (test)", cv.auc_text(test.get("roc_auc")),
                   help="Chance that a malignant image scores above a benign one (0.5 = chance, 1 = perfect).")
    cols[1].metric("Malignant test images", f"{test.get('positives', '?')} of {test.get('n', '?')}")
    cols[2].metric("Average precision", cv.auc_text(test.get("average_precision")))
    st.markdown(f"AUROC **{cv.auc_text(test.get('roc_auc'), test.get('roc_auc_ci95'))}** on the test images "
                f"(validation: {cv.auc_text((bm.get('validation') or {}).get('roc_auc'))}).")
    points = cv.roc_points(bm)
    if points:
        st.altair_chart(app_charts.benign_malignant_roc_chart(points, cv.malignant_point(bm)), width="stretch")
    op_rows = cv.operating_point_rows(bm)
    if op_rows:
        st.markdown("##### At the alert thresholds (test images)")
        st.table(pd.DataFrame(op_rows), hide_index=True, border="horizontal")
        op = bm.get("malignant_operating_point") or {}
        st.caption(f"The malignant threshold was chosen on the {op.get('chosen_on', 'validation')} images as the "
                   f"highest cut-off on the summed malignant probability that reached "
                   f"{formatting.pct(op.get('target_sensitivity'))} sensitivity there; the test row shows how that "
                   "choice held up on images it never saw. The melanoma alert uses the melanoma probability alone "
                   "(the threshold stored on the model card, also chosen on validation), so it is not a point on "
                   f"this curve. {cv.bootstrap_sentence(clinical)}")


def conformal_ui(clinical: dict, classes: Optional[list]) -> None:
    """Target, test coverage with interval, set sizes, per-class coverage, and the warning where coverage fell short."""
    conformal = clinical.get("conformal") or {}
    test = conformal.get("test") or {}
    if not test:
        st.info("No conformal prediction sets stored for this model.")
        return
    st.subheader("Conformal prediction sets")
    st.caption("Instead of one answer, the set of diagnoses the model cannot rule out: every diagnosis whose "
               "calibrated probability reaches a cut-off, and always the most probable one. The cut-off is fitted on "
               f"the {conformal.get('fitted_on', 'validation')} images so that the sets hold the true diagnosis for a "
               f"target share of images ({conformal.get('method', 'LAC')} method).")
    if cv.below_target(conformal):
        st.error(f"**Coverage below target on test.** {conformal.get('warning') or ''} Do not read these sets as "
                 f"{formatting.pct(conformal.get('target_coverage'))} sets for this model.", icon=":material/warning:")
    cols = st.columns(4)
    cols[0].metric("Target coverage", formatting.pct(conformal.get("target_coverage")),
                   help=f"Fitted on {conformal.get('n_validation', '?')} {conformal.get('fitted_on', 'validation')} images.")
    cols[1].metric("Test coverage", formatting.pct(test.get("coverage"), 1), delta=cv.coverage_gap(conformal),
                   help="Share of test images whose set held the true diagnosis.")
    cols[2].metric("Mean set size", f"{test.get('mean_set_size', float('nan')):.2f}")
    cols[3].metric("Probability cut-off", formatting.pct(conformal.get("threshold"), 1),
                   help="A diagnosis enters the set when its calibrated probability reaches this (the top one always does).")
    st.markdown(cv.coverage_sentence(conformal))
    left, right = st.columns(2)
    with left:
        st.markdown("**Set sizes on the test images**")
        st.altair_chart(app_charts.set_size_chart(cv.set_size_rows(conformal)), width="stretch")
    with right:
        st.markdown("**Coverage per class** (dashed line: target)")
        class_rows = cv.conformal_class_rows(conformal, classes)
        st.altair_chart(app_charts.coverage_by_class_chart(class_rows, conformal.get("target_coverage") or 0.9),
                        width="stretch")
    st.markdown(f"{cv.least_covered_sentence(conformal, classes)} {cv.COVERAGE_NOTE}")
    with st.expander("Coverage per class, in figures"):
        table = pd.DataFrame(class_rows).drop(columns=["Below target"])
        st.dataframe(table.style.format({"Coverage": "{:.0%}", "Mean set size": "{:.2f}"}), hide_index=True,
                     width="stretch")
    levels = cv.level_rows(conformal)
    if levels:
        with st.expander("Other coverage targets"):
            st.dataframe(pd.DataFrame(levels), hide_index=True, width="stretch")
            st.caption("Each target fitted the same way on validation: a higher target gives larger sets.")
