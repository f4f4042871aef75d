"""The clinic workflow around model_zoo.diagnosis, for the pages: a batch run in chunks (so a page can show
progress), per-case PDF reports zipped in memory, the conformal set put into words, the stated limits, and
Compare's rows and refusal.

No Streamlit and no TensorFlow here; nothing is written to disk.
"""
from __future__ import annotations

import io
import itertools
import zipfile
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Optional, Sequence, Union

from .case_report import case_report, report_filename
from .classes import display_name
from .batch_export import batch_table
from .diagnosis import BATCH_CHUNK, diagnose_batch
from .diagnosis_result import NOT_DERMOSCOPY, Diagnosis, ItemError
from .preprocessing import ImageError, load_image
from .uploads import MAX_BATCH_FILES, MAX_ZIP_TOTAL, Item

Result = Union[Diagnosis, ItemError]
Progress = Callable[[int, int], None]          # (done, total)


# --------------------------------------------------------------------------------------------------- batches


def limits_sentence(max_upload_mb: int) -> str:
    """The batch limits, stated before the upload rather than discovered after it."""
    return (f"Limits: up to {MAX_BATCH_FILES} images per batch (and per zip); each file or zip at most "
            f"{max_upload_mb} MB; at most {MAX_ZIP_TOTAL // (1024 * 1024)} MB of images read from one zip. "
            "Images beyond these are listed as skipped.")


def diagnose_in_chunks(model, items: Iterable[Item], *, total: int, chunk: int = BATCH_CHUNK,
                       progress: Optional[Progress] = None, **options) -> list[Result]:
    """diagnose_batch over `items`, `chunk` at a time, calling progress(done, total) after each chunk.

    The same results as one diagnose_batch call (each chunk is one forward pass there too); only the
    waiting is made visible. `options` go to diagnose_batch (metrics, tta, hair).
    """
    results: list[Result] = []
    stream = iter(items)
    while batch := list(itertools.islice(stream, chunk)):
        results += diagnose_batch(model, batch, chunk=chunk, **options)
        if progress is not None:
            progress(len(results), max(total, len(results)))
    return results


def outcome(result: Result) -> str:
    """A batch row's outcome in a few words, so the page's table says why a row has no answer."""
    if isinstance(result, ItemError):
        return f"not read: {result.message}"
    if result.refusal_kind == "quality":
        return "refused: image quality (" + ", ".join(result.quality.flags) + ")"
    said = verdict(result)
    return "classified" if said == "answers" else said


def batch_view(results: Sequence[Result]) -> list[dict]:
    """The page's batch table: the outcome and the answer (the CSV, batch_csv, has every column)."""
    rows = []
    for result, row in zip(results, batch_table(results)):
        rows.append({"file": row["file"], "outcome": outcome(result), "prediction": row["prediction"],
                     "probability": row["probability"], "melanoma alert": row["melanoma_alert"],
                     "malignant or pre-malignant": row["malignant_or_premalignant"],
                     "cannot rule out": row["prediction_set"], "second": row["second"]})
    return rows


def batch_summary(results: Sequence[Result]) -> str:
    """'12 classified (2 uncertain, 1 melanoma alert), 1 refused, 1 could not be read.'"""
    diagnoses = [r for r in results if isinstance(r, Diagnosis)]
    classified = [d for d in diagnoses if not d.refused]
    uncertain = sum(bool(d.refer) for d in classified)
    alerts = sum(bool(d.melanoma_alert) for d in classified)
    refused = len(diagnoses) - len(classified)
    return (f"{len(classified)} classified ({uncertain} uncertain — refer, {alerts} melanoma alert(s)), "
            f"{refused} refused (not dermoscopy or poor image quality), "
            f"{len(results) - len(diagnoses)} could not be read or were skipped.")


# ----------------------------------------------------------------------------------------------- the gates


def quality_how_decided() -> str:
    """How the image-quality gate decides, with the share of real test images it flagged (from its thresholds
    file), for the caption under a quality refusal; "" when the file is missing."""
    from .quality import THRESHOLDS_FILE
    from .store import read_json

    try:
        record = read_json(THRESHOLDS_FILE)
    except (OSError, ValueError):
        return ""
    share = (record.get("test") or {}).get("all", {}).get("share")
    tested = f" On test, it flagged {share:.1%} of real dermoscopy images." if share is not None else ""
    return ("How this is decided: the image's sharpness (in its sharpest part), brightness, clipped dark and white "
            "areas and size are measured, with limits chosen on validation images so that very few usable images "
            f"are refused.{tested}")


# --------------------------------------------------------------------------------------------------- reports


def reports_zip(results: Sequence[Result], items: Iterable[Item], *, progress: Optional[Progress] = None) -> bytes:
    """A zip of one case report per classified or refused row, built in memory (never on the server's disk).

    `items` are the batch's items again, in the same order as `results` (batch results keep no images, so
    each image is decoded again here, one at a time). Rows that could not be read get no report. Heatmaps
    are left out: a batch report is a record of the answer, not an explanation of it.
    """
    buffer = io.BytesIO()
    todo = sum(isinstance(r, Diagnosis) for r in results)
    done, names = 0, set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for result, (name, data, _) in zip(results, items):
            if not isinstance(result, Diagnosis):
                continue
            archive.writestr(_unique(batch_report_name(result.model_id, name), names), case_report(
                _with_image(result, data), upload_name=name))
            done += 1
            if progress is not None:
                progress(done, todo)
    return buffer.getvalue()


