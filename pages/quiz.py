"""Quiz: the student commits a diagnosis and a management call, then sees the truth, the model and a teaching note.

Everything lives in the browser session (st.session_state); nothing is stored on the server. The link carries
the quiz (?seed=&dataset=&n=&hard=), so a teacher's link gives a whole class the same cases in the same order.
"""
from __future__ import annotations

import hashlib
from typing import Optional

import pandas as pd
import streamlit as st

import app_cache
import app_charts
import app_ui
from model_zoo import quiz
from model_zoo.classes import display_name
from model_zoo.constants import EXPLAINER_LABELS
from model_zoo.examples import Case
from model_zoo.overlay import COLORMAPS

app_ui.route_deep_link()

STATE = "quiz_state"
DEFAULT_SEED = 1


# ------------------------------------------------------------------------------------------------ settings
def _int(text: Optional[str], default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(str(text))))
    except (TypeError, ValueError):
        return default


def settings_from_url(datasets: list[str]) -> dict:
    """The quiz the link asks for; bad or missing values fall back to the defaults."""
    params = st.query_params
    dataset = params.get("dataset") if params.get("dataset") in datasets else datasets[0]
    return {"seed": _int(params.get("seed"), DEFAULT_SEED, 0, 10**9), "dataset": dataset,
            "n": _int(params.get("n"), quiz.QUIZ_SIZE, 1, quiz.MAX_QUIZ_SIZE), "hard": params.get("hard") == "1"}


def settings_ui(settings: dict, datasets: list[str]) -> Optional[bytes]:
    """The teacher's controls: they rewrite the link (and so restart the quiz). Returns an uploaded zip, if any."""
    with st.expander("Quiz settings (for the teacher)", expanded=False):
        with st.form("quiz_settings"):
            dataset = st.radio("Cases from", datasets, index=datasets.index(settings["dataset"]), horizontal=True,
                               format_func=lambda d: app_ui.DATASET_LABELS.get(d, d))
            n = st.number_input("Number of cases", 1, quiz.MAX_QUIZ_SIZE, settings["n"])
            seed = st.number_input("Seed (the same seed gives the same cases)", 0, 10**9, settings["seed"])
            hard = st.toggle("Hard cases only: those the model gets wrong", settings["hard"])
            if st.form_submit_button("Start this quiz"):
                st.query_params.update({"seed": str(int(seed)), "dataset": dataset, "n": str(int(n)),
                                        "hard": "1" if hard else "0"})
                st.session_state.pop(STATE, None)
                st.rerun()
        upload = st.file_uploader("Your own cases: a zip of images with labels.csv (columns file, label, and "
                                  "optionally age, sex, site). It stays in this browser session only.",
                                  type=["zip"], key="quiz_zip")
    return upload.getvalue() if upload is not None else None


def share_ui(settings: dict) -> None:
    link = "?" + "&".join(f"{k}={v}" for k, v in (("seed", settings["seed"]), ("dataset", settings["dataset"]),
                                                    ("n", settings["n"]), ("hard", int(settings["hard"]))))
    st.caption(f"Quiz seed **{settings['seed']}** · {settings['n']} cases · "
               f"{app_ui.DATASET_LABELS.get(settings['dataset'], settings['dataset'])}"
               f"{' · hard cases' if settings['hard'] else ''}. Share this page's address (it ends in `{link}`) "
               "and every student gets the same cases in the same order.")


# -------------------------------------------------------------------------------------------------- cases
def case_key(case: Case) -> str:
    """Identifies a case's image across sessions: its id, or its content for an uploaded case."""
    return case.id if case.data is None else "upload:" + hashlib.sha1(case.data).hexdigest()


def quiz_cases(settings: dict, card: dict, upload: Optional[bytes]) -> tuple[list[Case], list[str]]:
    """The drawn cases, and messages about the source (the upload's bad rows, a short hard-case pool)."""
    notes: list[str] = []
    if upload is not None:
        try:
            pool, notes = quiz.read_instructor_zip(upload, settings["dataset"], card["classes"])
        except quiz.QuizUploadError as exc:
            st.error(f"Cannot use this zip: {exc}")
            pool = []
    else:
        pool = app_cache.cases(settings["dataset"])
        if not app_cache.has_dataset(settings["dataset"]):
            notes.append(f"Drawn from the {len(pool)} example cases bundled with the app (test-split images); with "
                         "the dataset images the quiz draws on the whole test split.")
    if settings["hard"]:
        predicted = {str(r["image_id"]): r["predicted"] for r in app_cache.predictions(card["id"]) if r["split"] == "test"}
        pool = quiz.hard_cases(pool, predicted) if upload is None else pool
        notes.append(f"Hard cases: {len(pool)} the model gets wrong." if upload is None else
                     "Hard cases apply to the bundled cases only; your own cases are all used.")
    return quiz.draw(pool, settings["n"], settings["seed"]), notes


