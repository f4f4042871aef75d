"""Entry point: page config and navigation only; each page lives in pages/.

Each page starts with app_ui.route_deep_link(): on a freshly started server, Streamlit runs a deep-linked
page file directly under its legacy pages/ menu, and that call routes it through this navigation instead.
"""
from pathlib import Path

import streamlit as st

import app_ui

ASSETS = Path(__file__).resolve().parent / "assets"

st.set_page_config(page_title="Dermoscopy lesion lab", page_icon=str(ASSETS / "favicon.png"), layout="wide")

pages = {
    "Use": [
        st.Page("pages/classify.py", title="Classify", icon=":material/biotech:", default=True),
        st.Page("pages/compare.py", title="Compare models", icon=":material/compare:"),
    ],
    "Learn": [
        st.Page("pages/quiz.py", title="Quiz", icon=":material/school:"),
    ],
    "Understand": [
        st.Page("pages/evaluation.py", title="Evaluation", icon=":material/monitoring:"),
        st.Page("pages/model_cards.py", title="Model cards", icon=":material/description:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/about.py", title="About", icon=":material/info:"),
    ],
}
st.logo(str(ASSETS / "logo.png"))
st.sidebar.caption("Teaching and research demo — not a medical device.")
with app_ui.routed():
    st.navigation(pages).run()
