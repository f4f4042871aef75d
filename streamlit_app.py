"""Entry point: page config and navigation only; each page lives in pages/."""
import streamlit as st

st.set_page_config(page_title="Dermoscopy lesion lab", page_icon="🔬", layout="wide")

pages = {
    "Use": [
        st.Page("pages/classify.py", title="Classify", icon="🩺", default=True),
        st.Page("pages/compare.py", title="Compare models", icon="⚖️"),
    ],
    "Understand": [
        st.Page("pages/evaluation.py", title="Evaluation", icon="📊"),
        st.Page("pages/model_cards.py", title="Model cards", icon="🗂️"),
        st.Page("pages/train.py", title="Train", icon="🏋️"),
        st.Page("pages/about.py", title="About", icon="ℹ️"),
    ],
}
st.sidebar.caption("Teaching and research demo — not a medical device.")
st.navigation(pages).run()
