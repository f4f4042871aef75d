"""The Evaluation page's "Another clinic (PH²)" view and the model cards' external line (layout only).

Figures come from metrics.json["external"] (`python -m trainer external`), shaped by model_zoo.external_views.
"""
from __future__ import annotations

from typing import Optional

import altair as alt
import pandas as pd
import streamlit as st

from model_zoo import external_views as xv

OUTCOME_COLOURS = {"classified": "#2e86c1", "classified with the 'unlike training' warning": "#f39c12",
                   "refused as not dermoscopy": "#c0392b", "refused for image quality": "#7f7f7f"}


def outcome_chart(ext: dict) -> Optional[alt.Chart]:
    """Stacked bars: what the app did with each PH² diagnosis's images."""
    rows = [{"Diagnosis": group, "Outcome": name, "Images": row[key]}
            for group, row in (ext.get("gate") or {}).get("by_group", {}).items()
            for key, name in xv.OUTCOME_NAMES.items()]
    if not rows:
        return None
    return alt.Chart(pd.DataFrame(rows)).mark_bar().encode(
        x=alt.X("Images:Q", stack="zero", title="Images"),
        y=alt.Y("Diagnosis:N", title=None, sort=["common nevus", "atypical nevus", "melanoma"]),
        color=alt.Color("Outcome:N", scale=alt.Scale(domain=list(OUTCOME_COLOURS), range=list(OUTCOME_COLOURS.values())),
                        legend=alt.Legend(orient="top", direction="vertical", title=None, labelLimit=400)),
        order=alt.Order("order:Q"),
        tooltip=["Diagnosis", "Outcome", "Images"],
    ).transform_calculate(order=f"indexof({list(OUTCOME_COLOURS)}, datum.Outcome)").properties(height=alt.Step(34))


def ph2_ui(card: dict, metrics: dict) -> None:
    """The whole view: source, headline figures beside HAM10000's, the gate by diagnosis, abstention, the crop."""
    st.subheader("Another clinic: PH²")
    st.caption(xv.SOURCE)
    if not xv.applies(card):
        st.info("PH² is labelled melanoma or nevus in HAM10000's codes, so this view is for HAM10000 models only.")
        return
    ext = xv.external_figures(metrics)
    if ext is None:
        st.info(f"Not measured for this model yet. Score it once with `{xv.compute_command(card['id'])}`.")
        return
    st.markdown("Every image went through the app's own diagnosis path (quality gate, dermoscopy check, calibrated "
                f"probabilities, abstention, melanoma alert), with thresholds chosen on HAM10000 validation. Score: "
                f"{ext.get('score', 'the melanoma probability')}.")
    st.dataframe(pd.DataFrame(xv.headline_rows(ext)), hide_index=True, width="stretch")
    st.caption("Brackets: 95% bootstrap intervals over the images. 'As the app serves it' leaves out the images the "
               "app refuses (they get no answer and no alert). A model can look good on its own test split and fall "
               "well short on another clinic's dermatoscope: compare the columns.")
    st.markdown("##### What the safety checks did with these images")
    sentence = xv.melanoma_sentence(ext)
    if sentence:
        st.warning(sentence, icon=":material/warning:")
    chart = outcome_chart(ext)
    if chart is not None:
        st.altair_chart(chart, width="stretch")
    st.dataframe(pd.DataFrame(xv.gate_rows(ext)), hide_index=True, width="stretch")
    st.caption("'Unlike training': a dermoscopy image that looks unlike this model's training images (another "
               "device or clinic, or a rare lesion). The app still answers, with a prominent warning, the melanoma "
               "alert and the advice to see a clinician; only images that do not look like dermoscopy at all are "
               "refused. See docs/experiments.md for why.")
    for text in (xv.abstention_sentence(ext), xv.crop_sentence(metrics)):
        if text:
            st.markdown(text)
    st.caption(f"Measured on {ext.get('created', '?')} with `{ext.get('command', xv.compute_command(card['id']))}` "
               f"({ext.get('backend', '?')}).")


def card_ui(card: dict, metrics: dict) -> None:
    """The model card's line: external figures beside the internal ones (nothing when not measured)."""
    if not xv.applies(card):
        return
    ext = xv.external_figures(metrics)
    if ext is None:
        st.caption(f"Not yet measured on another clinic's images (PH²): `{xv.compute_command(card['id'])}`.")
        return
    st.markdown(xv.card_sentence(ext))
