"""How a model was trained, read back from its card: the recorded settings in words, the
`python -m trainer ...` command that repeats the run, and the Train page's recipe table row.

A card records the trainer's whole configuration (card["training"]["config"]); these functions only read it.
"""
from __future__ import annotations

import shlex

from .formatting import dataset_label, fmt_value, human_seconds

TRAINING_KEYS = {
    "architecture": "Architecture", "input_size": "Input size (px)", "batch_size": "Batch size",
    "head_epochs": "Head epochs (frozen backbone)", "epochs": "Epochs (fine-tuning / from scratch)",
    "learning_rate": "Learning rate", "fine_tune_learning_rate": "Fine-tune learning rate",
    "fine_tune_fraction": "Unfrozen share of backbone", "lr_schedule": "LR schedule",
    "label_smoothing": "Label smoothing", "augment": "Augmentation", "balance": "Class balancing",
    "early_stopping_patience": "Early-stopping patience", "imagenet_weights": "ImageNet weights option",
    "include_label_conflicts": "Label-conflict images used", "limit_per_class": "Limit per class",
    "mixed_precision": "Mixed precision", "loss": "Loss", "focal_gamma": "Focal gamma", "mix": "Batch mixing",
    "hair": "Share of images given drawn hair",
    "color_constancy": "Colour constancy", "extra_train": "Extra training data", "seed": "Seed",
    "exclude_lesions_of": "Lesions left out (held out by)", "init_from": "Backbone started from",
}
CLI_FLAGS = [  # (config key, CLI flag); booleans become bare flags
    ("model_id", "--model-id"), ("input_size", "--input-size"), ("batch_size", "--batch-size"),
    ("head_epochs", "--head-epochs"), ("epochs", "--epochs"), ("learning_rate", "--learning-rate"),
    ("fine_tune_learning_rate", "--fine-tune-learning-rate"), ("fine_tune_fraction", "--fine-tune-fraction"),
    ("lr_schedule", "--lr-schedule"), ("warmup_epochs", "--warmup-epochs"), ("weight_decay", "--weight-decay"),
    ("label_smoothing", "--label-smoothing"), ("dropout", "--dropout"), ("dense_units", "--dense-units"),
    ("augment", "--augment"), ("balance", "--balance"), ("early_stopping_patience", "--early-stopping-patience"),
    ("limit_per_class", "--limit-per-class"), ("seed", "--seed"), ("bootstrap", "--bootstrap"),
    ("include_label_conflicts", "--include-label-conflicts"), ("mixed_precision", "--mixed-precision"),
    ("loss", "--loss"), ("focal_gamma", "--focal-gamma"), ("mix", "--mix"), ("hair", "--hair"),
    ("device_shift", "--device-shift"), ("fov_crop", "--fov-crop"), ("color_constancy", "--color-constancy"),
    ("extra_train", "--extra-train"), ("extra_per_class", "--extra-per-class"), ("max_minutes", "--max-minutes"),
    ("exclude_lesions_of", "--exclude-lesions-of"), ("init_from", "--init-from"),
]
QUIET_VALUES = {"loss": "crossentropy", "mix": "none", "hair": 0.0,   # the defaults of options most runs never touch
                "device_shift": 0.0}


def training_config(card: dict) -> dict:
    """A copy of the training configuration recorded in a card ({} when there is none)."""
    return dict(((card or {}).get("training") or {}).get("config") or {})


def training_summary(card: dict) -> dict:
    """The key training settings of a card as {label: value} (only those recorded)."""
    config = training_config(card)
    return {label: config[key] for key, label in TRAINING_KEYS.items() if key in config and config[key] is not None}


def _flag_value(config: dict, key: str):
    """The value to print for `key`, or None when the flag is left out (unset, off, or a quiet default)."""
    value = config.get(key)
    if value is None or value is False or QUIET_VALUES.get(key) == value:
        return None
    if key == "focal_gamma" and config.get("loss") != "focal":
        return None
    return value


def train_command(card: dict) -> str:
    """A `python -m trainer train ...` command that repeats the card's recorded configuration ("" for a quick
    custom model: the app fits those, see its card's notes)."""
    config = training_config(card)
    if card.get("kind") == "linear_head":
        return ""
    if config.get("architecture") == "ensemble" and config.get("members"):
        name = f" --display-name {shlex.quote(str(card['display_name']))}" if card.get("display_name") else ""
        return f"python -m trainer ensemble {','.join(config['members'])} --model-id {card.get('id')}{name}"
    if not config.get("model_id") and card.get("id"):
        config["model_id"] = card["id"]             # publish to the same zoo folder
    arch = config.get("architecture") or card.get("architecture")
    dataset = config.get("dataset") or card.get("dataset")
    if not arch or not dataset:
        return ""
    parts = ["python -m trainer train", f"-a {arch}", f"-d {dataset}"]
    if config.get("display_name"):
        parts.append(f"--display-name {shlex.quote(str(config['display_name']))}")
    if config.get("imagenet_weights") in ("none", "imagenet"):
        parts.append(f"--imagenet-weights {config['imagenet_weights']}")
    for key, flag in CLI_FLAGS:
        value = _flag_value(config, key)
        if value is None:
            continue
        parts.append(flag if value is True else f"{flag} {value}")
    lines, line = [], ""
    for part in parts:                       # wrap for display
        if line and len(line) + len(part) > 90:
            lines.append(line + " \\")
            line = "  " + part
        else:
            line = f"{line} {part}" if line else part
    lines.append(line)
    return "\n".join(lines)


def recipe_row(card: dict) -> dict:
    """One row of the training-recipe table of the Train page."""
    config = training_config(card)
    training = card.get("training") or {}

    def get(key):
        value = config.get(key)
        return "—" if value is None else fmt_value(value)

    pretrained = str(card.get("pretrained") or "")
    members = len(card.get("members") or [])
    per_member = f"each of the {members} members' own" if members else None
    return {
        "Model": card.get("display_name") or card.get("id"),
        "Dataset": dataset_label(card.get("dataset", "")),
        "Input (px)": get("input_size"),
        "Epochs (head + main)": per_member or (f"{get('head_epochs')} + {get('epochs')}"
                                               if pretrained and "scratch" not in pretrained.lower() else get("epochs")),
        "Learning rate (fine-tune)": per_member or f"{get('learning_rate')} ({get('fine_tune_learning_rate')})",
        "Augmentation": per_member or get("augment"),
        "Balance": per_member or get("balance"),
        "Training time": human_seconds(training.get("seconds")),
        "Hardware": training.get("hardware") or "n/a",
        "Status": card.get("status", "ok"),
    }
