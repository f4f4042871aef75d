"""Charts shared by pages (Altair), drawn to read at a phone's width as well as on a desktop."""
from __future__ import annotations

from typing import Sequence

import altair as alt
import pandas as pd

from model_zoo.classes import display_name, is_concerning

GROUP_COLOURS = {"malignant or pre-malignant": "#c0392b", "benign": "#2e86c1"}
ROW_PX = 40                    # one class per row: its name and percentage above a thin bar


def probability_chart(ranked: Sequence[tuple[str, float]]) -> alt.Chart:
    """Horizontal bars, highest first, each class's name and percentage written above its bar.

    The names are text marks rather than axis labels, so at 390 px they take no width from the bars;
    malignant and pre-malignant classes are red, benign ones blue.
    """
    frame = pd.DataFrame({
        "class": [display_name(label) for label, _ in ranked],
        "probability": [float(p) for _, p in ranked],
        "group": ["malignant or pre-malignant" if is_concerning(label) else "benign" for label, _ in ranked],
    })
    # the percentage first: on a narrow screen a long name is cut at the edge, never the number
    frame["label"] = [f"{p:.0%}  {name}" for name, p in zip(frame["class"], frame["probability"])]
    frame["order"] = range(len(frame))
    base = alt.Chart(frame).encode(y=alt.Y("order:O", axis=None, title=None))
    bars = base.mark_bar(height=12, cornerRadiusEnd=2).encode(
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), title=None,
                axis=alt.Axis(format="%", values=[0, 0.25, 0.5, 0.75, 1], labelFlush=True, grid=True)),
        color=alt.Color("group:N", scale=alt.Scale(domain=list(GROUP_COLOURS), range=list(GROUP_COLOURS.values())),
                        legend=alt.Legend(orient="bottom", direction="vertical", title=None, labelLimit=300)),
        tooltip=["class", alt.Tooltip("probability:Q", format=".1%"), "group"],
    )
    names = base.mark_text(align="left", baseline="bottom", x=2, dy=-8, fontSize=13).encode(text="label:N")
    return (bars + names).properties(height=alt.Step(ROW_PX))


# --------------------------------------------------------------------------------------------- clinical figures
# Drawn from the stored points in metrics.json["clinical"] (model_zoo.clinical_views shapes them); nothing is
# recomputed in the app.

CHANCE_COLOUR = "#7f7f7f"
BELOW_COLOUR, MET_COLOUR = "#c0392b", "#2e86c1"


def _percent_axis(title: str) -> alt.Axis:
    return alt.Axis(format="%", title=title, values=[0, 0.25, 0.5, 0.75, 1])


def pr_curve_chart(points: Sequence[dict], chance: float, height: int = 200) -> alt.LayerChart:
    """One class's precision-recall curve (stored points, in order) over its chance level, a dashed line at the
    class's prevalence: a curve near that line finds the class no better than guessing."""
    frame = pd.DataFrame(points)
    curve = alt.Chart(frame).mark_line(interpolate="step-after", color="#1f77b4").encode(
        x=alt.X("Recall:Q", scale=alt.Scale(domain=[0, 1]), axis=_percent_axis("Recall (sensitivity)")),
        y=alt.Y("Precision:Q", scale=alt.Scale(domain=[0, 1]), axis=_percent_axis("Precision")),
        order="Order:Q",
        tooltip=[alt.Tooltip("Recall:Q", format=".0%"), alt.Tooltip("Precision:Q", format=".0%"),
                 alt.Tooltip("Threshold:Q", format=".3f", title="Probability threshold")],
    )
    chance_frame = alt.Chart(pd.DataFrame({"Chance": [float(chance)], "Label": ["chance"]}))
    level = chance_frame.mark_rule(strokeDash=[4, 4], color=CHANCE_COLOUR).encode(
        y="Chance:Q", tooltip=[alt.Tooltip("Chance:Q", format=".1%", title="Chance level (prevalence)")])
    label = chance_frame.mark_text(align="left", baseline="bottom", x=4, dy=-2, color=CHANCE_COLOUR,
                                   fontSize=11).encode(y="Chance:Q", text="Label:N")
    return (level + label + curve).properties(height=height)


