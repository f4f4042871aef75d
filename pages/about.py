"""About: what this app is and is not, where the data comes from, how to run it, privacy."""
import streamlit as st

import app_ui
from model_zoo import dataset_prose

app_ui.route_deep_link()

st.title("About")
app_ui.disclaimer_ui()

st.subheader("What this is")
st.markdown(
    "A **teaching and research demo** of skin-lesion classification on dermoscopy images. You can upload an "
    "image and see what a trained convolutional neural network (CNN) predicts, where it looked (Grad-CAM "
    "heatmaps), and — just as important — how good each model honestly is, class by class, with its mistakes."
)
st.subheader("What this is not")
st.markdown(
    "- **Not a medical device.** It has no regulatory clearance and must not be used to diagnose, triage or "
    "screen anyone, or to decide on treatment.\n"
    "- Not a substitute for a clinician: the models are trained on small, low-resolution copies of public "
    "datasets, mostly from fair-skinned patients, and make mistakes that a dermatologist would not.\n"
    "- Not for ordinary photos: the models only know dermoscopy images and will give an answer for anything."
)

st.subheader("Where the data comes from")
st.markdown(
    "**ISIC 9-class** — the Kaggle set *\"Skin cancer ISIC The International Skin Imaging Collaboration\"*: "
    "dermoscopy images from the ISIC Archive in 9 classes (actinic keratosis, basal cell carcinoma, "
    "dermatofibroma, melanoma, nevus, pigmented benign keratosis, seborrheic keratosis, squamous cell carcinoma, "
    "vascular lesion). 2200 images after removing byte-identical duplicates (2082 train, 118 test), all "
    "**180 x 180 px** (the original aspect ratio was not kept). The labels are noisy: *seborrheic keratosis* is "
    "unreliable, and 59 images with conflicting labels are flagged. 1437 of its images are also in HAM10000.\n\n"
    "**HAM10000** — *Human Against Machine with 10000 training images*: 10013 dermoscopy images (7470 lesions) "
    "in 7 classes (nevus 6703, melanoma 1113, benign keratosis 1099, basal cell carcinoma 514, actinic "
    "keratosis / Bowen's 327, vascular 142, dermatofibroma 115), with age, sex and body site, as "
    "**200 x 150 px** copies of the 600 x 450 originals. There is no official split; this project splits by "
    "lesion so no lesion is in two splits.\n\n"
    "Because the two sets share images, a model trained on one is never tested on the other here.\n\n"
    "Both copies were taken byte-for-byte from public GitHub mirrors (ISIC 9-class: "
    "AmitBytesSage/Melanoma-Skin-Cancer-Detection-Model; HAM10000: mmalek06/bounding-box-detection-ham1000); "
    "no image was resampled. Each data folder's `SOURCE.md` records the commit, processing and counts."
)
st.markdown("**Data licences.** " + dataset_prose.DATASET_FACTS["isic_9class"]["license"] + " "
            + dataset_prose.DATASET_FACTS["ham10000"]["license"] + "\n\nCitation: " + dataset_prose.HAM10000_CITATION)

st.subheader("Licences of this project")
st.markdown(
    "- **Code**: Apache License 2.0 (`LICENSE` in the repository).\n"
    "- **Trained models** (`model_zoo/models`): trained on CC BY-NC 4.0 images, so they are offered for "
    "**non-commercial** teaching and research only, with attribution to the datasets above.\n"
    "- **Bundled example cases** (`assets/examples`): a few test-split images of each dataset, drawn at random by "
    "`python -m trainer examples`, redistributed under their sources' terms: **non-commercial, with attribution** "
    "(HAM10000: CC BY-NC 4.0; ISIC Archive images: CC-0, CC-BY or CC BY-NC 4.0). Each image's source and licence "
    "are listed in `assets/examples/manifest.csv` and `assets/examples/LICENSE.md`."
)

st.subheader("Run it yourself")
st.markdown("With Python 3.11 or 3.12:")
st.code("python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && .venv/bin/streamlit run streamlit_app.py",
        language="bash")
st.markdown(
    "The app runs on its bundled models and example cases alone. The dataset images are not part of the "
    "repository; with them, the galleries draw on the whole test splits and you can train: set "
    "`DERMLAB_DATA_DIR` to the folder holding `isic_9class/` and `ham10000/` (default: `../shared/data` beside "
    "the repository):"
)
st.code("DERMLAB_DATA_DIR=/path/to/data .venv/bin/streamlit run streamlit_app.py", language="bash")
st.caption("Tests: `bash .ci/run`. Training needs TensorFlow too: `.venv/bin/pip install -r requirements-train.txt` "
           "(see the Train page). Hosting: `docs/hosting.md`.")

st.subheader("Privacy")
st.markdown(
    "- Images you upload are processed **in memory only** and are **never stored**.\n"
    "- The app collects **no usage statistics**.\n"
    "- Even so, do not upload images that could identify a person."
)
