"""A one-page PDF case report of one Diagnosis, made in memory (matplotlib's PDF backend, no network).

What a clinician or a student takes away from the Classify page: the image and its heatmap (method
named), the calibrated probabilities, the abstention and melanoma-alert verdicts with their thresholds
and what those thresholds did on the TEST split, the patient details, which model (id, sha256 of its
file, training date) and when, and the not-a-medical-device statement. The PDF is returned as bytes
and never written to the server's disk. pyplot is not used (its global state is not thread-safe in a
Streamlit server); text is embedded as TrueType (pdf.fonttype 42) so that it can be searched and copied.
"""
from __future__ import annotations

import datetime as dt
import io
import re
import textwrap
import threading
from pathlib import PurePath
from typing import Optional

import numpy as np
from PIL import Image

from .classes import display_name, is_concerning
from .constants import HEATMAP_OPACITY
from .diagnosis_result import Diagnosis, Heatmap

DISCLAIMER = ("Teaching and research demo — not a medical device. Do not use it to diagnose or to decide on "
              "treatment. A model can be confidently wrong; any worrying lesion needs a clinician.")
PAGE = (8.27, 11.69)                 # A4 portrait, inches
IMAGE_MAX_SIDE = 640                 # pixels of the upload embedded (keeps the PDF small)
WRAP = 118                           # characters per line at FONT_SIZE across the page
FONT_SIZE = 7.5
LINE = 0.0128                        # figure-fraction height of one text line
RED, BLUE, GREY = "#c0392b", "#2e86c1", "#555555"
_RC_LOCK = threading.Lock()          # rc_context changes process-wide settings: one report at a time


def report_filename(model_id: str, upload_name: str) -> str:
    """'case_report_<model>_<upload stem>.pdf', safe as a download name on any system."""
    stem = PurePath(str(upload_name or "").replace("\\", "/")).stem
    return f"case_report_{_safe(model_id, 'model')}_{_safe(stem, 'image')}.pdf"


def _safe(text: str, fallback: str, limit: int = 60) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._-")[:limit].strip("._-")
    return cleaned or fallback


# --------------------------------------------------------------------------------------------- the words


def _pct(value: Optional[float]) -> str:
    """71%, but thresholds under 10% keep one decimal (8.6%)."""
    if value is None:
        return "n/a"
    return f"{value:.1%}" if 0 < value < 0.1 else f"{value:.0%}"


def _ci(pair) -> str:
    return f"95% CI {_pct(pair[0])}–{_pct(pair[1])}" if pair and len(pair) == 2 else ""


def result_lines(d: Diagnosis) -> list[str]:
    """Top class, runner-up, malignant total, prediction set."""
    lines = [f"Most likely: {display_name(d.top)} ({_pct(d.top_probability)}). "
             f"Second: {display_name(d.runner_up)} ({_pct(d.runner_up_probability)}).",
             f"Malignant or pre-malignant classes together: {_pct(d.concerning_probability)}. "
             "Probabilities are calibrated on validation images (temperature scaling)."]
    if d.prediction_set is not None:
        lines.append(f"Conformal prediction set: {', '.join(display_name(c) for c in d.prediction_set)}. "
                     f"{d.prediction_set_note}".strip())
    return lines


def abstention_lines(d: Diagnosis) -> list[str]:
    """The abstention verdict, its threshold and what it did on test."""
    entry = d.card.get("abstention") or {}
    if d.abstains:
        verdict = (f"UNCERTAIN — refer to a clinician: the top probability {_pct(d.top_probability)} is below this "
                   f"model's abstention threshold of {_pct(d.abstention_threshold)}.")
    else:
        verdict = (f"Answered: the top probability {_pct(d.top_probability)} is at or above the abstention threshold "
                   f"of {_pct(d.abstention_threshold)}.")
    if entry.get("target_accuracy") is None:
        return [verdict, "This model has no validation-chosen abstention threshold; 50% is used."]
    test = entry.get("test") or {}
    figures = (f"The threshold was chosen on validation images so that the answers given are right at least "
               f"{_pct(entry['target_accuracy'])} of the time.")
    if test.get("coverage") is not None:
        figures += (f" On the test split the model answered {_pct(test['coverage'])} of images and was right on "
                    f"{_pct(test['accuracy'])} of those ({test.get('n', '?')} images).")
    return [verdict, figures]


