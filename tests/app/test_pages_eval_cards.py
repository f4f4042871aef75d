"""The Evaluation, Model cards, Train and About pages, run headless with Streamlit's AppTest.

Each page file is run on its own (st.navigation runs them the same way). The real zoo
(model_zoo/models, or $DERMLAB_ZOO as set when the tests start) is used unless a test
builds a scratch zoo from a copy of a real model.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import app_cache
import model_zoo
from model_zoo import clinical_views, constants, formatting, store, subgroup_views

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "pages"
REAL_ZOO = store.zoo_dir()
TIMEOUT = 180


def _usable_real_cards() -> list[dict]:
    return [c for c in model_zoo.list_models(REAL_ZOO) if c["status"] == "ok"]


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch):
    """Each test sees the zoo it sets up (app_cache caches the card list for 30 s)."""
    if REAL_ZOO != store.PACKAGE_DIR / "models":
        monkeypatch.setenv(store.ZOO_ENV, str(REAL_ZOO))
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture(scope="module")
def real_card() -> dict:
    cards = _usable_real_cards()
    if not cards:
        pytest.skip(f"no usable model in the zoo at {REAL_ZOO}")
    return cards[0]


@pytest.fixture
def scratch_zoo(tmp_zoo, real_card):
    """A scratch zoo (DERMLAB_ZOO) holding a copy of the first real model; loaded models are dropped after."""
    shutil.copytree(real_card["folder"], tmp_zoo / real_card["id"])
    st.cache_resource.clear()
    yield tmp_zoo
    st.cache_resource.clear()


def _copy_as(zoo: Path, source_id: str, new_id: str, display_name: str) -> Path:
    folder = zoo / new_id
    shutil.copytree(zoo / source_id, folder)
    card = json.loads((folder / store.CARD_FILE).read_text())
    card.update(id=new_id, display_name=display_name)
    (folder / store.CARD_FILE).write_text(json.dumps(card))
    return folder


def run_page(name: str, timeout: float = TIMEOUT) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=timeout)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def page_text(at: AppTest) -> str:
    """Every piece of visible text: headings, markdown, captions, alerts, tables, code."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success", "code"):
        parts += [str(element.value) for element in getattr(at, kind)]
    for table in list(at.table) + list(at.dataframe):
        parts.append(table.value.to_string())
    return "\n".join(parts)


def charts(at: AppTest) -> list:
    return list(at.get("vega_lite_chart"))


def test_evaluation_page_shows_metrics_tables_and_charts(real_card, data_dir):
    at = run_page("evaluation")
    assert at.title[0].value == "Evaluation"
    assert at.selectbox(key="eval_model").value["id"] == real_card["id"]
    metrics = model_zoo.read_metrics(real_card["id"], REAL_ZOO)["test"]

    summary = at.table[0].value
    assert list(summary.columns) == ["Metric", "Value", "95% CI", "What it means"]
    rows = summary.set_index("Metric")
    for name in ("Balanced accuracy", "Accuracy", "Macro F1", "Macro precision", "Macro recall (sensitivity)",
                 "Weighted F1", "Macro ROC AUC", "Log loss", "Images (n)"):
        assert name in rows.index
    assert rows.loc["Balanced accuracy", "Value"] == f"{100 * metrics['balanced_accuracy']:.1f}%"
    assert rows.loc["Balanced accuracy", "95% CI"].count("%") == 2
    assert rows.loc["Images (n)", "Value"] == str(metrics["n"])

    per_class = at.dataframe[0].value
    assert {"Class", "Precision", "Recall (sensitivity)", "F1", "Specificity", "ROC AUC",
            "Support (images)"} <= set(per_class.columns)
    assert len(per_class) == len(real_card["classes"])

    text = page_text(at)
    worst = min((v["recall"], k) for k, v in metrics["per_class"].items() if v["support"])
    assert f"Worst class: {model_zoo.classes.display_name(worst[1])}" in text
    assert "Balanced accuracy" in text and "average of the per-class recalls" in text

    # confusion matrix, ROC curves, loss and accuracy curves
    assert len(charts(at)) >= 4
    specs = [json.loads(chart.proto.spec) for chart in charts(at)]
    flat = json.dumps(specs)
    assert "Row share" in flat and "True positive rate" in flat
    has_history = (Path(real_card["folder"]) / store.HISTORY_FILE).is_file()    # an ensemble has no epochs of its own
    assert ("Epoch" in flat) == has_history
    assert "AUC" in flat                                   # per-class AUC in the ROC legend

    # the gallery: at most 12 misclassified test images, each with a heatmap button
    captions = [c for image in at.get("image") for c in image.captions]
    assert 1 <= len(captions) <= 12
    assert all("True:" in c and "Predicted:" in c for c in captions)
    assert len([b for b in at.button if b.label == "Show heatmap"]) == len(captions)


