"""Batch results as a table: one row per image (or unreadable item) with the same columns for all, and the
CSV a user downloads.

Kept apart from the diagnosis path: the table only reads finished results (model_zoo.diagnosis_result).
"""
from __future__ import annotations

import csv
import io
from typing import Optional, Sequence, Union

from .classes import display_name
from .diagnosis_result import Diagnosis, ItemError


def batch_row(result: Union[Diagnosis, ItemError], classes: Sequence[str] = ()) -> dict:
    """One row of the batch table / CSV: the verdicts, the answer, every class probability, the model."""
    row = {"file": result.name, "status": "error", "prediction": "", "probability": None, "second": "",
           "second_probability": None, "malignant_or_premalignant": None, "uncertain_refer": None,
           "melanoma_probability": None, "melanoma_alert": None, "not_dermoscopy": None, "unlike_training": None,
           "refer": None, "warning": "", "ood_score": None, "quality_ok": None, "quality_flags": "", "prediction_set": "",
           "patient_details": "", "reason": ""}
    row.update({f"p_{c}": None for c in classes})
    if isinstance(result, ItemError):
        row.update(reason=result.message)
        return {**row, "model_id": result.model_id, "model_sha256": result.model_sha256}
    d = result
    row.update(status="refused" if d.refused else "classified", reason=d.refusal,
               not_dermoscopy=_not_dermoscopy_flag(d), ood_score=_round(d.not_dermoscopy.score),
               unlike_training=d.unlike_training if d.not_dermoscopy.checked and not d.refused else None,
               refer=d.refer, warning=d.ood_warning,
               quality_ok=None if d.quality is None else d.quality.usable,
               quality_flags=" ".join(d.quality.flags) if d.quality is not None else "")
    if d.probabilities is not None:
        row.update(prediction=display_name(d.top), probability=_round(d.top_probability),
                   second=display_name(d.runner_up), second_probability=_round(d.runner_up_probability),
                   malignant_or_premalignant=_round(d.concerning_probability), uncertain_refer=d.abstains,
                   melanoma_probability=_round(d.melanoma_probability), melanoma_alert=d.melanoma_alert,
                   prediction_set=" | ".join(display_name(c) for c in d.prediction_set or []),
                   patient_details=d.details_variant or "")
        row.update({f"p_{c}": _round(float(p)) for c, p in zip(d.classes, d.probabilities)})
    return {**row, "model_id": d.model_id, "model_sha256": d.model_sha256}


def _not_dermoscopy_flag(d: Diagnosis) -> Optional[bool]:
    """True / False, or None when no detector looked at the image."""
    if d.refused_elsewhere or d.not_dermoscopy.rejected:
        return True
    return False if d.not_dermoscopy.checked else None


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(float(value), 4)


def batch_table(results: Sequence[Union[Diagnosis, ItemError]]) -> list[dict]:
    """Rows for every result, all with the same columns (one per class of the model, p_<label>)."""
    classes = next((r.classes for r in results if isinstance(r, Diagnosis)), [])
    return [batch_row(r, classes) for r in results]


def batch_csv(results: Sequence[Union[Diagnosis, ItemError]]) -> str:
    """The batch table as CSV text (empty cells for what does not apply)."""
    rows = batch_table(results)
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()
