"""The Evaluation page's "Another clinic (PH²)" view and the model card's external line, from the stored figures."""
from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import model_zoo
from model_zoo import external_views as xv

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = "ensemble_224_cc_ham10000"


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture(scope="module")
def ext() -> dict:
    figures = xv.external_figures(model_zoo.read_metrics(DEFAULT))
    assert figures is not None, f"run `python -m trainer external {DEFAULT}`"
    return figures


def _text(at: AppTest) -> str:
    parts = []
    for kind in ("subheader", "markdown", "caption", "info", "warning"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts + [t.value.to_string() for t in list(at.table) + list(at.dataframe)])


def test_shaping_the_stored_figures(ext):
    rows = xv.headline_rows(ext)
    assert rows[1]["Figure"] == "Melanoma vs nevus AUROC"
    auroc = ext["all_images"]["melanoma_auroc"]
    assert rows[1]["PH², every image (gates aside)"].startswith(f"{auroc:.2f} (95% CI")
    melanoma = next(r for r in xv.gate_rows(ext) if r["Diagnosis"] == "melanoma")
    assert sum(melanoma[k] for k in ("Classified", "Classified with warning", "Refused: not dermoscopy",
                                     "Refused: image quality")) == melanoma["Images"] == 40
    sentence = xv.melanoma_sentence(ext)
    assert f"{melanoma['Classified with warning']} carry the warning" in sentence
    assert xv.applies({"classes": ["mel", "nv"]}) and not xv.applies({"classes": ["melanoma", "nevus"]})
    assert xv.external_figures({}) is None


def test_evaluation_page_has_the_ph2_view(ext):
    at = AppTest.from_file(str(ROOT / "pages" / "evaluation.py"), default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="eval_model").value["id"] == DEFAULT
    assert [t.label for t in at.tabs][-1] == "Another clinic (PH²)"
    text = _text(at)
    assert "Another clinic: PH²" in text and xv.melanoma_sentence(ext) in text
    assert "HAM10000 test (melanomas and nevi)" in text


def test_model_card_states_the_external_figures_beside_the_internal_ones(ext):
    at = AppTest.from_file(str(ROOT / "pages" / "model_cards.py"), default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    text = _text(at)
    assert xv.card_sentence(ext) in text and "against" in xv.card_sentence(ext)
