"""The quiz's logic: seeded draws, scores against hand-counted answers, teaching notes, the instructor's zip."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from model_zoo import examples, quiz
from model_zoo.quiz import BENIGN, SUSPICIOUS, Answer, ModelView

ROOT = Path(__file__).resolve().parents[2]
HAM_CLASSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]


@pytest.fixture(scope="module")
def bundled() -> list[examples.Case]:
    cases = examples.bundled_cases("ham10000")
    assert len(cases) >= 28
    return cases


def test_one_seed_gives_the_same_quiz_and_another_seed_another(bundled):
    first = quiz.draw(bundled, 10, seed=7)
    assert [c.id for c in first] == [c.id for c in quiz.draw(list(reversed(bundled)), 10, seed=7)]
    assert len({c.id for c in first}) == 10
    assert [c.id for c in quiz.draw(bundled, 10, seed=8)] != [c.id for c in first]
    assert len(quiz.draw(bundled, 500, seed=1)) == len(bundled)       # never more cases than there are


def test_hard_cases_are_those_the_model_gets_wrong(bundled):
    predicted = {c.image_id: ("nv" if c.label != "nv" else "mel") for c in bundled[:5]}
    predicted.update({c.image_id: c.label for c in bundled[5:10]})
    assert [c.id for c in quiz.hard_cases(bundled, predicted)] == [c.id for c in bundled[:5]]


def _answer(truth: str, said: str, call: str, model_top: str | None, alert: bool = False,
            abstained: bool = False) -> Answer:
    return Answer(f"ham10000:{truth}-{said}", truth, said, call, ModelView(model_top, abstained, alert))


def test_scores_match_a_hand_count():
    answers = [
        _answer("mel", "mel", SUSPICIOUS, "nv"),              # student right; model wrong, calls benign
        _answer("mel", "nv", BENIGN, "mel"),                  # student misses a melanoma; model finds it
        _answer("nv", "nv", BENIGN, "nv", alert=True),        # model raises the alert on a mole: suspicious
        _answer("bcc", "bkl", SUSPICIOUS, "bcc"),
        _answer("nv", "nv", BENIGN, None),                    # model refused the image: counts as wrong, refers
    ]
    student, model = quiz.score(answers, "student"), quiz.score(answers, "model")
    assert student["accuracy"] == pytest.approx(3 / 5)
    # recall per true class: mel 1/2, nv 2/2, bcc 0/1 -> mean 0.5
    assert student["balanced_accuracy"] == pytest.approx(0.5)
    assert student["melanoma_sensitivity"] == pytest.approx(0.5)
    assert student["malignant_sensitivity"] == pytest.approx(2 / 3)   # mel, mel, bcc called suspicious 2 of 3
    assert model["accuracy"] == pytest.approx(3 / 5)
    assert model["balanced_accuracy"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert model["melanoma_sensitivity"] == pytest.approx(0.5)
    assert model["malignant_sensitivity"] == pytest.approx(2 / 3)     # nv-top on a melanoma is benign
    assert ModelView(None, refused="not dermoscopy").call == SUSPICIOUS
    assert ModelView("nv", abstained=True).call == SUSPICIOUS and ModelView("nv").call == BENIGN


def test_no_melanoma_in_the_cases_gives_no_melanoma_figure():
    result = quiz.score([_answer("nv", "nv", BENIGN, "nv")], "student")
    assert result["melanoma_sensitivity"] is None and result["malignant_sensitivity"] is None
    assert quiz.score([], "model")["accuracy"] is None


def test_confusion_table_and_missed_cases_and_csv():
    answers = [_answer("mel", "nv", BENIGN, "mel"), _answer("mel", "mel", SUSPICIOUS, "mel"),
               _answer("nv", "nv", BENIGN, "nv")]
    table = quiz.confusion(answers, HAM_CLASSES)
    assert table.loc["Melanoma", "Melanocytic nevus (mole)"] == 1 and table.loc["Melanoma", "Melanoma"] == 1
    assert int(table.values.sum()) == 3 and "Dermatofibroma" not in table.index
    assert [a.case_id for a in quiz.missed(answers)] == [answers[0].case_id]
    text = quiz.answers_csv(answers, seed=11)
    lines = text.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("seed,case,true_diagnosis")
    assert lines[1].startswith("11,") and ",False," in lines[1]


def test_every_class_of_both_datasets_has_a_teaching_note_naming_its_methods():
    labels = set(HAM_CLASSES) | {c["label"] for c in _manifest_rows() if c["dataset"] == "isic_9class"}
    notes = json.loads((ROOT / "assets" / "teaching_notes.json").read_text())
    for label in labels:
        note = quiz.teaching_note(label)
        assert note and note["features"] and note["look_alikes"], label
        assert note["methods"] and all(m in notes["_methods"] for m in note["methods"]), label
    assert set(notes["_methods"]) == {"two-step algorithm", "7-point checklist", "ABCD rule", "pattern analysis"}
    assert quiz.teaching_note("not a class") is None


def _manifest_rows() -> list[dict]:
    import csv

    with open(ROOT / "assets" / "examples" / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (150, 90, 60)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_an_instructors_zip_gives_cases_in_memory_and_a_message_per_bad_row():
    labels = ("file,label,age,sex,site\n"
              "a.jpg,mel,60,male,back\n"
              "b.jpg,Melanocytic nevus (mole),abc,,\n"      # the plain-language name is accepted; bad age noted
              "c.jpg,wart,,,\n"                               # unknown label
              "missing.jpg,nv,,,\n"                           # not in the zip
              "../evil.jpg,nv,,,\n"                           # climbs out of the folder
              "d.jpg,nv,,,\n")                                # not an image
    data = _zip({"quiz/labels.csv": labels.encode(), "quiz/a.jpg": _jpeg(), "quiz/b.jpg": _jpeg(),
                 "quiz/c.jpg": _jpeg(), "quiz/d.jpg": b"not an image", "evil.jpg": _jpeg()})
    cases, problems = quiz.read_instructor_zip(data, "ham10000", HAM_CLASSES)
    assert [(c.label, c.age, c.sex) for c in cases] == [("mel", 60.0, "male"), ("nv", None, None)]
    assert cases[0].read_bytes() == _jpeg() and not cases[0].path.exists()
    text = "\n".join(problems)
    assert "line 3 (b.jpg): age 'abc' is not a number" in text
    assert "line 4 (c.jpg): unknown label 'wart'" in text
    assert "line 5 (missing.jpg): the file is not in the zip" in text
    assert "line 6 (../evil.jpg): refused" in text
    assert "line 7 (d.jpg): not a usable image" in text


@pytest.mark.parametrize("data, message", [
    (b"plain bytes", "not a zip"),
    (_zip({"a.jpg": b"x"}), "no labels.csv"),
    (_zip({"labels.csv": b"name,diagnosis\na.jpg,mel\n"}), "needs the columns 'file' and 'label'"),
    (_zip({"labels.csv": b"file,label\n"}), "has no rows"),
])
def test_an_unusable_zip_is_refused_with_a_clear_message(data, message):
    with pytest.raises(quiz.QuizUploadError, match=message):
        quiz.read_instructor_zip(data, "ham10000", HAM_CLASSES)


def test_balanced_accuracy_agrees_with_scikit_learn():
    """The quiz computes balanced accuracy itself (the server stays free of scikit-learn); it must agree."""
    import numpy as np
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        truth = rng.choice(HAM_CLASSES, 12)
        said = rng.choice(HAM_CLASSES, 12)
        answers = [_answer(t, s, BENIGN, s) for t, s in zip(truth, said)]
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = balanced_accuracy_score(truth, said)
        assert quiz.score(answers, "student")["balanced_accuracy"] == pytest.approx(expected)