def state_for(key: tuple) -> dict:
    """This session's progress through the quiz `key`; a new quiz (another link or upload) starts afresh."""
    state = st.session_state.get(STATE)
    if state is None or state["key"] != key:
        state = {"key": key, "index": 0, "answers": [], "revealed": False}
        st.session_state[STATE] = state
    return state


# ----------------------------------------------------------------------------------------------- one case
def details_text(case: Case) -> str:
    parts = [f"age {case.age:.0f}" if case.age is not None else "", case.sex or "", case.site or ""]
    given = ", ".join(p for p in parts if p)
    return f"Patient: {given}." if given else "No patient details recorded for this case."


def guess_ui(case: Case, classes: list[str], number: int, total: int) -> Optional[tuple[str, str]]:
    """The image and details only, then the two answers; nothing from the model is shown or sent before."""
    st.image(case.read_bytes(), width=360,
             alt=f"Dermoscopy image of quiz case {number} of {total}; its diagnosis is hidden until you answer.")
    st.caption(details_text(case))
    with st.form(f"guess_{number}"):
        diagnosis = st.radio("Your diagnosis", classes, index=None, format_func=display_name)
        call = st.radio("Your management call", quiz.CALLS, index=None)
        if not st.form_submit_button("Commit my answers", type="primary"):
            return None
    if diagnosis is None or call is None:
        st.error("Choose a diagnosis and a management call first.")
        return None
    return diagnosis, call


def model_view(card: dict, case: Case) -> tuple[quiz.ModelView, dict]:
    view = app_cache.case_view(card["id"], case_key(case), case.read_bytes())
    return quiz.ModelView(view["top"], view["abstains"], view["melanoma_alert"], view["refusal"]), view


def reveal_ui(card: dict, case: Case, answer: quiz.Answer, view: dict) -> None:
    right = answer.diagnosis == answer.truth
    (st.success if right else st.error)(
        f"**Truth: {display_name(answer.truth)}.** You said {display_name(answer.diagnosis)} "
        f"({'right' if right else 'wrong'}) and *{answer.call}*.")
    left, right_col = st.columns([1, 1])
    with left:
        st.markdown("**The model**")
        if view["refusal"]:
            st.warning(f"The model gave no answer: {view['refusal']}")
        else:
            st.markdown(f"Most likely **{display_name(view['top'])}** "
                        f"({dict(view['ranked'])[view['top']]:.0%}) — it was "
                        f"**{'right' if view['top'] == answer.truth else 'wrong'}**.")
            if view.get("unlike_training"):
                st.warning(f"{view['ood_warning']} (The model still answers and its melanoma alert still applies, "
                           "but it advises a clinician's look.)")
            if view["abstains"]:
                st.warning("It would have **abstained**: its confidence is below its threshold, so it would say "
                           "'uncertain, refer to a clinician'.")
            if view["melanoma_alert"]:
                st.error(f"It would have raised the **melanoma alert** (melanoma probability "
                         f"{view['melanoma_probability']:.0%} ≥ threshold {view['melanoma_threshold']:.0%}).")
            if view["prediction_set"] and len(view["prediction_set"]) > 1:
                st.caption("Diagnoses it cannot rule out (90% conformal set): "
                           + ", ".join(display_name(c) for c in view["prediction_set"]) + ".")
            st.caption(f"Its management call: *{answer.model.call}*.")
            st.altair_chart(app_charts.probability_chart(view["ranked"]), width="stretch")
    with right_col:
        if not view["refusal"]:
            colormap = st.selectbox("Heatmap colours", list(COLORMAPS), format_func=COLORMAPS.get, key="quiz_colormap")
            png = app_cache.case_heatmap_png(card["id"], case_key(case), case.read_bytes(), view["top"], "gradcam",
                                             colormap)
            st.image(png, caption=f"{EXPLAINER_LABELS['gradcam']} for {display_name(view['top'])}", width="stretch",
                     alt=f"Heatmap of where the model looked for {display_name(view['top'])}.")
    teaching_note_ui(answer.truth)


def teaching_note_ui(label: str) -> None:
    note = quiz.teaching_note(label)
    if not note:
        return
    with st.container(border=True):
        st.markdown(f"**Teaching note: {display_name(label)}**")
        st.markdown(f"*Key dermoscopic features.* {note['features']}")
        st.markdown(f"*Typical look-alikes.* {note['look_alikes']}")
        st.caption("Draws on: " + "; ".join(f"**{m}**: {quiz.method_description(m)}" for m in note["methods"]))


