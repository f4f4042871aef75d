"""Train: fit a quick custom model in the browser, start full training runs in the background, and see how the
zoo models were trained. Fitting and training happen only where the owner allows it (DERMLAB_ALLOW_TRAINING=1,
a local copy); a hosted copy explains how to train locally instead."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import pandas as pd
import streamlit as st

import app_cache
import app_ui
import model_zoo
from model_zoo import datadir, formatting, jobs, quick_model, training_recipes

app_ui.route_deep_link()

ROOT = Path(app_cache.__file__).resolve().parent
RECIPES = ROOT / "trainer" / "recipes" / "zoo.sh"
PREPARED, UPLOAD = "A prepared dataset", "A zip with one folder per class"
REFRESH_SECONDS = 2.0
SHOWN_RUNS = 8
LOCAL_STEPS = """\
git clone <this repository> && cd <it>
python3 -m venv .venv && .venv/bin/pip install -r requirements-train.txt
# your images: a public download or one folder per class -> a dataset the trainer reads
.venv/bin/python -m trainer prepare ~/Downloads/my_images --format folders --name my_set --data-dir ~/dermdata
# train from the command line ...
.venv/bin/python -m trainer train -a mobilenet_v2 -d my_set --data-dir ~/dermdata --epochs 10
# ... or in this page, on your own machine
DERMLAB_ALLOW_TRAINING=1 DERMLAB_DATA_DIR=~/dermdata .venv/bin/streamlit run streamlit_app.py"""


def slug(text: str) -> str:
    """A model or dataset name from free text ('My Clinic.zip' -> 'my_clinic')."""
    return re.sub(r"[^a-z0-9_-]+", "_", Path(text).stem.lower()).strip("_-")[:48] or "custom"


def prepared_names() -> list[str]:
    return datadir.prepared_datasets(app_cache.data_dir())


# ---------------------------------------------------------------- quick custom model
def quick_data_ui() -> quick_model.QuickData | str | None:
    """The images the quick model learns from, checked; the reason they were refused; or None until chosen."""
    source = st.radio("Images", (PREPARED, UPLOAD), horizontal=True, key="quick_source")
    if source == PREPARED:
        names = prepared_names()
        if not names:
            st.info("No prepared dataset in the data folder. Make one with `python -m trainer prepare SOURCE "
                    "--format folders --name NAME --data-dir DIR` and start the app with `DERMLAB_DATA_DIR=DIR`, "
                    "or upload a zip.")
            return None
        name = st.selectbox("Prepared dataset", names, key="quick_dataset")
        cap = st.slider("At most this many images per class and split (time: ~1 minute for a few hundred)",
                        20, 500, quick_model.MAX_PER_CLASS, 10, key="quick_cap")
        return checked_data((name, cap), lambda: quick_model.from_prepared(app_cache.data_dir(), name, cap))
    upload = st.file_uploader("Zip with one folder per class (a few hundred images)", type=["zip"], key="quick_zip")
    if upload is None:
        st.caption("Layout: `class_a/img1.jpg`, `class_b/img2.jpg`, ... (or all inside one top folder). Entries "
                   "that climb out of their folder are refused; exact duplicates are removed.")
        return None
    name = st.text_input("Dataset name", slug(upload.name), key="quick_zip_name")
    skip_bad = st.checkbox("Leave out images that cannot be opened (else the zip is refused)", key="quick_skip_bad")
    data = upload.getvalue()
    return checked_data((upload.file_id, name, skip_bad), lambda: quick_model.from_zip(data, name, skip_bad))


def checked_data(key: tuple, read: Callable[[], quick_model.QuickData]) -> quick_model.QuickData | str:
    """The checked images, or the reason they were refused; read once per choice (a rerun reuses them)."""
    held = st.session_state.get("quick_data")
    if held is None or held[0] != key:
        st.session_state.pop("quick_data", None)
        try:
            result: quick_model.QuickData | str = read()
        except quick_model.QuickModelError as exc:
            result = str(exc)
        st.session_state["quick_data"] = (key, result)
    return st.session_state["quick_data"][1]


def quick_model_ui() -> None:
    st.subheader("Quick custom model")
    st.markdown("A new classifier on the frozen features of a HAM10000 model in the zoo: the app runs each image "
                "through that model's LiteRT export once and fits a logistic regression on its penultimate "
                "features (no TensorFlow, about a minute for a few hundred images on 2 cores). It is scored on a "
                "held-out test split and published to the zoo, where every page can use it.")
    cards = app_cache.list_cards()
    backbone = quick_model.default_backbone(cards, model_zoo.default_model_id(cards))
    if backbone is None:
        st.warning("The zoo has no HAM10000 model with a LiteRT export to take features from.")
        return
    st.caption(f"Features from: **{backbone['display_name']}** (`{backbone['id']}`).")
    data = quick_data_ui()
    if isinstance(data, str):
        st.error(data)
        return
    if data is None:
        return
    counts = data.counts()
    st.caption(f"{sum(counts.values())} images, {len(data.classes)} classes ({', '.join(data.classes)}): "
               f"{counts['train']} to learn from, {counts['val']} to choose and calibrate on, {counts['test']} to test.")
    left, right = st.columns(2)
    model_id = left.text_input("Model id", f"quick_{data.dataset}"[:64], key="quick_model_id")
    display = right.text_input("Display name", f"Quick model on {data.dataset}", key="quick_display")
    replace = st.checkbox("Replace an earlier quick model of this id", key="quick_replace")
    if not st.button("Fit the quick model", type="primary", key="quick_fit"):
        return
    bar = st.progress(0.0, text="Loading the backbone...")
    try:
        folder = quick_model.fit(data, app_cache.load_model(backbone["id"]), model_id, display, replace=replace,
                                 progress=lambda text, share: bar.progress(min(1.0, share), text=text))
    except (quick_model.QuickModelError, model_zoo.ModelUnavailable) as exc:
        st.error(str(exc))
        return
    app_cache.list_cards.clear()
    card = model_zoo.get_card(folder.name)
    st.success(f"Published **{card['display_name']}** (`{card['id']}`): test balanced accuracy "
               f"{app_ui.percent(card['headline']['test_balanced_accuracy'])} on {card['trained_on']['counts']['test']} "
               f"held-out images. It is now in every model picker (dataset `{card['dataset']}`).")
    st.caption(card["notes"])


# ---------------------------------------------------------------- full training runs
def start_run_ui() -> None:
    st.subheader("Full training run")
    st.markdown("Trains a whole network (`python -m trainer train`) in a background process: it goes on when this "
                "tab closes, and this page finds it again. Minutes to hours on a CPU; a GPU is used when TensorFlow "
                "sees one.")
    names = [d for d in datadir.DATASETS if app_cache.has_dataset(d)] + prepared_names()
    if not names:
        app_ui.data_hint_ui("A training run")
        return
    with st.form("full_run"):
        left, middle, right = st.columns(3)
        dataset = left.selectbox("Dataset", names, format_func=lambda d: app_ui.DATASET_LABELS.get(d, d),
                                 key="run_dataset")
        architecture = middle.selectbox("Architecture", jobs.ARCHITECTURES, key="run_architecture")
        model_id = right.text_input("Model id (default: ARCHITECTURE_DATASET)", key="run_model_id")
        left, middle, right = st.columns(3)
        epochs = left.number_input("Epochs (fine-tuning, or all from scratch)", 1, 200, 10, key="run_epochs")
        head = middle.number_input("Head epochs (frozen backbone)", 0, 50, 3, key="run_head_epochs")
        size = right.number_input("Input size (px; 0 = the architecture's)", 0, 600, 0, 16, key="run_size")
        limit = st.number_input("Images per class and split (0 = all; a few for a quick trial)", 0, 100000, 0,
                                key="run_limit")
        replace = st.checkbox("Replace a zoo model of the same id", key="run_replace")
        submitted = st.form_submit_button("Start training", type="primary")
    if not submitted:
        return
    model_id = model_id.strip() or f"{architecture}_{dataset}"
    if app_cache.card_by_id(model_id) and not replace:
        st.error(f"The zoo already has {model_id!r}: choose another id, or tick 'Replace'.")
        return
    options = {"epochs": int(epochs), "head_epochs": int(head), "input_size": int(size) or None,
               "limit_per_class": int(limit) or None, "no_tensorboard": True}
    try:
        job = jobs.start(architecture, dataset, model_id, options, data_dir=app_cache.data_dir())
    except (ValueError, OSError) as exc:
        st.error(f"Could not start the run: {exc}")
        return
    st.success(f"Started `{job.id}`; its progress is below.")


def run_ui(job: jobs.Job) -> None:
    """One run: status, epochs done, the log's tail, and a cancel button while it runs."""
    done, planned = job.progress()
    state = job.state
    with st.container(border=True):
        st.markdown(f"**{job.id}** — {state.get('architecture')} on {state.get('dataset')}: **{job.status}**"
                    + (f" (exit code {state['returncode']})" if state.get("returncode") not in (None, 0) else ""))
        st.progress(done / planned if planned else 0.0, text=f"{done} of {planned} epochs")
        tail = job.log_tail()
        if tail:
            st.code(tail, language=None)
        if job.active and st.button("Cancel", key=f"cancel_{job.id}"):
            jobs.cancel(job)
            st.rerun()
        if job.status == "finished":
            app_cache.list_cards.clear()
            st.caption(f"Published to the zoo as `{state.get('model_id')}`.")


