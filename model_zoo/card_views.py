"""A model card (card.json) as the Model cards page shows it: the details table, how the app serves the model,
the images per split, intended use and known limitations, and the card as stored.

The dataset-specific prose comes from model_zoo.dataset_prose; these functions add what holds for every model
and what the card itself records. Pure functions, no Streamlit.
"""
from __future__ import annotations

import json

from .classes import display_name
from .dataset_prose import dataset_facts
from .formatting import fmt_value, human_bytes, human_seconds, is_number
from .history_views import PHASE_NAMES

COMMON_LIMITATIONS = [
    "Skin-tone and population bias: the images come mostly from fair-skinned patients in Europe and Australia; "
    "performance on darker skin types and other populations is unknown and likely worse.",
    "Dermoscopy only: the model has never seen clinical (non-dermoscopic) photos, phone pictures or "
    "non-lesion images, and will still output a confident-looking answer for them.",
    "Small data and low resolution compared with clinical practice; the test sets are small, so the confidence "
    "intervals are wide.",
    "The classes are a fixed list: a lesion of any other kind is forced into one of them.",
]
INTENDED_USE = [
    "Teaching and research: showing how convolutional neural networks classify dermoscopy images.",
    "Comparing architectures and training recipes on the same data and splits.",
    "Discussing failure modes: class imbalance, label noise, low resolution, where the model looks (Grad-CAM).",
]
OUT_OF_SCOPE = [
    "Diagnosis, triage or screening of patients, or any decision about care — this is **not a medical device**.",
    "Photos that are not dermoscopy images (clinical or phone photos, histology, other body imaging).",
    "Skin types and populations not represented in the training data.",
    "Any commercial use (the data licences are non-commercial).",
]
RUNTIME_CARD_FIELDS = ("folder", "status", "status_reason")


def card_details(card: dict) -> list[dict]:
    """Model-details rows (Field, Value) of a card, tolerant of missing fields."""
    training = card.get("training") or {}
    pre = card.get("preprocessing") or {}
    preprocessing = "; ".join(str(v) for v in (pre.get("shared_function"), pre.get("input"), pre.get("inside_model")) if v)
    params = card.get("parameters")
    phases = training.get("phases") or {}
    phase_text = ", ".join(f"{PHASE_NAMES.get(k, k)} {human_seconds(v)}" for k, v in phases.items())
    rows = [
        ("Model id", card.get("id")),
        ("Name", card.get("display_name")),
        ("Architecture", " — ".join(str(v) for v in (card.get("architecture"), card.get("architecture_description")) if v)),
        ("Parameters", f"{params:,}" if is_number(params) else None),
        ("Input size (px)", card.get("input_size")),
        ("Classes", ", ".join(display_name(c) for c in card.get("classes") or [])),
        ("Preprocessing", preprocessing),
        ("Pretrained weights", card.get("pretrained")),
        ("Training time", human_seconds(training.get("seconds")) + (f" ({phase_text})" if phase_text else "")
         if is_number(training.get("seconds")) else None),
        ("Hardware", training.get("hardware")),
        ("Keras backend", training.get("backend")),
        ("Evaluated on", training.get("evaluated_on")),
        ("Distribution strategy", training.get("strategy")),
        ("Trained on (date)", (card.get("trained_on") or {}).get("date")),
        ("Model file size", human_bytes(card.get("size_bytes")) if is_number(card.get("size_bytes")) else None),
        (f"sha256 of {card.get('model_file', 'model.keras')}", card.get("sha256")),
        ("Served by", serving_text(card) if card.get("sha256") else None),
        ("Members (ensemble)", "; ".join(_member_text(m) for m in card.get("members") or [])),
        ("Grad-CAM layer", ", ".join(card["cam_layer"]) if isinstance(card.get("cam_layer"), list) else card.get("cam_layer")),
        ("Notes", card.get("notes")),
    ]
    return [{"Field": k, "Value": fmt_value(v)} for k, v in rows if v not in (None, "", [])]


def serving_text(card: dict) -> str:
    """How the app runs this model: LiteRT (with its size and how closely it matches Keras) or Keras."""
    if card.get("kind") == "linear_head":
        backbone = card.get("backbone") or {}
        return (f"LiteRT, without TensorFlow: the {backbone.get('model_id')} export's {backbone.get('output')} "
                f"output, then {card.get('model_file')} (one dense layer, numpy); Grad-CAM, Grad-CAM++ and "
                "Score-CAM from the backbone's feature maps")
    entry = card.get("litert")
    if not entry:
        return "Keras (TensorFlow); `python -m trainer export` would add a LiteRT file"
    diff = entry.get("max_probability_diff")
    check = f", probabilities within {diff:.0e} of Keras on {entry.get('checked_on')}" if is_number(diff) else ""
    heatmaps = ("Grad-CAM, Grad-CAM++ and Score-CAM" if entry.get("head") else "Score-CAM") if entry.get("fmap_outputs") else ""
    cams = f", {heatmaps} from its feature maps" if heatmaps else ""
    return f"LiteRT, without TensorFlow ({entry.get('file', 'model.tflite')}, {human_bytes(entry.get('size_bytes'))}{check}{cams})"


def _member_text(member: dict) -> str:
    score = member.get("val_balanced_accuracy")
    name = member.get("display_name") or member.get("id")
    return f"{name} ({member.get('id')}, validation balanced accuracy {score:.3f})" if is_number(score) else str(name)


def split_counts(card: dict) -> list[dict]:
    """Images per split from card["trained_on"]["counts"]: rows Split / Images."""
    counts = (card.get("trained_on") or {}).get("counts") or {}
    names = {"train": "Training", "val": "Validation", "validation": "Validation", "test": "Test"}
    def name(key: str) -> str:
        if key.startswith("train_of_which_"):          # extra training data from another dataset
            return f"Training: of which from {key.removeprefix('train_of_which_')}"
        return names.get(key, key)

    return [{"Split": name(k), "Images": int(v)} for k, v in counts.items() if is_number(v)]


def limitations(card: dict) -> list[str]:
    """Known limitations: dataset-specific first, then common ones, then the model's own weak classes."""
    items = list(dataset_facts(card.get("dataset", "")).get("limitations", [])) + COMMON_LIMITATIONS
    if (card.get("trained_on") or {}).get("label_conflicts_in_training"):
        items.append("This model was trained **with** the label-conflict images (noisy labels included on purpose).")
    return items


def card_json(card: dict) -> str:
    """The card as stored in card.json (without the fields the zoo adds when listing)."""
    return json.dumps({k: v for k, v in (card or {}).items() if k not in RUNTIME_CARD_FIELDS}, indent=2) + "\n"