def melanoma_lines(d: Diagnosis) -> list[str]:
    """The melanoma alert, its threshold and its test sensitivity and specificity."""
    point = d.card.get("melanoma_operating_point") or {}
    if d.melanoma_threshold is None or not point.get("test"):
        return ["This model has no melanoma alert threshold."] if d.melanoma_label is None else \
            [f"Melanoma probability {_pct(d.melanoma_probability)}; this model has no melanoma alert threshold."]
    state = "ON" if d.melanoma_alert else "off"
    test = point["test"]
    return [f"Melanoma alert {state}: melanoma probability {_pct(d.melanoma_probability)} is "
            f"{'at or above' if d.melanoma_alert else 'below'} the alert threshold of {_pct(d.melanoma_threshold)} "
            f"(set on validation to catch {_pct(point.get('target_sensitivity'))} of melanomas).",
            f"At this threshold on the test split: sensitivity {_pct(test['sensitivity'])} "
            f"({_ci(test.get('sensitivity_ci95'))}, {test.get('positives', '?')} melanomas), specificity "
            f"{_pct(test['specificity'])} ({_ci(test.get('specificity_ci95'))})."]


def gate_lines(d: Diagnosis) -> list[str]:
    """What the image-quality and not-dermoscopy checks said."""
    if d.quality is None:
        quality = f"Image quality: not checked ({d.quality_status})."
    elif d.quality.usable:
        quality = "Image quality: passed (sharp enough, well exposed, large enough)."
    else:
        quality = f"Image quality: REFUSED — {d.quality.message}"
    ood = d.not_dermoscopy
    if not ood.checked:
        dermoscopy = f"Dermoscopy check: not run ({ood.status}), so non-dermoscopy images are not refused."
    elif ood.rejected or d.refused_elsewhere:
        dermoscopy = "Dermoscopy check: REFUSED — the image does not look like a dermoscopy image."
    elif d.unlike_training:
        dermoscopy = f"Dermoscopy check: WARNING — {d.ood_warning}"
    else:
        dermoscopy = (f"Dermoscopy check: passed (score {ood.score:.2f}, refused above {ood.threshold:.2f}). "
                      f"{ood.how_decided}").strip()
    return [quality, dermoscopy]


def details_lines(d: Diagnosis) -> list[str]:
    """The patient details as given, and whether they were used."""
    details = d.details
    if details is None or not details.given:
        return ["None given: the result is from the image alone."]
    given = "; ".join(t for t in (f"age {details.age:.0f} years" if details.age is not None else "",
                                  f"sex {details.sex}" if details.sex else "",
                                  f"body site {details.site}" if details.site else "") if t)
    return [f"Given: {given}."] + ([d.details_note] if d.details_note else [])


def model_lines(d: Diagnosis) -> list[str]:
    """Which model, which file (sha256), trained when."""
    card = d.card
    trained = (card.get("trained_on") or {}).get("date", "unknown")
    headline = (card.get("headline") or {}).get("test_balanced_accuracy")
    lines = [f"Model: {card.get('display_name', d.model_id)}",
             f"Model id: {d.model_id}   Trained on: {trained}   Dataset: {card.get('dataset', '?')}   "
             f"Served by: {d.backend or '?'}",
             f"Version (sha256 of the model file): {d.model_sha256 or 'not recorded'}"]
    if headline is not None:
        lines.append(f"Test balanced accuracy (image alone): {_pct(headline)}."
                     + (" Test-time augmentation was used." if d.tta else "")
                     + (" Hair was removed before classifying (DullRazor)." if d.hair_removed else ""))
    return lines


def sections(d: Diagnosis) -> list[tuple[str, list[str]]]:
    """(heading, lines) of the report's text, in order; a refused image has no classification sections."""
    if d.refused:
        return [("Not classified", [d.refusal]), ("Safety checks", gate_lines(d)),
                ("Patient details", details_lines(d)), ("Model", model_lines(d))]
    return [("Result", result_lines(d)), ("Abstention", abstention_lines(d)), ("Melanoma alert", melanoma_lines(d)),
            ("Safety checks", gate_lines(d)), ("Patient details", details_lines(d)), ("Model", model_lines(d))]


# ------------------------------------------------------------------------------------------------ drawing


def _thumbnail(image: Image.Image) -> Image.Image:
    image = image.convert("RGB")
    if max(image.size) > IMAGE_MAX_SIDE:
        scale = IMAGE_MAX_SIDE / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.LANCZOS)
    return image


def _picture(fig, box, image: Optional[Image.Image], title: str) -> None:
    ax = fig.add_axes(box)
    ax.set_axis_off()
    if image is not None:
        ax.imshow(np.asarray(image))
    else:
        ax.text(0.5, 0.5, "not available", ha="center", va="center", color=GREY, fontsize=FONT_SIZE)
    ax.set_title("\n".join(textwrap.wrap(title, 64)), fontsize=FONT_SIZE + 0.5, loc="center")


