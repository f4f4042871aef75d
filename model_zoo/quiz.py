"""Teaching mode: a seeded quiz of cases, the student's and the model's answers, and their scores.

No Streamlit here: the Quiz page keeps the answers in the browser session and calls these functions.
A quiz is drawn from a list of cases (model_zoo.examples) with a seed, so one link (`?seed=N`) gives a
whole class the same cases in the same order. Scores use scikit-learn.

    >>> picks = draw(cases, 10, seed=7)
    >>> answers.append(Answer(case.id, case.label, "mel", SUSPICIOUS, model_view))
    >>> score(answers, "student")["balanced_accuracy"]
"""
from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Iterable, Optional, Sequence

import numpy as np

from .classes import display_name, is_concerning
from .constants import MELANOMA_LABELS
from .examples import Case

QUIZ_SIZE = 10
MAX_QUIZ_SIZE = 50
BENIGN = "benign: reassure or follow up"
SUSPICIOUS = "suspicious: refer or excise"
CALLS = (BENIGN, SUSPICIOUS)
NOTES_FILE = Path(__file__).resolve().parent.parent / "assets" / "teaching_notes.json"
LABELS_CSV = "labels.csv"
MAX_ZIP_CASES = 100


@dataclass(frozen=True)
class ModelView:
    """What the model said about a case, through the app's one diagnosis path."""
    top: Optional[str]                 # None when the image was refused (not dermoscopy, unusable quality)
    abstained: bool = False
    melanoma_alert: bool = False
    refused: str = ""                  # why it gave no answer, when it gave none

    @property
    def call(self) -> str:
        """The model's management call: suspicious when it raises the alert, abstains, refuses, or names a
        malignant or pre-malignant class (an uncertain model refers, as a cautious clinician would)."""
        if self.top is None or self.abstained or self.melanoma_alert or is_concerning(self.top):
            return SUSPICIOUS
        return BENIGN


@dataclass(frozen=True)
class Answer:
    """One case: the truth, the student's two answers and the model's view."""
    case_id: str
    truth: str
    diagnosis: str
    call: str
    model: ModelView


# ------------------------------------------------------------------------------------------------ drawing
def draw(cases: Sequence[Case], n: int, seed: int) -> list[Case]:
    """`n` cases drawn without replacement by `seed`; the same cases and order for the same list and seed."""
    pool = sorted(cases, key=lambda case: case.id)
    n = max(0, min(int(n), len(pool)))
    order = np.random.default_rng(int(seed)).permutation(len(pool))[:n]
    return [pool[i] for i in order]


def hard_cases(cases: Iterable[Case], predicted: dict[str, str]) -> list[Case]:
    """The cases the model gets wrong; `predicted` maps image id -> the model's top class."""
    return [case for case in cases if case.image_id in predicted and predicted[case.image_id] != case.label]


# ------------------------------------------------------------------------------------------------ scoring
def _is_melanoma(label: Optional[str]) -> bool:
    return label in MELANOMA_LABELS


def score(answers: Sequence[Answer], who: str) -> dict:
    """Accuracy, balanced accuracy (mean recall over the true classes present), melanoma sensitivity
    (melanomas named melanoma) and malignant sensitivity (malignant or pre-malignant cases called
    suspicious), for "student" or "model" on the same cases. None where the cases hold no such lesion."""
    if who not in ("student", "model"):
        raise ValueError("who is 'student' or 'model'")
    if not answers:
        return {"cases": 0, "accuracy": None, "balanced_accuracy": None, "melanoma_sensitivity": None,
                "malignant_sensitivity": None}
    truth = [a.truth for a in answers]
    said = [a.diagnosis if who == "student" else (a.model.top or "no answer") for a in answers]
    calls = [a.call if who == "student" else a.model.call for a in answers]
    melanomas = [s for t, s in zip(truth, said) if _is_melanoma(t)]
    malignant = [c for t, c in zip(truth, calls) if is_concerning(t)]
    # balanced accuracy = the mean recall over the true classes present (scikit-learn's definition; computed here
    # because importing scikit-learn costs the serving process about 50 MB)
    balanced = float(np.mean([np.mean([s == t for tt, s in zip(truth, said) if tt == t]) for t in sorted(set(truth))]))
    return {
        "cases": len(answers),
        "accuracy": float(np.mean([t == s for t, s in zip(truth, said)])),
        "balanced_accuracy": balanced,
        "melanoma_sensitivity": float(np.mean([_is_melanoma(s) for s in melanomas])) if melanomas else None,
        "malignant_sensitivity": float(np.mean([c == SUSPICIOUS for c in malignant])) if malignant else None,
    }


def confusion(answers: Sequence[Answer], classes: Sequence[str]):
    """The student's answers as a small confusion table (rows: truth, columns: answer), plain-language names."""
    import pandas as pd

    names = [display_name(c) for c in classes]
    table = pd.DataFrame(0, index=pd.Index(names, name="true diagnosis"), columns=names)
    for answer in answers:
        table.loc[display_name(answer.truth), display_name(answer.diagnosis)] += 1
    shown = [name for name in names if table.loc[name].sum() or table[name].sum()]
    return table.loc[shown, shown]


