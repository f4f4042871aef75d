"""The Evaluation page's Calibration tab (layout only): temperature scaling, the abstention threshold and the
melanoma alert threshold, as `python -m trainer calibrate` stored them in metrics.json["calibration"].

The thresholds were chosen on validation; every figure shown is on the test images, which played no part.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

import app_eval_charts
from model_zoo.formatting import pct, with_ci


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
    cols[1].metric("Test ECE", pct(test["ece_after"], 1), delta=f"{100 * (test['ece_after'] - test['ece_before']):+.1f} pts",
                   delta_color="inverse", help=f"before scaling: {pct(test['ece_before'], 1)}")
    cols[2].metric("Test NLL", f"{test['nll_after']:.3f}", delta=f"{test['nll_after'] - test['nll_before']:+.3f}",
                   delta_color="inverse", help=f"before scaling: {test['nll_before']:.3f}")
    abstention = result.get("abstention", {})
    floor = test.get("ece_floor")
    if floor:
        st.caption(f"How small can ECE be on {floor['n']} test images? A perfectly calibrated model with these "
                   f"confidences would still show an ECE of about {pct(floor['median'], 1)} (up to "
                   f"{pct(floor['p95'], 1)} in 95% of draws) by chance alone: gaps below that are noise.")
    cols[3].metric("Abstention threshold", pct(abstention.get("threshold"), 0))
    bins = [dict(row, stage=stage) for stage, key in (("before scaling", "reliability_before"), ("after scaling", "reliability_after"))
            for row in test[key] if row["count"]]
    left, right = st.columns(2)
    with left:
        st.markdown("**Reliability diagram** (on the diagonal = honest; dot size = images in the bin)")
        st.altair_chart(app_eval_charts.reliability_chart(bins), width="stretch")
    with right:
        st.markdown("**Coverage vs accuracy** (answer only above a confidence)")
        st.altair_chart(app_eval_charts.coverage_chart(test["risk_coverage"], abstention.get("test", {}).get("coverage")),
                        width="stretch")
    if abstention.get("test"):
        test_ab = abstention["test"]
        st.caption(f"The red line is the abstention threshold ({pct(abstention['threshold'])}, chosen on validation "
                   f"for {pct(abstention['target_accuracy'])} accuracy on answered images). On test it answers "
                   f"{pct(test_ab['coverage'])} of images ({test_ab['n_accepted']} of {test_ab['n']}) with accuracy "
                   f"{pct(test_ab['accuracy'])}; the rest are 'uncertain, refer to a clinician'.")
    point = result.get("melanoma_operating_point")
    if point:
        melanoma_threshold_ui(point)


def melanoma_threshold_ui(point: dict) -> None:
    """The melanoma alert threshold chosen on validation, and how its sensitivity held up on test."""
    st.markdown("#### Melanoma alert threshold")
    rows = []
    for name in ("validation", "test"):
        r = point[name]
        rows.append({"split": name, "threshold": pct(r["threshold"]), "melanomas": r["positives"],
                     "sensitivity": with_ci(r["sensitivity"], r["sensitivity_ci95"]),
                     "specificity": with_ci(r["specificity"], r["specificity_ci95"])})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(f"Threshold on the calibrated melanoma probability chosen on validation for sensitivity ≥ "
               f"{pct(point['target_sensitivity'])}; the test row shows how that choice held up.")
