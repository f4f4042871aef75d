"""Shaping metrics.json["external"] (written by `python -m trainer external`) into rows and sentences for the
Evaluation page's "Another clinic (PH²)" view and the model cards.

The figures were measured once, through the app's own diagnosis path, on PH² (Pedro Hispano Hospital, another
clinic and dermatoscope); nothing here recomputes them. Pure functions, no Streamlit and no TensorFlow.
"""
from __future__ import annotations

from typing import Mapping, Optional

from .formatting import pct

DATASET = "ph2"
NAME = "PH²"
SOURCE = ("PH² (Pedro Hispano Hospital, Matosinhos, Portugal): 200 dermoscopy images taken with another "
          "dermatoscope (Tuebinger Mole Analyzer, 20x), with a round field of view and dark corners, labelled "
          "common nevus, atypical nevus or melanoma by expert dermatologists. Used only as an external test: no "
          "model, threshold or setting was chosen with it.")
OUTCOME_NAMES = {"in_distribution": "classified", "unlike_training": "classified with the 'unlike training' warning",
                 "not_dermoscopy": "refused as not dermoscopy", "quality": "refused for image quality"}
MISSING = "not measured"


def external_figures(metrics: Optional[Mapping], dataset: str = DATASET) -> Optional[dict]:
    """metrics.json["external"][dataset] when it was measured, else None."""
    entry = ((metrics or {}).get("external") or {}).get(dataset)
    return entry if isinstance(entry, dict) and entry.get("all_images") else None


def applies(card: Mapping) -> bool:
    """PH² is labelled melanoma / nevus in HAM10000's codes: the view is for models that have both classes."""
    classes = card.get("classes") or []
    return "mel" in classes and "nv" in classes


def compute_command(model_id: str) -> str:
    return f"python -m trainer external {model_id}"


def auc_text(value, ci=None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f} (95% CI {ci[0]:.2f}–{ci[1]:.2f})" if ci else f"{value:.2f}"


def _share_text(value, ci=None) -> str:
    if value is None:
        return "n/a"
    return f"{pct(value)} ({pct(ci[0])[:-1]}–{pct(ci[1])})" if ci else pct(value)


def _alert_cell(figures: Mapping, key: str) -> str:
    alert = figures.get("alert") or {}
    if key == "sensitivity":
        caught = f" — {alert.get('caught', '?')} of {figures.get('melanomas', '?')}" if alert else ""
        return _share_text(alert.get("sensitivity"), alert.get("sensitivity_ci95")) + caught
    return _share_text(alert.get("specificity"), alert.get("specificity_ci95"))


def headline_rows(ext: Mapping) -> list[dict]:
    """Figure | HAM10000 test (melanomas and nevi) | PH², every image | PH², as the app serves it."""
    columns = (("HAM10000 test (melanomas and nevi)", ext.get("internal_reference") or {}),
               (f"{NAME}, every image (gates aside)", ext["all_images"]),
               (f"{NAME}, as the app serves it", ext.get("as_served") or {}))
    rows = []
    for label, cell in (("Images (melanomas)", lambda f: f"{f.get('n', '?')} ({f.get('melanomas', '?')})" if f else MISSING),
                        ("Melanoma vs nevus AUROC", lambda f: auc_text(f.get("melanoma_auroc"), f.get("melanoma_auroc_ci95"))
                         if f else MISSING),
                        ("Melanoma alert: sensitivity", lambda f: _alert_cell(f, "sensitivity") if f else MISSING),
                        ("Melanoma alert: specificity", lambda f: _alert_cell(f, "specificity") if f else MISSING),
                        ("Top answer 'melanoma' for melanomas", lambda f: pct((f.get("recall") or {}).get("mel"))
                         if f else MISSING),
                        ("Top answer 'nevus' for nevi", lambda f: pct((f.get("recall") or {}).get("nv")) if f else MISSING)):
        rows.append({"Figure": label, **{name: cell(figures) for name, figures in columns}})
    return rows