def test_evaluation_confusion_mode_and_validation_toggle(real_card, data_dir):
    at = run_page("evaluation")
    at.radio(key="eval_confusion_mode").set_value("Share of each true class (row-normalised)").run()
    assert not at.exception
    at.toggle(key="eval_use_validation").set_value(True).run()
    assert not at.exception
    validation = model_zoo.read_metrics(real_card["id"], REAL_ZOO)["validation"]
    rows = at.table[0].value.set_index("Metric")
    assert rows.loc["Images (n)", "Value"] == str(validation["n"])
    assert "Mistakes on the validation images" in page_text(at)


def test_evaluation_switching_models_and_comparing(scratch_zoo, real_card, data_dir):
    _copy_as(scratch_zoo, real_card["id"], "zz_copy", "Second model (copy)")
    at = run_page("evaluation")
    picker = at.selectbox(key="eval_model")
    assert picker.value["id"] == real_card["id"]
    assert len(picker.options) == 2 and "Second model (copy)" in picker.options[1]

    picker.select_index(1).run()
    assert not at.exception
    assert at.selectbox(key="eval_model").value["id"] == "zz_copy"
    assert len(charts(at)) >= 4
    assert at.table[0].value.shape[0] == 9

    # side-by-side comparison: one row per model, plus the per-class recall chart
    original = next(c for c in model_zoo.list_models(scratch_zoo) if c["id"] == real_card["id"])
    at.multiselect(key="eval_compare_zz_copy").select(original).run()
    assert not at.exception
    table = at.table[-1].value
    assert list(table["Model"]) == ["Second model (copy)", real_card["display_name"]]
    assert {"Balanced accuracy (95% CI)", "Accuracy", "Macro F1", "Melanoma recall", "Training time",
            "File size"} <= set(table.columns)
    assert "95% CI" in table.iloc[0]["Balanced accuracy (95% CI)"]
    assert table.iloc[0]["Melanoma recall"].endswith("%")     # both datasets have a melanoma class
    assert "Recall per class, model by model" in page_text(at)


@pytest.mark.slow
def test_evaluation_heatmap_button_shows_gradcam(real_card, data_dir):
    at = run_page("evaluation")
    show = [b for b in at.button if b.label == "Show heatmap"]
    show[0].click().run(timeout=600)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    captions = [c for image in at.get("image") for c in image.captions]
    assert captions[0].startswith("Grad-CAM for")
    assert [b.label for b in at.button].count("Hide heatmap") == 1
    next(b for b in at.button if b.label == "Hide heatmap").click().run()
    assert not at.exception
    assert not any(c.startswith("Grad-CAM") for image in at.get("image") for c in image.captions)


def test_evaluation_gallery_without_data_folder_shows_hint(real_card, monkeypatch):
    """Without data the test gallery falls back on the bundled cases (tests/app/test_no_data.py); validation has none."""
    monkeypatch.setattr(app_cache, "data_dir", lambda: None)
    at = run_page("evaluation")
    at.toggle(key="eval_use_validation").set_value(True).run()
    assert any("The misclassification gallery needs the dataset images" in i.value for i in at.info)
    assert not at.get("image")