def runs_ui() -> None:
    """Every run started from the app; refreshed every few seconds while one is active."""
    runs = jobs.list_jobs()[:SHOWN_RUNS]
    if not runs:
        st.caption("No training run started from the app yet.")
        return
    st.markdown(f"**Runs** (in `{jobs.runs_dir()}`)")
    for job in runs:
        run_ui(job)


@st.fragment(run_every=REFRESH_SECONDS)
def live_runs_ui() -> None:
    """runs_ui, redrawn every few seconds on its own (the rest of the page is not rerun)."""
    runs_ui()


def hosted_ui() -> None:
    st.info("Training is **off** on this copy of the app: fitting models takes the machine's cores for minutes to "
            "hours. On your own machine, start the app with the environment variable "
            "`DERMLAB_ALLOW_TRAINING=1` and this page fits quick custom models and runs full trainings in the "
            "background.", icon=":material/computer:")
    st.code(LOCAL_STEPS, language="bash")


# ---------------------------------------------------------------- how the zoo was trained
def recipes_ui() -> None:
    st.subheader("Training recipes of the zoo models")
    cards = app_cache.list_cards()
    if not cards:
        st.info("The model zoo is empty: run the commands below to fill it.")
        return
    st.dataframe(pd.DataFrame([training_recipes.recipe_row(card) for card in cards]), hide_index=True, width="stretch")
    st.caption("Epochs 'head + main': pretrained models first train only the new classification head on a frozen "
               "backbone, then fine-tune the top of the backbone at the lower learning rate in brackets. Models "
               "trained from scratch have one phase. Times are wall-clock on the hardware shown. Quick custom "
               "models are a logistic regression on another model's features: their cards say how they were made.")
    for card in cards:
        command = training_recipes.train_command(card)
        if command:
            with st.expander(f"Repeat {card.get('display_name') or card['id']}"):
                st.code(command, language="bash")
                summary = training_recipes.training_summary(card)
                if summary:
                    st.dataframe(pd.DataFrame([{"Setting": k, "Value": formatting.fmt_value(v)}
                                               for k, v in summary.items()]), hide_index=True, width="stretch")


