"""Small UI pieces shared by pages: disclaimer, model picker, example picker, data hint (functions end in _ui),
deep-link routing."""
from __future__ import annotations

import contextlib
import contextvars
import runpy
from pathlib import Path
from typing import Iterator, Optional

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

import app_cache
from model_zoo import examples
from model_zoo.examples import Case

ENTRYPOINT = Path(__file__).resolve().parent / "streamlit_app.py"
_ROUTED: contextvars.ContextVar[bool] = contextvars.ContextVar("routed_by_navigation", default=False)
DATASET_LABELS = {"isic_9class": "ISIC 9-class", "ham10000": "HAM10000 7-class"}
GALLERY_PER_CLASS = 4             # example cases per class in a gallery (every class shown)
DISCLAIMER = ("**Teaching and research demo — not a medical device.** Do not use it to diagnose or to decide on "
              "treatment. A model can be confidently wrong; any worrying lesion needs a clinician.")


def disclaimer_ui() -> None:
    st.warning(DISCLAIMER, icon=":material/warning:")


def percent(value: Optional[float], digits: int = 0) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def model_label(card: dict) -> str:
    """'MobileNetV2 ... — test bal. acc. 71%' for pickers."""
    bal = card.get("headline", {}).get("test_balanced_accuracy")
    return f"{card['display_name']} — test balanced accuracy {percent(bal)}"


def model_picker_ui(key: str, label: str = "Model", dataset: Optional[str] = None) -> Optional[dict]:
    """Pick a usable model, grouped by dataset; the default model is preselected. Returns its card."""
    cards = [c for c in app_cache.usable_cards() if dataset is None or c["dataset"] == dataset]
    if not cards:
        st.error("No usable model in the zoo. Train one with `python -m trainer train ...` (see docs/training.md).")
        return None
    datasets = list(dict.fromkeys(c["dataset"] for c in cards))
    if dataset is None and len(datasets) > 1:
        chosen = st.radio("Dataset the model was trained on", datasets, format_func=lambda d: DATASET_LABELS.get(d, d),
                          horizontal=True, key=f"{key}_dataset")
        cards = [c for c in cards if c["dataset"] == chosen]
    card = st.selectbox(label, cards, format_func=model_label, key=f"{key}_model")
    unavailable = [c for c in app_cache.list_cards() if c["status"] != "ok"]
    for bad in unavailable:
        st.caption(f"Unavailable: {bad['id']} — {bad['status_reason']}")
    return card


def data_hint_ui(what: str) -> None:
    st.info(f"{what} needs the dataset images. Point the app at them with the environment variable "
            "`DERMLAB_DATA_DIR=/path/to/data` (the folder holding `isic_9class/` and `ham10000/`) and restart it.")


def example_case_ui(dataset: str, key: str, per_class: int = GALLERY_PER_CLASS) -> Optional[Case]:
    """Pick an example case of `dataset` (true label hidden); None, after saying why, when there is none."""
    cases = app_cache.cases(dataset)
    if not cases:
        data_hint_ui("The example gallery")
        return None
    picks = examples.gallery(cases, per_class)
    if not app_cache.has_dataset(dataset):
        st.caption(f"{len(picks)} example cases bundled with the app, drawn at random from the test split. "
                   "With the dataset images (`DERMLAB_DATA_DIR`) the gallery draws on the whole test split.")
    choice = st.selectbox("Example image (true label hidden until you reveal it)", range(len(picks)),
                          format_func=lambda i: f"Example {i + 1}: {picks[i].image_id}", key=key)
    case = picks[choice]
    if not case.path.is_file():
        st.warning("This example image is missing from the data folder.")
        return None
    return case


@contextlib.contextmanager
def routed() -> Iterator[None]:
    """Marks the pages run inside it as reached through the app's navigation (see route_deep_link)."""
    token = _ROUTED.set(True)
    try:
        yield
    finally:
        _ROUTED.reset(token)


def route_deep_link() -> None:
    """Send a page that Streamlit ran directly through the app's navigation, then stop.

    Until a session of a freshly started server has called st.navigation, a deep link (e.g. /model_cards)
    runs the page file under Streamlit's legacy pages/ menu: file names, no sections, no logo. Running the
    entrypoint here installs the app's navigation for every session; it resolves the same URL to this page
    and runs it once more, routed. A page run on its own (AppTest.from_file) is left alone.
    """
    ctx = get_script_run_ctx()
    if _ROUTED.get() or ctx is None or Path(ctx.main_script_path).resolve() != ENTRYPOINT:
        return
    runpy.run_path(str(ENTRYPOINT))
    st.stop()