def test_evaluation_model_without_metrics_history_or_predictions(scratch_zoo, real_card):
    for name in (store.METRICS_FILE, store.HISTORY_FILE, store.PREDICTIONS_FILE):
        (scratch_zoo / real_card["id"] / name).unlink(missing_ok=True)
    at = run_page("evaluation")
    text = page_text(at)
    assert "No test metrics for this model" in text
    assert "no training history" in text
    assert "No per-image predictions" in text
    assert not charts(at)


def test_the_9class_model_card_shows_test_results_by_image_source():
    """The 9-class Train folder ties each class to one image source; the card shows what that costs on test."""
    card = next((c for c in _usable_real_cards() if c["id"] == "efficientnet_lite0_224_isic_9class"), None)
    if card is None:
        pytest.skip("the 9-class EfficientNet-Lite0 is not in the zoo")
    at = run_page("model_cards")
    labels = at.selectbox(key="cards_model").options
    at.selectbox(key="cards_model").select_index(next(i for i, label in enumerate(labels)
                                                      if label == card["display_name"])).run()
    text = page_text(at)
    groups = model_zoo.read_metrics(card["id"])["subgroups"]["source"]
    assert "Performance by image source" in text and "HAM10000 image" in text
    assert "older isic archive image" in text.lower() and "Performance across patient groups" not in text
    assert sum(g["n"] for g in groups.values()) == card["trained_on"]["counts"]["test"]
    assert not at.exception


def test_model_card_page(real_card):
    at = run_page("model_cards")
    assert at.selectbox(key="cards_model").value["id"] == real_card["id"]
    text = page_text(at)
    for heading in ("Model details", "Intended use", "Out-of-scope use", "Training data and splits", "Metrics",
                    "Known limitations", "Data licence and citation"):
        assert heading in text, heading
    assert "not a medical device" in text
    assert "Tschandl P., Rosendahl C., Kittler H." in text and "doi:10.1038/sdata.2018.161" in text
    assert "CC BY-NC 4.0" in text
    assert real_card["sha256"] in text
    assert "fair-skinned" in text and "Dermoscopy only" in text
    if real_card["dataset"] == "isic_9class":
        assert "180 x 180" in text and "43" in text and "3 seborrheic keratosis" in text
        assert "CC-0" in text
    else:
        assert "200 x 150" in text and "lesion_id" in text
        weakest = subgroup_views.weakest_subgroup(model_zoo.read_metrics(real_card["id"])["subgroups"])
        assert "Performance across patient groups" in text
        assert f"{weakest['group']}**, balanced accuracy {formatting.pct(weakest['balanced_accuracy'])}" in text
    counts = real_card["trained_on"]["counts"]
    assert str(counts["test"]) in text and str(counts["train"]) in text
    download = at.get("download_button")
    assert len(download) == 1

    for index in range(1, len(at.selectbox(key="cards_model").options)):   # every other zoo model renders too
        at.selectbox(key="cards_model").select_index(index).run()
        assert not at.exception


def test_model_card_of_an_unavailable_model_shows_the_reason(scratch_zoo, real_card):
    model_file = scratch_zoo / real_card["id"] / store.MODEL_FILE
    model_file.write_bytes(model_file.read_bytes()[:-100] + b"\0" * 100)     # same size, different sha256
    at = run_page("model_cards")
    errors = " ".join(e.value for e in at.error)
    assert "This model is unavailable" in errors
    assert "does not match the sha256" in errors
    assert "Intended use" in page_text(at)                # the card itself is still shown

    evaluation = run_page("evaluation")                   # no usable model: a clear message, not a traceback
    assert any("No usable model" in e.value for e in evaluation.error)


