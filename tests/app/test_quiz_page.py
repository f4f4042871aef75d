"""The Quiz page in AppTest with no data folder: guess first, then reveal, then a scored summary; seeded cases."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from model_zoo.classes import display_name

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 240
STATE = "quiz_state"


pytestmark = pytest.mark.usefixtures("no_data")      # tests/conftest.py: a hosted copy, no data folder


def _start(**params: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "quiz.py"), default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at: AppTest) -> str:
    kinds = ("caption", "markdown", "success", "error", "warning", "info", "subheader", "metric")
    return "\n".join(str(getattr(e, "value", "")) for kind in kinds for e in getattr(at, kind))


def test_the_model_stays_hidden_until_the_guess_then_a_reveal_and_a_summary():
    at = _start(seed="11", n="3", dataset="ham10000")
    text = _text(at)
    assert "Case 1 of 3" in text and "Truth:" not in text and "The model" not in text
    assert "Most likely" not in text and not at.get("arrow_vega_lite_chart"), "no model output before the guess"
    state = at.session_state[STATE]
    assert state["answers"] == [] and not state["revealed"]

    # committing with nothing chosen is refused with a message, not recorded
    next(b for b in at.button if b.label == "Commit my answers").click()
    at.run()
    assert "Choose a diagnosis and a management call first." in _text(at)
    assert at.session_state[STATE]["answers"] == []

    for number in (1, 2, 3):
        radios = {r.label: r for r in at.radio}
        diagnosis = radios["Your diagnosis"]
        diagnosis.set_value("nv")
        radios["Your management call"].set_value(radios["Your management call"].options[1])
        next(b for b in at.button if b.label == "Commit my answers").click()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        text = _text(at)
        answer = at.session_state[STATE]["answers"][-1]
        assert f"Truth: {display_name(answer.truth)}" in text
        assert "The model" in text and "Teaching note" in text and "Key dermoscopic features" in text
        assert answer.diagnosis == "nv" and answer.call.startswith("suspicious")
        if answer.model.top is not None:
            assert f"Most likely **{display_name(answer.model.top)}**" in text
        next(b for b in at.button if b.label in ("Next case", "See my result")).click()
        at.run()
        assert not at.exception, [e.value for e in at.exception]

    text = _text(at)
    assert "Your result" in text and "3 / 3" in text
    table = at.table[0].value
    assert list(table.columns) == ["You", "The model"] and "Balanced accuracy" in table.index
    answers = at.session_state[STATE]["answers"]
    right = sum(a.diagnosis == a.truth for a in answers)
    assert table.loc["Accuracy", "You"] == f"{100 * right / 3:.0f}%"
    assert any(b.label == "Take this quiz again" for b in at.button)


def test_one_seed_gives_every_student_the_same_cases():
    def first_cases(seed: str) -> list[str]:
        at = _start(seed=seed, n="4", dataset="ham10000")
        seen = []
        for _ in range(2):
            radios = {r.label: r for r in at.radio}
            radios["Your diagnosis"].set_value("mel")
            radios["Your management call"].set_value(radios["Your management call"].options[0])
            next(b for b in at.button if b.label == "Commit my answers").click()
            at.run()
            seen.append(at.session_state[STATE]["answers"][-1].case_id)
            next(b for b in at.button if b.label == "Next case").click()
            at.run()
        return seen

    assert first_cases("3") == first_cases("3")
    assert first_cases("3") != first_cases("4")


def test_a_bad_link_falls_back_to_a_default_quiz():
    at = _start(seed="not-a-number", n="-5", dataset="nonsense")
    text = _text(at)
    assert "Quiz seed **1**" in text and "Case 1 of 1" in text
