"""history.csv (one row per epoch, phase by phase) as the Evaluation page's training curves: long rows per
metric and set, where each phase starts, and which epoch's weights were kept.

Pure functions, no Streamlit.
"""
from __future__ import annotations

from typing import Optional, Sequence

from .formatting import is_number

HISTORY_SERIES = {
    "loss": ("Loss", "training"), "val_loss": ("Loss", "validation"),
    "accuracy": ("Accuracy", "training"), "val_accuracy": ("Accuracy", "validation"),
    "balanced_accuracy": ("Balanced accuracy", "training"),
    "val_balanced_accuracy": ("Balanced accuracy", "validation"),
}
PHASE_NAMES = {"head": "head only (backbone frozen)", "finetune": "fine-tuning", "full": "from scratch"}


def history_long(history: Sequence[dict]) -> list[dict]:
    """history.csv rows -> long rows Epoch / Phase / Metric ("Loss", "Accuracy", ...) / Set / Value."""
    out = []
    for row in history or []:
        epoch = row.get("epoch")
        if not is_number(epoch):
            continue
        for column, (metric, which) in HISTORY_SERIES.items():
            value = row.get(column)
            if is_number(value):
                out.append({"Epoch": int(epoch), "Phase": str(row.get("phase", "")), "Metric": metric,
                            "Set": which, "Value": float(value)})
    return out


def phase_starts(history: Sequence[dict]) -> list[dict]:
    """Where a new training phase begins after the first: [{"Epoch": 3.5, "Phase": "finetune"}]."""
    starts, previous = [], None
    for row in history or []:
        phase = str(row.get("phase", ""))
        if previous is not None and phase != previous and is_number(row.get("epoch")):
            starts.append({"Epoch": float(row["epoch"]) - 0.5, "Phase": phase})
        previous = phase
    return starts


def best_epoch(history: Sequence[dict], best: Optional[dict]) -> Optional[int]:
    """The global epoch (history.csv numbering) of metrics.json's "best_epoch" {"phase", "epoch" (within phase)}."""
    if not best or not history:
        return None
    seen: dict = {}
    for row in history:
        phase = str(row.get("phase", ""))
        seen[phase] = seen.get(phase, 0) + 1
        if phase == str(best.get("phase")) and seen[phase] == best.get("epoch") and is_number(row.get("epoch")):
            return int(row["epoch"])
    return None