def test_pages_with_an_empty_zoo(tmp_zoo):
    for name in ("evaluation", "model_cards", "train", "about"):
        at = run_page(name)
        assert at.title
    assert "zoo is empty" in page_text(run_page("model_cards"))


def test_train_page(real_card, monkeypatch):
    monkeypatch.delenv("DERMLAB_ALLOW_TRAINING", raising=False)        # as on a hosted copy
    at = run_page("train")
    text = page_text(at)
    assert "python -m trainer train" in text
    assert "bash trainer/recipes/zoo.sh" in text
    assert "command line" in text and "Training is **off** on this copy" in text and "DERMLAB_ALLOW_TRAINING=1" in text
    recipes = at.dataframe[0].value
    assert real_card["display_name"] in list(recipes["Model"])
    assert {"Input (px)", "Epochs (head + main)", "Training time", "Hardware"} <= set(recipes.columns)
    assert f"--model-id {real_card['id']}" in text


def test_about_page():
    at = run_page("about")
    text = page_text(at)
    assert "not a medical device" in text.lower()
    assert "DERMLAB_DATA_DIR" in text and "pip install -r requirements.txt" in text
    assert "never stored" in text and "no usage statistics" in text
    assert "HAM10000" in text and "ISIC Archive" in text and "CC BY-NC 4.0" in text
    # the code's licence and the models' and example images' non-commercial terms
    assert "Apache License 2.0" in text and "non-commercial" in text and "assets/examples/LICENSE.md" in text
    assert "Apache License" in (ROOT / "LICENSE").read_text()


# ------------------------------------------------------------------------------ clinical views (metrics.json["clinical"])

def _clinical(model_id: str) -> dict:
    return model_zoo.read_metrics(model_id, REAL_ZOO)["clinical"]