# ------------------------------------------------------------------------------------------------- scores
def scores_table(answers: list[quiz.Answer]) -> pd.DataFrame:
    rows = {"You": quiz.score(answers, "student"), "The model": quiz.score(answers, "model")}
    names = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy",
             "melanoma_sensitivity": "Melanomas named melanoma", "malignant_sensitivity": "Malignant lesions referred"}
    return pd.DataFrame({who: {names[k]: app_ui.percent(s[k]) for k in names} for who, s in rows.items()})


def running_score_ui(answers: list[quiz.Answer], total: int) -> None:
    student, model = quiz.score(answers, "student"), quiz.score(answers, "model")
    a, b, c = st.columns(3)
    a.metric("Cases answered", f"{len(answers)} / {total}")
    b.metric("Your accuracy", app_ui.percent(student["accuracy"]))
    c.metric("The model's accuracy", app_ui.percent(model["accuracy"]))


def summary_ui(answers: list[quiz.Answer], cases: list[Case], card: dict, seed: int) -> None:
    st.subheader("Your result")
    st.table(scores_table(answers))
    st.caption("Balanced accuracy is the mean of the share found in each true diagnosis, so rare lesions count as "
               "much as moles. 'Malignant lesions referred': malignant or pre-malignant cases you called suspicious "
               "(for the model: alert, abstention, refusal or a malignant top class).")
    st.markdown("**Your answers (rows: the truth)**")
    st.dataframe(quiz.confusion(answers, card["classes"]), width="stretch")
    st.download_button("Download your answers (CSV)", quiz.answers_csv(answers, seed),
                       file_name=f"quiz_seed{seed}_answers.csv", mime="text/csv")
    wrong = quiz.missed(answers)
    if wrong:
        st.markdown(f"**The {len(wrong)} case(s) you missed, with the model's view**")
        by_id = {c.id: c for c in cases}
        for answer in wrong:
            case = by_id[answer.case_id]
            with st.container(border=True):
                left, right = st.columns([1, 2])
                left.image(case.read_bytes(), width="stretch", alt=f"Missed case: {display_name(answer.truth)}")
                right.markdown(f"Truth **{display_name(answer.truth)}**; you said {display_name(answer.diagnosis)}; "
                               f"the model said {display_name(answer.model.top) if answer.model.top else 'nothing (refused)'}.")
    else:
        st.success("You missed none.")


# ----------------------------------------------------------------------------------------------------- page
st.title("Quiz: guess first, then see the model")
app_ui.disclaimer_ui()
st.caption("Look at the image (and the patient details, where recorded), commit a diagnosis and a management call, "
           "then see the truth, what the model said and a short teaching note. Your score runs beside the model's "
           "on the same cases. Nothing is stored on the server; reloading the page restarts the same quiz.")

cards = app_cache.usable_cards()
datasets = list(dict.fromkeys(c["dataset"] for c in cards))
if not datasets:
    st.error("No usable model in the zoo, so there is nothing to compare your answers with.")
    st.stop()
settings = settings_from_url(datasets)
upload = settings_ui(settings, datasets)
card = next(c for c in cards if c["dataset"] == settings["dataset"])      # the default model of that dataset
picks, source_notes = quiz_cases(settings, card, upload)
share_ui(settings)
for note in source_notes:
    st.caption(note)
if not picks:
    st.warning("There are no cases to draw from with these settings.")
    st.stop()
st.caption(f"Model: {card['display_name']}.")

upload_key = hashlib.sha1(upload).hexdigest() if upload is not None else ""
state = state_for((settings["seed"], settings["dataset"], settings["n"], settings["hard"], upload_key))
answers: list[quiz.Answer] = state["answers"]
total = len(picks)

if state["index"] >= total:
    running_score_ui(answers, total)
    summary_ui(answers, picks, card, settings["seed"])
    if st.button("Take this quiz again"):
        st.session_state.pop(STATE, None)
        st.rerun()
    st.stop()

case = picks[state["index"]]
st.subheader(f"Case {state['index'] + 1} of {total}")
if not state["revealed"]:
    guess = guess_ui(case, card["classes"], state["index"] + 1, total)
    if guess is not None:
        with st.spinner("Asking the model..."):
            view_model, _ = model_view(card, case)
        answers.append(quiz.Answer(case.id, case.label, guess[0], guess[1], view_model))
        state["revealed"] = True
        st.rerun()
else:
    answer = answers[-1]
    st.image(case.read_bytes(), width=360, alt=f"Dermoscopy image of quiz case {state['index'] + 1}: "
                                                f"{display_name(case.label)}.")
    st.caption(details_text(case))
    _, view = model_view(card, case)
    reveal_ui(card, case, answer, view)
    if st.button("Next case" if state["index"] + 1 < total else "See my result", type="primary"):
        state["index"] += 1
        state["revealed"] = False
        st.rerun()
if answers:
    running_score_ui(answers, total)
