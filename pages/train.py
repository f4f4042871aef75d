"""Train: how the zoo models were trained and how to retrain them (from the command line, not the browser)."""
from pathlib import Path

import pandas as pd
import streamlit as st

import app_cache
import app_ui
from model_zoo import reports

app_ui.route_deep_link()

ROOT = Path(app_cache.__file__).resolve().parent
RECIPES = ROOT / "trainer" / "recipes" / "zoo.sh"

st.title("Train")
st.caption("How the models in the zoo were trained, and how to train your own.")
st.info("Training runs from the **command line**, not in the browser: it takes minutes to hours and needs the "
        "dataset images. When a run finishes, the new model appears in this app's pickers (the zoo is re-read "
        "every 30 seconds).", icon=":material/computer:")

st.subheader("Training recipes of the zoo models")
cards = app_cache.list_cards()
if cards:
    st.dataframe(pd.DataFrame([reports.recipe_row(card) for card in cards]), hide_index=True, width="stretch")
    st.caption("Epochs 'head + main': pretrained models first train only the new classification head on a frozen "
               "backbone, then fine-tune the top of the backbone at the lower learning rate in brackets. Models "
               "trained from scratch have one phase. Times are wall-clock on the hardware shown.")
    for card in cards:
        command = reports.train_command(card)
        if command:
            with st.expander(f"Repeat {card.get('display_name') or card['id']}"):
                st.code(command, language="bash")
                summary = reports.training_summary(card)
                if summary:
                    st.dataframe(pd.DataFrame([{"Setting": k, "Value": reports.fmt_value(v)}
                                               for k, v in summary.items()]), hide_index=True, width="stretch")
else:
    st.info("The model zoo is empty: run the commands below to fill it.")

st.subheader("Retrain the zoo")
st.markdown("`trainer/recipes/zoo.sh` holds the exact commands that produced the committed models:")
st.code("bash trainer/recipes/zoo.sh --data-dir ../shared/data", language="bash")
if RECIPES.is_file():
    with st.expander("trainer/recipes/zoo.sh"):
        st.code(RECIPES.read_text(), language="bash")

st.subheader("Train one model")
st.code(
    "python -m trainer list                                   # architectures and zoo models\n"
    "python -m trainer train -a mobilenet_v2 -d ham10000 --input-size 192 --epochs 12\n"
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
    "- **Datasets**: `isic_9class` (official test set kept) and `ham10000` (split by lesion).\n"
    "- **Data folder**: `--data-dir DIR`, else `$DERMLAB_DATA_DIR`, else `../shared/data`.\n"
    "- **Model choice** uses the validation split only; test figures are computed once, after training.\n"
    "- **GPUs**: used automatically when TensorFlow sees one (install `tensorflow[and-cuda]`); add "
    "`--mixed-precision` on recent NVIDIA GPUs. Several GPUs use `MirroredStrategy`; several machines "
    "use `TF_CONFIG` and `MultiWorkerMirroredStrategy`.\n"
    "- A model reaches the zoo only when complete (written under a temporary name, then renamed).\n"
    "- **Serving**: `python -m trainer export MODEL_ID` writes a LiteRT `model.tflite` (checked against Keras "
    "before it is published); the app then predicts and draws Grad-CAM without loading TensorFlow "
    "(about 4x faster and 600 MB lighter). Export the model you make the default.\n"
    "- Quick test run: `--limit-per-class 6 --epochs 1 --input-size 64`."
)
st.caption(f"Datasets: {', '.join(app_ui.DATASET_LABELS.values())}. See the About page for where the data comes from.")