def _pick_model(at: AppTest, key: str, model_id: str) -> AppTest:
    """Select a model in a page's picker (switching the dataset radio first where the page has one)."""
    card = next(c for c in _usable_real_cards() if c["id"] == model_id)
    radio = [r for r in at.radio if r.key == f"{key}_dataset"]
    if radio:
        radio[0].set_value(card["dataset"]).run()
    picker = at.selectbox(key=f"{key}_model")
    picker.select_index(next(i for i, option in enumerate(picker.options) if card["display_name"] in option)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metric(at: AppTest, label: str):
    return next(m for m in at.metric if m.label == label)


def test_evaluation_shows_the_stored_clinical_figures(real_card):
    """PR curves, benign vs malignant with its stored AUROC and interval, lesion-level intervals, conformal coverage."""
    clinical = _clinical(real_card["id"])
    at = run_page("evaluation")
    text = page_text(at)

    assert "Precision-recall curves (one class against the rest)" in text
    pr_specs = [s for s in map(json.dumps, (json.loads(c.proto.spec) for c in charts(at))) if '"Recall"' in s]
    assert len(pr_specs) == len(clinical["pr_curves"])                  # one chart per class, each with its chance line
    assert all('"Chance"' in s and 'strokeDash' in s for s in pr_specs)
    melanoma = clinical["pr_curves"][constants.melanoma_label(real_card["classes"])]
    assert f"AP {clinical_views.fraction(melanoma['average_precision'])} · chance " in text

    bm = clinical["benign_malignant"]
    auroc = f"{bm['test']['roc_auc']:.2f} (95% CI {bm['test']['roc_auc_ci95'][0]:.2f}–{bm['test']['roc_auc_ci95'][1]:.2f})"
    assert f"AUROC **{auroc}**" in text
    assert _metric(at, "AUROC (test)").value == f"{bm['test']['roc_auc']:.2f}"
    thresholds = next(t.value for t in at.table if "Threshold" in t.value.columns).set_index("Threshold")
    malignant = bm["malignant_operating_point"]["test"]
    assert thresholds.loc["Malignant threshold", "Chosen on"] == "validation, for 90% sensitivity"
    assert thresholds.loc["Malignant threshold", "Sensitivity (95% CI)"] == clinical_views.span(
        malignant["sensitivity"], malignant["sensitivity_ci95"])
    assert "Melanoma alert" in thresholds.index

    weakest = clinical_views.weakest_class(clinical, real_card["classes"])
    assert f"Weakest class: **{weakest['name']}**" in text
    intervals = next(d.value for d in at.dataframe if "F1" in d.value.columns and "(" in str(d.value.iloc[0]["F1"]))
    assert len(intervals) == len(clinical["per_class"])

    if real_card["dataset"] == "ham10000":
        assert "Intervals by lesion, not by image" in text and "(lesions resampled)" in text
        assert clinical["bootstrap"]["note"] in text
        headline = next(t.value for t in at.table if "95% CI, lesions resampled" in t.value.columns)
        assert list(headline["Metric"]) == ["Balanced accuracy", "Accuracy", "Macro F1"]

    conformal = clinical["conformal"]
    assert _metric(at, "Test coverage").value == formatting.pct(conformal["test"]["coverage"], 1)
    assert f"held the true diagnosis for **{formatting.with_ci(conformal['test']['coverage'], conformal['test']['coverage_ci95'], 1)}**" in text
    assert "Least covered class:" in text and "not promised for each class" in text


def test_evaluation_warns_where_conformal_sets_fall_short_of_their_target():
    """On the 9-class models the 90% sets reach about 72-76% on test: the page must say so, never promise 90%."""
    short = [c for c in _usable_real_cards() if (_clinical(c["id"]).get("conformal") or {}).get("warning")]
    if not short:
        pytest.skip("no model with a conformal coverage warning in the zoo")
    card = short[0]
    conformal = _clinical(card["id"])["conformal"]
    at = _pick_model(run_page("evaluation"), "eval", card["id"])
    errors = " ".join(e.value for e in at.error)
    assert "Coverage below target on test" in errors and conformal["warning"] in errors
    text = page_text(at)
    assert f"only {formatting.pct(conformal['test']['coverage'], 1)}" in text and "**not** 90% sets" in text
    assert _metric(at, "Test coverage").delta.startswith("-")


def test_evaluation_without_clinical_figures_says_how_to_compute_them(scratch_zoo, real_card):
    path = scratch_zoo / real_card["id"] / store.METRICS_FILE
    metrics = json.loads(path.read_text())
    metrics.pop("clinical")
    path.write_text(json.dumps(metrics))
    at = run_page("evaluation")
    assert sum(f"python -m trainer clinical {real_card['id']}" in i.value for i in at.info) == 3
    assert "Intervals by lesion" not in page_text(at)
    assert "Clinical figures" not in page_text(run_page("model_cards"))


def test_model_cards_show_benign_malignant_and_conformal_lines(real_card):
    clinical = _clinical(real_card["id"])
    at = run_page("model_cards")
    text = page_text(at)
    bm = clinical["benign_malignant"]["test"]
    assert "Clinical figures (test images)" in text
    assert "**Benign versus malignant**" in text and f"AUROC **{clinical_views.auc_text(bm['roc_auc'], bm['roc_auc_ci95'])}**" in text
    assert "chosen on validation for 90% sensitivity" in text
    assert "Prediction sets aimed at 90% coverage held the true diagnosis for **" in text
    if real_card["dataset"] == "ham10000":
        assert "resampled by lesion" in text and "Why intervals by lesion" in text

    short = next((c for c in _usable_real_cards() if (_clinical(c["id"]).get("conformal") or {}).get("warning")), None)
    if short is not None:
        at = _pick_model(at, "cards", short["id"])
        warnings = " ".join(w.value for w in at.warning)
        assert "Prediction sets fall short of their target" in warnings
        assert "**not** 90% sets" in page_text(at)
