"""The Evaluation page's Altair charts: confusion matrix, ROC curves, training curves, reliability diagram,
coverage against accuracy, and recall per class model by model.

Builders only: rows in, a chart out; the page decides where each goes and what it says about it.
"""
from __future__ import annotations

from typing import Optional, Sequence

import altair as alt
import pandas as pd

TRAINING_COLOURS = {"training": "#1f77b4", "validation": "#ff7f0e"}
ABSTENTION_COLOUR = "#c0392b"


def confusion_chart(rows: Sequence[dict], order: Sequence[str], normalised: bool) -> alt.LayerChart:
    """Heatmap of model_zoo.metric_tables.confusion_rows with each cell's count or row share written in it."""
    field, fmt = ("Row share", ".0%") if normalised else ("Count", "d")
    frame = pd.DataFrame(rows)
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
    return (heat + text).properties(height=60 + 38 * len(order))


def roc_chart(points: Sequence[dict]) -> alt.LayerChart:
    """One-vs-rest ROC curves (model_zoo.prediction_views), a legend entry highlights a class, chance dashed."""
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
    return (chance + curves).properties(height=420).interactive()


def training_curve_charts(rows: Sequence[dict], starts: pd.DataFrame,
                          best: Optional[int]) -> list[tuple[str, alt.LayerChart]]:
    """(title, chart) for loss and for the accuracies (model_zoo.history_views.history_long rows), each marking
    where a phase starts (`starts`, with a Label column) and the epoch whose weights were kept."""
    frame = pd.DataFrame(rows)
    charts = []
    for title, metrics in (("Loss (lower is better)", ["Loss"]),
                           ("Accuracy and balanced accuracy", ["Accuracy", "Balanced accuracy"])):
        part = frame[frame["Metric"].isin(metrics)]
        if part.empty:
            continue
        layers = [alt.Chart(part).mark_line(point=True).encode(
            x=alt.X("Epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("Value:Q", title=None, axis=alt.Axis(format="%") if metrics[0] != "Loss" else alt.Axis()),
            color=alt.Color("Set:N", title="Data", scale=alt.Scale(domain=list(TRAINING_COLOURS),
                                                                    range=list(TRAINING_COLOURS.values()))),
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
    return charts


def reliability_chart(bins: Sequence[dict]) -> alt.LayerChart:
    """Confidence against accuracy per bin, before and after temperature scaling; dot size is images per bin."""
    diagonal = alt.Chart(pd.DataFrame({"x": [0, 1], "y": [0, 1]})).mark_line(strokeDash=[4, 4], color="gray").encode(x="x", y="y")
    base = alt.Chart(pd.DataFrame(bins)).encode(
        x=alt.X("confidence:Q", scale=alt.Scale(domain=[0, 1]), title="confidence (top class)"),
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), title="accuracy"),
        color=alt.Color("stage:N", title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["stage", alt.Tooltip("confidence:Q", format=".0%"), alt.Tooltip("accuracy:Q", format=".0%"), "count"])
    points = base.mark_line(strokeWidth=2) + base.mark_circle(opacity=0.8).encode(
        size=alt.Size("count:Q", legend=None))
    return (diagonal + points).properties(height=320)


def coverage_chart(curve: Sequence[dict], threshold_coverage: Optional[float]) -> alt.Chart | alt.LayerChart:
    """Share of images answered against the accuracy of those answers, with the abstention threshold's coverage
    as a red rule when there is one."""
    chart = alt.Chart(pd.DataFrame(curve)).mark_line().encode(
        x=alt.X("coverage:Q", axis=alt.Axis(format="%"), title="share of images answered"),
        y=alt.Y("accuracy:Q", axis=alt.Axis(format="%"), title="accuracy of the answers"),
        tooltip=[alt.Tooltip("threshold:Q", format=".0%"), alt.Tooltip("coverage:Q", format=".0%"),
                 alt.Tooltip("accuracy:Q", format=".0%")])
    layers = chart
    if threshold_coverage is not None:
        rule = alt.Chart(pd.DataFrame({"coverage": [threshold_coverage]})).mark_rule(color=ABSTENTION_COLOUR).encode(x="coverage:Q")
        layers = chart + rule
    return layers.properties(height=320)


def recall_by_model_chart(recalls: Sequence[dict], order: Sequence[str], models: int) -> alt.Chart:
    """One row of bars per class, one bar per model: a weak class stands out even when the averages agree."""
    return alt.Chart(pd.DataFrame(recalls)).mark_bar().encode(
        x=alt.X("Recall:Q", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("Model:N", title=None, axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color("Model:N", legend=alt.Legend(orient="bottom", labelLimit=400)),
        row=alt.Row("Class:N", title=None, sort=order, header=alt.Header(labelAngle=0, labelAlign="left")),
        tooltip=["Model:N", "Class:N", alt.Tooltip("Recall:Q", format=".0%")],
    ).properties(height=14 * models, width=420)