def benign_malignant_roc_chart(points: Sequence[dict], operating_point: dict | None,
                               height: int = 360) -> alt.LayerChart:
    """The stored benign-versus-malignant ROC curve, the chance diagonal and the malignant threshold's test point."""
    curve = alt.Chart(pd.DataFrame(points)).mark_line(color="#c0392b").encode(
        x=alt.X("False positive rate:Q", scale=alt.Scale(domain=[0, 1]),
                axis=_percent_axis("False positive rate (1 − specificity)")),
        y=alt.Y("True positive rate:Q", scale=alt.Scale(domain=[0, 1]),
                axis=_percent_axis("Sensitivity for malignant lesions")),
        tooltip=[alt.Tooltip("False positive rate:Q", format=".1%"), alt.Tooltip("True positive rate:Q", format=".1%"),
                 alt.Tooltip("Threshold:Q", format=".3f", title="Malignant probability threshold")],
    )
    chance = alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]})).mark_line(
        strokeDash=[4, 4], color=CHANCE_COLOUR).encode(x="x:Q", y="y:Q")
    layers = [chance, curve]
    if operating_point:
        spot = alt.Chart(pd.DataFrame([operating_point]))
        layers.append(spot.mark_point(size=140, filled=True, color="black").encode(
            x="False positive rate:Q", y="True positive rate:Q",
            tooltip=["Label:N", alt.Tooltip("False positive rate:Q", format=".1%"),
                     alt.Tooltip("True positive rate:Q", format=".1%", title="Sensitivity")]))
        layers.append(spot.mark_text(align="left", dx=10, dy=12, fontSize=12).encode(
            x="False positive rate:Q", y="True positive rate:Q", text="Label:N"))
    return alt.layer(*layers).properties(height=height)


def set_size_chart(rows: Sequence[dict], height: int = 220) -> alt.LayerChart:
    """How many diagnoses the prediction sets held on the test images (bars, with the share written on each)."""
    base = alt.Chart(pd.DataFrame(rows)).encode(
        x=alt.X("Diagnoses in the set:O", axis=alt.Axis(labelAngle=0), title="Diagnoses in the set"),
        y=alt.Y("Images:Q", title="Test images"),
        tooltip=["Diagnoses in the set:O", "Images:Q", alt.Tooltip("Share:Q", format=".0%")],
    )
    bars = base.mark_bar(color="#1f77b4")
    labels = base.mark_text(dy=-6, baseline="bottom").encode(text=alt.Text("Share:Q", format=".0%"))
    return (bars + labels).properties(height=height)


def coverage_by_class_chart(rows: Sequence[dict], target: float) -> alt.LayerChart:
    """Test coverage per class against the target (dashed line): red bars are classes the sets cover less."""
    frame = pd.DataFrame(rows)
    frame["Status"] = ["below target" if below else "at or above target" for below in frame["Below target"]]
    order = list(frame["Class"])
    bars = alt.Chart(frame).mark_bar(height=14).encode(
        y=alt.Y("Class:N", sort=order, title=None, axis=alt.Axis(labelLimit=220)),
        x=alt.X("Coverage:Q", scale=alt.Scale(domain=[0, 1]), axis=_percent_axis("Test coverage")),
        color=alt.Color("Status:N", scale=alt.Scale(domain=["below target", "at or above target"],
                                                    range=[BELOW_COLOUR, MET_COLOUR]),
                        legend=alt.Legend(orient="bottom", title=None)),
        tooltip=["Class:N", "Test images:Q", alt.Tooltip("Coverage:Q", format=".0%"),
                 alt.Tooltip("Mean set size:Q", format=".2f")],
    )
    values = alt.Chart(frame).mark_text(align="left", dx=4, fontSize=11).encode(
        y=alt.Y("Class:N", sort=order), x="Coverage:Q", text=alt.Text("Coverage:Q", format=".0%"))
    rule = alt.Chart(pd.DataFrame({"Target": [float(target)]})).mark_rule(strokeDash=[4, 4], color="black").encode(
        x="Target:Q", tooltip=[alt.Tooltip("Target:Q", format=".0%", title="Target coverage")])
    return (bars + values + rule).properties(height=alt.Step(24))