def gate_rows(ext: Mapping) -> list[dict]:
    """One row per PH² diagnosis: what the dermoscopy check and the quality gate did, and alerts among the warned."""
    rows = []
    for group, row in (ext.get("gate") or {}).get("by_group", {}).items():
        rows.append({"Diagnosis": group, "Images": row["n"], "Classified": row["in_distribution"],
                     "Classified with warning": row["unlike_training"],
                     "…of which melanoma alert": row.get("alert_when_unlike", 0),
                     "Refused: not dermoscopy": row["not_dermoscopy"], "Refused: image quality": row["quality"]})
    return rows


def melanoma_sentence(ext: Mapping) -> str:
    """Which message PH²'s melanomas get, in one sentence."""
    row = ((ext.get("gate") or {}).get("by_group") or {}).get("melanoma")
    if not row:
        return ""
    served = ext.get("alert_all_melanomas_as_served") or {}
    return (f"Of {NAME}'s {row['n']} melanomas, {row['in_distribution']} are classified as usual, "
            f"{row['unlike_training']} carry the warning that the image is unlike this model's training images "
            f"({row.get('alert_when_unlike', 0)} of those with the melanoma alert, and all advised to see a clinician), "
            f"{row['not_dermoscopy']} are refused as not dermoscopy and {row['quality']} for image quality. In all, "
            f"the alert is raised for {served.get('caught', '?')} of the {served.get('melanomas', '?')} melanomas as "
            "the app serves them.")


def abstention_sentence(ext: Mapping) -> str:
    entry = ext.get("abstention") or {}
    if entry.get("coverage") is None:
        return ""
    return (f"Of the {entry['classified']} images the app classifies, the model answers {pct(entry['coverage'])} "
            f"confidently (the rest: 'uncertain, refer'); those answers are right {pct(entry.get('accuracy'))} of the "
            f"time. {pct(entry.get('refer_share'))} of classified images carry the advice to see a clinician "
            "(uncertain, or unlike the training images).")


def crop_sentence(metrics: Optional[Mapping]) -> str:
    """The field-of-view crop measured once on PH² at inference, when it was."""
    crop = external_figures(metrics, f"{DATASET}+fov_crop")
    plain = external_figures(metrics, DATASET)
    if not crop or not plain:
        return ""
    return (f"Cutting each image to the dermatoscope's round field of view before the model ({crop['fov_cropped_images']} "
            f"of {crop['n']} images had one) gives AUROC {auc_text(crop['all_images']['melanoma_auroc'])} instead of "
            f"{auc_text(plain['all_images']['melanoma_auroc'])}; it is off, because it did not help on HAM10000 "
            "validation (the only basis for that choice; docs/experiments.md).")


def card_sentence(ext: Mapping) -> str:
    """The model card's external line, set beside the internal figures."""
    every, internal = ext["all_images"], ext.get("internal_reference") or {}
    alert, internal_alert = every.get("alert") or {}, internal.get("alert") or {}
    text = (f"**Another clinic ({NAME}, {every['n']} images, {every['melanomas']} melanomas):** melanoma-vs-nevus "
            f"AUROC **{auc_text(every.get('melanoma_auroc'), every.get('melanoma_auroc_ci95'))}**")
    if internal:
        text += f" against {auc_text(internal.get('melanoma_auroc'))} on HAM10000's test melanomas and nevi"
    if alert:
        text += (f"; the melanoma alert caught {alert['caught']} of {every['melanomas']} melanomas "
                 f"({pct(alert['sensitivity'])}) at specificity {pct(alert['specificity'])}")
        if internal_alert:
            text += (f" (HAM10000 test: {pct(internal_alert['sensitivity'])} and "
                     f"{pct(internal_alert['specificity'])})")
    gate = ext.get("gate") or {}
    return (text + f". The dermoscopy check refuses {pct(gate.get('refused_not_dermoscopy'), 1)} of its images and "
            f"classifies {pct(gate.get('warned_unlike_training'), 1)} with the 'unlike training' warning.")