def batch_report_name(model_id: str, row_name: str) -> str:
    """report_filename of a batch row; a zip entry's folders are kept in the name (set.zip/a/x.jpg ->
    ..._set.zip_a_x.pdf), so an image in a zip and a loose upload of the same name get different reports."""
    return report_filename(model_id, row_name.replace("\\", "/").replace("/", "_"))


def _with_image(result: Diagnosis, data: Optional[bytes]) -> Diagnosis:
    """The diagnosis with its upright image attached again, for the report's picture (none if unreadable)."""
    try:
        return replace(result, image=load_image(data)) if data is not None else result
    except ImageError:
        return result


def _unique(file_name: str, taken: set[str]) -> str:
    """The name, or name_2.pdf, name_3.pdf ...: two uploads may share a stem (a.jpg and a.png)."""
    stem, suffix = file_name.rsplit(".", 1)
    candidate = file_name
    for number in itertools.count(2):
        if candidate not in taken:
            break
        candidate = f"{stem}_{number}.{suffix}"
    taken.add(candidate)
    return candidate


# -------------------------------------------------------------------------------------------- conformal set


@dataclass(frozen=True)
class ConformalView:
    """The conformal prediction set in words: what it holds, at what coverage, and any caution."""

    labels: list[str]
    coverage: Optional[float]
    note: str
    warning: str

    @property
    def heading(self) -> str:
        at = f" at {self.coverage:.0%} coverage" if self.coverage is not None else ""
        return f"Diagnoses the model cannot rule out{at}"


def conformal_view(d: Diagnosis) -> Optional[ConformalView]:
    """None when the diagnosis has no set (refused, details-fused, or no fit for the model)."""
    if d.prediction_set is None:
        return None
    entry = _conformal_entry(d.metrics)
    note, _, caution = d.prediction_set_note.partition(" Caution: ")
    return ConformalView(list(d.prediction_set), entry.get("target_coverage"), note, caution or entry.get("warning", ""))


def _conformal_entry(metrics: dict) -> dict:
    try:
        from .conformal import conformal_entry

        return dict(conformal_entry(metrics))
    except (ImportError, KeyError):
        return {}



# ------------------------------------------------------------------------------------------------- compare


def verdict(d: Diagnosis) -> str:
    """One model's outcome in a few words, for its row in Compare."""
    if d.refusal_kind == "quality":
        return "refused: image quality"
    if d.refusal_kind == "not_dermoscopy":
        return "refused: not a dermoscopy image"
    if d.abstains:
        return "uncertain: refer to a clinician (abstains)"
    if d.unlike_training:
        return "answers, with a warning: unlike its training images (another device or clinic?); refer"
    return "answers"


def compare_row(d: Diagnosis, card: dict) -> dict:
    """One model's row: its verdict, and its answer only where it gave one."""
    answered = not d.refused
    return {
        "model": card.get("display_name", d.model_id),
        "prediction": display_name(d.top) if answered else "",
        "probability": d.top_probability if answered else None,
        "verdict": verdict(d),
        "melanoma alert": ("ALERT" if d.melanoma_alert else "no") if answered and d.melanoma_alert is not None else "",
        "cannot rule out": ", ".join(display_name(c) for c in d.prediction_set or []) if answered else "",
        "second choice": f"{display_name(d.runner_up)} ({d.runner_up_probability:.0%})" if answered else "",
        "malignant or pre-malignant": d.concerning_probability if answered else None,
        "test balanced accuracy": (card.get("headline") or {}).get("test_balanced_accuracy"),
    }


def compare_refusal(diagnoses: Sequence[Diagnosis]) -> str:
    """Why no model classified the image, naming the models whose not-dermoscopy check refused it."""
    first = diagnoses[0]
    refusing = [d.model_id for d in diagnoses if d.not_dermoscopy.rejected]
    if first.refusal_kind == "quality" or not refusing:
        return first.refusal
    return (f"{NOT_DERMOSCOPY} Refused by the not-dermoscopy check of {', '.join(refusing)}; when one model's check "
            "refuses an image, no model classifies it.")


def refusing_how_decided(diagnoses: Sequence[Diagnosis]) -> str:
    """How the (first) refusing detector decides, from its model's card."""
    return next((d.not_dermoscopy.how_decided for d in diagnoses if d.not_dermoscopy.rejected), "")


def compare_caption(diagnoses: Sequence[Diagnosis]) -> str:
    """What the 'cannot rule out' column is, at the coverage the models' sets were fitted for."""
    coverages = sorted({v.coverage for v in map(conformal_view, diagnoses) if v is not None and v.coverage})
    at = f" at {' or '.join(f'{c:.0%}' for c in coverages)} coverage" if coverages else ""
    return (f"'cannot rule out': each model's conformal prediction set, the diagnoses it cannot rule out{at} "
            "(fitted on validation; see Evaluation). An abstaining model's answer is shown for teaching only.")