def missed(answers: Sequence[Answer]) -> list[Answer]:
    """Cases where the student's diagnosis was wrong."""
    return [a for a in answers if a.diagnosis != a.truth]


def answers_csv(answers: Sequence[Answer], seed: int) -> str:
    """The answers as CSV, one row per case, for the student to keep (nothing is stored on the server)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["seed", "case", "true_diagnosis", "your_diagnosis", "your_call", "correct",
                     "model_diagnosis", "model_call", "model_abstained", "model_melanoma_alert", "model_refused"])
    for a in answers:
        writer.writerow([seed, a.case_id, display_name(a.truth), display_name(a.diagnosis), a.call,
                         a.diagnosis == a.truth, display_name(a.model.top) if a.model.top else "",
                         a.model.call, a.model.abstained, a.model.melanoma_alert, a.model.refused])
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ teaching notes
@lru_cache(maxsize=1)
def _notes() -> dict:
    return json.loads(NOTES_FILE.read_text(encoding="utf-8"))


def teaching_note(label: str) -> Optional[dict]:
    """{"features", "look_alikes", "methods"} for a class (both datasets' labels), or None for an unknown one."""
    key = _notes()["_labels"].get(label)
    return dict(_notes()[key]) if key else None


def method_description(method: str) -> str:
    return _notes()["_methods"].get(method, "")


# ------------------------------------------------------------------------------------- instructor's cases
class QuizUploadError(ValueError):
    """The instructor's zip cannot be used at all; the message says why."""


def _csv_rows(data: bytes) -> list[dict]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise QuizUploadError(f"{LABELS_CSV} is not UTF-8 text.") from exc
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.strip().lower() for c in reader.fieldnames or []}
    if not {"file", "label"} <= columns:
        raise QuizUploadError(f"{LABELS_CSV} needs the columns 'file' and 'label' (optional: age, sex, site); "
                              f"it has: {', '.join(sorted(columns)) or 'none'}.")
    return [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader]


def _age(text: str) -> tuple[Optional[float], str]:
    if not text:
        return None, ""
    try:
        age = float(text)
    except ValueError:
        return None, f"age {text!r} is not a number; ignored"
    return (age, "") if 0 <= age <= 120 else (None, f"age {age:g} is out of range; ignored")


def read_instructor_zip(data: bytes, dataset: str, classes: Sequence[str],
                        limit: int = MAX_ZIP_CASES) -> tuple[list[Case], list[str]]:
    """(cases held in memory, one message per bad row) from a zip of images plus labels.csv.

    Nothing is extracted to disk. A row is refused with a clear message when its file is missing, climbs out of
    the zip's folder, is not a usable image, or its label is not one of the model's classes. Raises
    QuizUploadError when the zip itself or its labels.csv is unusable.
    """
    from .preprocessing import MAX_BYTES, ImageError, load_image

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise QuizUploadError("This is not a zip file, or it is damaged.") from exc
    entries = {info.filename: info for info in archive.infolist() if not info.is_dir()}
    csv_name = next((name for name in entries if PurePosixPath(name).name.lower() == LABELS_CSV), None)
    if csv_name is None:
        raise QuizUploadError(f"The zip has no {LABELS_CSV} (columns: file, label, and optionally age, sex, site).")
    folder = PurePosixPath(csv_name).parent
    rows = _csv_rows(archive.read(entries[csv_name]))
    if not rows:
        raise QuizUploadError(f"{LABELS_CSV} has no rows.")
    wanted = {c.lower(): c for c in classes}
    wanted.update({display_name(c).lower(): c for c in classes})
    cases, problems = [], []
    for number, row in enumerate(rows, start=2):             # line 1 is the header
        where = f"{LABELS_CSV} line {number} ({row.get('file') or 'no file'})"
        if len(cases) >= limit:
            problems.append(f"{where}: skipped, a quiz takes at most {limit} cases.")
            continue
        name = row.get("file", "")
        path = PurePosixPath(name)
        if not name or path.is_absolute() or ".." in path.parts:
            problems.append(f"{where}: refused, the file name must be a path inside the zip's folder.")
            continue
        label = wanted.get(row.get("label", "").lower())
        if label is None:
            problems.append(f"{where}: unknown label {row.get('label')!r}; use one of: {', '.join(classes)}.")
            continue
        member = str(folder / path) if str(folder) != "." else str(path)
        if member not in entries:
            problems.append(f"{where}: the file is not in the zip.")
            continue
        if entries[member].file_size > MAX_BYTES:
            problems.append(f"{where}: the image is larger than {MAX_BYTES // (1024 * 1024)} MB.")
            continue
        content = archive.read(entries[member])
        try:
            load_image(content)
        except ImageError as exc:
            problems.append(f"{where}: not a usable image ({exc})")
            continue
        age, age_problem = _age(row.get("age", ""))
        if age_problem:
            problems.append(f"{where}: {age_problem}.")
        cases.append(Case(f"upload:{number}", dataset, PurePosixPath(name).stem, label, Path(name), age,
                          row.get("sex") or None, row.get("site") or None, "", data=content))
    return cases, problems
