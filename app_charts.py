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
    frame["label"] = [f"{name} — {p:.0%}" for name, p in zip(frame["class"], frame["probability"])]
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
