"""Entry point: navigation only; each page lives in pages/."""
import streamlit as st

import model_zoo

st.set_page_config(page_title="Dermoscopy lesion lab", layout="wide")
st.title("Dermoscopy lesion lab")
st.caption("Teaching and research demo, not a medical device.")
cards = model_zoo.list_models()
st.dataframe([{"model": c["display_name"], "dataset": c["dataset"], "status": c["status"],
               "test balanced accuracy": c.get("headline", {}).get("test_balanced_accuracy")} for c in cards])