def command_line_ui() -> None:
    st.subheader("From the command line")
    st.markdown("`trainer/recipes/zoo.sh` holds the exact commands that produced the committed models:")
    st.code("bash trainer/recipes/zoo.sh --data-dir ../shared/data", language="bash")
    if RECIPES.is_file():
        with st.expander("trainer/recipes/zoo.sh"):
            st.code(RECIPES.read_text(), language="bash")
    st.code(
        "python -m trainer prepare DOWNLOAD --format ham10000 --name ham_full --max-side 450 --data-dir DIR\n"
        "#   formats: ham10000, isic_9class (Kaggle Train/Test), isic_challenge (one-hot CSV), folders\n"
        "python -m trainer list                                   # architectures and zoo models\n"
        "python -m trainer train -a mobilenet_v2 -d ham10000 --input-size 192 --epochs 12\n"
        "python -m trainer train -a mobilenet_v2 -d ham_full --data-dir DIR   # a prepared dataset\n"
        "python -m trainer train ... --resume                     # continue an interrupted run (same --run-dir)\n"
        "python -m trainer evaluate mobilenet_v2_ham10000         # recompute metrics.json / predictions.csv\n"
        "python -m trainer tune -a mobilenet_v2 -d isic_9class --max-trials 10   # KerasTuner, validation only\n"
        "python -m trainer export ensemble_224_cc_ham10000        # model.tflite: served without TensorFlow\n"
        "python -m trainer set-default ensemble_224_cc_ham10000   # the app's default model\n"
        "python -m trainer train --help                           # every option",
        language="bash",
    )
    st.markdown(
        "- **Architectures**: `custom_cnn` (from scratch), `mobilenet_v2`, `efficientnet_b0`, `resnet50`, "
        "`densenet121`, `vgg16`, `efficientnet_lite0`, `squeezenet_v1_1`.\n"
        "- **Datasets**: `isic_9class` (official test set kept), `ham10000` (split by lesion), and any dataset made "
        "by `python -m trainer prepare` (checked, de-duplicated, split by patient or lesion where the source has "
        "ids). See `docs/training.md`.\n"
        "- **Data folder**: `--data-dir DIR`, else `$DERMLAB_DATA_DIR`, else `../shared/data`.\n"
        "- **Model choice** uses the validation split only; test figures are computed once, after training.\n"
        "- **GPUs**: used automatically when TensorFlow sees one (install `tensorflow[and-cuda]`); add "
        "`--mixed-precision` on recent NVIDIA GPUs; `trainer/recipes/gpu_fit.sh` is the recipe for a rented GPU.\n"
        "- A model reaches the zoo only when complete (written under a temporary name, then renamed).\n"
        "- **Serving**: `python -m trainer export MODEL_ID` writes a LiteRT `model.tflite`; the app then predicts "
        "and draws Grad-CAM without loading TensorFlow. Export the model you make the default.\n"
        "- Quick test run: `--limit-per-class 6 --epochs 1 --input-size 64`."
    )


st.title("Train")
st.caption("Make your own model, and see how the models in the zoo were trained.")
if jobs.training_allowed():
    quick_model_ui()
    start_run_ui()
    if any(job.active for job in jobs.list_jobs()):
        live_runs_ui()                                 # refreshed every few seconds while a run is active
    else:
        runs_ui()
else:
    hosted_ui()
recipes_ui()
command_line_ui()
