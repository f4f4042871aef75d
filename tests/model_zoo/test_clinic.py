"""model_zoo.clinic and the batch readers of model_zoo.uploads: what the Classify and Compare pages build on."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from model_zoo import clinic
from model_zoo.classes import display_name
from model_zoo.diagnosis_result import Diagnosis, ItemError, OodVerdict
from model_zoo.uploads import MAX_BATCH_FILES, batch_items, count_items

pypdf = pytest.importorskip("pypdf")
CLASSES = ["mel", "nv", "bkl"]


def _png(colour: tuple[int, int, int] = (180, 120, 100)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 100), colour).save(buffer, "PNG")
    return buffer.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _diagnosis(name: str, probabilities=(0.2, 0.7, 0.1), *, rejected: bool = False, abstains: bool = False,
               prediction_set=("nv",), note: str = "") -> Diagnosis:
    """A Diagnosis as model_zoo.diagnosis builds it, without a model."""
    refused = rejected
    return Diagnosis(name, "toy_model", "ab" * 32, CLASSES, OodVerdict(True, rejected, 9.0 if rejected else 1.0, 5.0),
                     None, "no thresholds", card={"display_name": "Toy"},
                     metrics={"clinical": {"conformal": {"qhat": 0.5, "target_coverage": 0.9}}},
                     probabilities=None if refused else np.array(probabilities), abstains=None if refused else abstains,
                     prediction_set=None if refused else list(prediction_set), prediction_set_note=note)


def test_batch_items_name_zip_entries_and_count_ahead():
    files = [("a.png", _png()), ("set.zip", _zip({"x/b.png": _png(), "x/notes.txt": b"hi", "__MACOSX/._b.png": b"",
                                                   "x/": b""})), ("bad.zip", b"not a zip")]
    rows = list(batch_items(files))
    assert [(n, d is not None) for n, d, _ in rows] == [("a.png", True), ("set.zip/x/b.png", True),
                                                        ("set.zip/x/notes.txt", False), ("bad.zip/(zip)", False)]
    assert count_items(files) == len(rows), "the progress bar's total"


def test_the_batch_limit_holds_across_several_uploads():
    files = [(f"{i}.png", b"x") for i in range(MAX_BATCH_FILES - 1)] + [("more.zip", _zip({"a.png": b"1", "b.png": b"2"}))]
    rows = list(batch_items(files))
    assert sum(d is not None for _, d, _ in rows) == MAX_BATCH_FILES
    assert rows[-1] == ("more.zip/b.png", None, f"Skipped: only the first {MAX_BATCH_FILES} images of a batch are read.")


def test_limits_sentence_states_count_size_and_zip_total():
    text = clinic.limits_sentence(50)
    assert f"up to {MAX_BATCH_FILES} images per batch" in text and "50 MB" in text and "200 MB" in text


def test_verdicts_and_compare_rows():
    answered, uncertain = _diagnosis("a"), _diagnosis("b", (0.4, 0.35, 0.25), abstains=True)
    refused = _diagnosis("c", rejected=True)
    assert clinic.verdict(answered) == "answers"
    assert clinic.verdict(uncertain) == "uncertain: refer to a clinician (abstains)"
    assert clinic.verdict(refused) == "refused: not a dermoscopy image"
    row = clinic.compare_row(refused, {"display_name": "Toy"})
    assert row["probability"] is None and row["prediction"] == ""
    assert clinic.compare_row(answered, {"display_name": "Toy"})["prediction"] == display_name("nv")
    assert "does not look like a dermoscopy image" in clinic.compare_refusal([refused, answered])
    assert "toy_model" in clinic.compare_refusal([refused, answered])


def test_conformal_view_splits_the_caution_from_the_note():
    d = _diagnosis("a", prediction_set=("nv", "mel"), note="Conformal set for 90% coverage (fitted on validation). "
                                                          "Caution: test coverage is below the target.")
    view = clinic.conformal_view(d)
    assert view.heading == "Diagnoses the model cannot rule out at 90% coverage"
    assert view.labels == ["nv", "mel"] and view.note.endswith("(fitted on validation).")
    assert view.warning == "test coverage is below the target."
    assert clinic.conformal_view(_diagnosis("r", rejected=True)) is None


def test_reports_zip_has_one_pdf_per_classified_or_refused_row():
    items = [("a.png", _png(), ""), ("set.zip/a.png", _png(), ""), ("broken.png", b"nope", ""),
             ("portrait.png", _png((20, 200, 30)), "")]
    results = [_diagnosis("a.png"), _diagnosis("set.zip/a.png"), ItemError("broken.png", "not an image"),
               _diagnosis("portrait.png", rejected=True)]
    steps = []
    data = clinic.reports_zip(results, items, progress=lambda done, total: steps.append((done, total)))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["case_report_toy_model_a.pdf", "case_report_toy_model_set.zip_a.pdf",
                                      "case_report_toy_model_portrait.pdf"]
        refused = pypdf.PdfReader(io.BytesIO(archive.read("case_report_toy_model_portrait.pdf"))).pages[0]
        assert "Not classified" in refused.extract_text()
    assert steps == [(1, 3), (2, 3), (3, 3)]


def test_batch_summary_counts_each_outcome():
    results = [_diagnosis("a"), _diagnosis("b", abstains=True), _diagnosis("c", rejected=True), ItemError("d", "x")]
    assert clinic.batch_summary(results) == ("2 classified (1 uncertain — refer, 0 melanoma alert(s)), 1 refused "
                                             "(not dermoscopy or poor image quality), 1 could not be read or were "
                                             "skipped.")


def test_outcomes_say_why_a_row_has_no_answer():
    from dataclasses import replace

    from model_zoo.quality import QualityVerdict

    blurred = replace(_diagnosis("q", rejected=True), not_dermoscopy=OodVerdict(True, False, 1.0, 5.0),
                      quality=QualityVerdict(False, ("blurred",), ("The image looks blurred.",), {}))
    assert clinic.outcome(blurred) == "refused: image quality (blurred)"
    assert clinic.outcome(_diagnosis("r", rejected=True)) == "refused: not a dermoscopy image"
    assert clinic.outcome(ItemError("x", "Skipped: not an image file name.")) == \
        "not read: Skipped: not an image file name."
    view = clinic.batch_view([_diagnosis("a"), ItemError("b", "bad")])
    assert view[0]["outcome"] == "classified" and view[0]["prediction"] == display_name("nv")
    assert view[1]["outcome"] == "not read: bad" and view[1]["probability"] is None