def _probability_chart(fig, box, d: Diagnosis) -> None:
    """Horizontal bars, highest first; malignant / pre-malignant classes in red."""
    ranked = d.ranked()
    ax = fig.add_axes(box)
    names = [textwrap.shorten(display_name(c), 48, placeholder="…") for c, _ in ranked][::-1]
    values = [p for _, p in ranked][::-1]
    colours = [RED if is_concerning(c) else BLUE for c, _ in ranked][::-1]
    ax.barh(names, values, color=colours, height=0.6)
    for y, value in enumerate(values):
        ax.text(min(value, 0.88) + 0.01, y, f"{value:.1%}", va="center", fontsize=FONT_SIZE - 0.5)
    ax.set_xlim(0, 1)
    ax.tick_params(labelsize=FONT_SIZE - 0.5)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["0%", "25%", "50%", "75%", "100%"])
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title("Calibrated probabilities (red: malignant or pre-malignant)", fontsize=FONT_SIZE + 0.5, loc="left")


def _wrapped(blocks: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    return [(heading, [piece for line in lines for piece in (textwrap.wrap(line, WRAP) or [""])])
            for heading, lines in blocks]


def _text(fig, top: float, bottom: float, blocks: list[tuple[str, list[str]]]) -> None:
    """Headings and wrapped lines between top and bottom; lines and letters shrink when they would not fit."""
    blocks = _wrapped(blocks)
    units = sum(len(lines) for _, lines in blocks) + 1.75 * len(blocks)
    scale = min(1.0, (top - bottom) / (units * LINE))
    line, size, y = LINE * scale, FONT_SIZE * max(scale, 0.6), top
    for heading, lines in blocks:
        fig.text(0.06, y, heading, fontsize=size + 1.5, weight="bold")
        y -= line * 1.25
        for piece in lines:
            fig.text(0.06, y, piece, fontsize=size)
            y -= line
        y -= line * 0.5


def _draw(fig, d: Diagnosis, heat: Optional[Heatmap], upload_name: str, stamp: dt.datetime) -> None:
    from .overlay import render_overlay

    fig.text(0.06, 0.965, "Dermoscopy case report", fontsize=16, weight="bold")
    fig.text(0.06, 0.945, "Teaching and research demo — not a medical device", fontsize=10, color=RED, weight="bold")
    fig.text(0.06, 0.928, f"Image: {upload_name or d.name or 'upload'}     Generated: "
             f"{stamp.strftime('%Y-%m-%d %H:%M:%S %Z').strip()}", fontsize=FONT_SIZE, color=GREY)
    image = _thumbnail(d.image) if d.image is not None else None
    _picture(fig, [0.06, 0.69, 0.40, 0.20], image, "Image as uploaded")
    if d.refused:
        y = 0.675
    else:
        overlay = (render_overlay(image, heat.values, HEATMAP_OPACITY)
                   if heat is not None and image is not None else None)
        title = (f"Heatmap method: {heat.label}, where the model looked for {display_name(heat.target)}"
                 if heat is not None else "Heatmap: not computed")
        _picture(fig, [0.54, 0.69, 0.40, 0.20], overlay, title)
        height = 0.019 * len(d.classes)
        _probability_chart(fig, [0.40, 0.665 - height, 0.54, height], d)
        y = 0.665 - height - 0.035
    _text(fig, y, 0.075, sections(d))
    fig.text(0.06, 0.06, "\n".join(textwrap.wrap(DISCLAIMER, WRAP - 8)), fontsize=FONT_SIZE + 0.5,
             color=RED, weight="bold", va="top")


def case_report(d: Diagnosis, heat: Optional[Heatmap] = None, *, upload_name: str = "",
                timestamp: Optional[dt.datetime] = None) -> bytes:
    """The one-page PDF of a Diagnosis (refused images too: then the reason instead of a classification)."""
    import matplotlib
    from matplotlib.backends.backend_pdf import FigureCanvasPdf, PdfPages
    from matplotlib.figure import Figure

    stamp = timestamp or dt.datetime.now(dt.timezone.utc)
    buffer = io.BytesIO()
    with _RC_LOCK, matplotlib.rc_context({"pdf.fonttype": 42, "font.family": "DejaVu Sans"}):
        fig = Figure(figsize=PAGE)
        FigureCanvasPdf(fig)
        _draw(fig, d, heat, upload_name, stamp)
        metadata = {"Title": f"Dermoscopy case report — {d.model_id}", "Author": "DermLab (teaching demo)",
                    "Subject": DISCLAIMER, "Creator": "model_zoo.case_report", "CreationDate": stamp}
        with PdfPages(buffer, metadata=metadata) as pdf:
            pdf.savefig(fig)
    return buffer.getvalue()
