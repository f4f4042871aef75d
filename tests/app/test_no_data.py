"""The app with no data folder ($DERMLAB_DATA_DIR at an empty folder): the bundled example cases stand in.

A hosted copy has no dataset images; Classify's example gallery, Compare and Evaluation's mistakes gallery
must still have cases to show, drawn from assets/examples.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import app_cache
import app_ui
import model_zoo
from model_zoo import datadir, examples
from model_zoo.classes import display_name

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180


pytestmark = pytest.mark.usefixtures("no_data")      # tests/conftest.py: a hosted copy, no data folder


@pytest.fixture(scope="module")
def usable() -> list[dict]:
    cards = [c for c in model_zoo.list_models() if c["status"] == "ok"]
    assert cards, "the bundled zoo must hold at least one usable model"
    return cards


def _run(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("caption", "markdown", "info", "success") for e in getattr(at, kind))


def test_the_data_counts_as_absent_and_every_dataset_has_bundled_cases():
    assert app_cache.data_dir() is None
    for dataset in datadir.DATASETS:
        cases = app_cache.cases(dataset)
        assert cases and all(case.bundled and case.path.is_file() for case in cases)
        assert {case.label for case in examples.gallery(cases, app_ui.GALLERY_PER_CLASS)} == \
            {case.label for case in cases}, "the gallery shows every class"


def _headline(at: AppTest) -> list[str]:
    return [s.value for s in at.subheader if s.value.startswith("Most likely")]


def test_classify_example_gallery_and_the_true_label(usable):
    card = usable[0]
    at = _run("classify.py")
    at.radio(key="classify_source").set_value("Example from the test set").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [i.value for i in at.info if "needs the dataset images" in i.value]
    assert any("bundled with the app" in c.value for c in at.caption)
    picks = examples.gallery(examples.bundled_cases(card["dataset"]), app_ui.GALLERY_PER_CLASS)
    assert len(at.selectbox(key="classify_example").options) == len(picks)
    # The model refuses some real test images as 'not dermoscopy' (no reveal then): walk on to one it classifies.
    for index, case in enumerate(picks):
        at.selectbox(key="classify_example").set_value(index).run()
        assert not at.exception, [e.value for e in at.exception]
        if _headline(at):
            break
    assert _headline(at), "no bundled example was classified"
    reveal = [m.value for m in at.markdown if m.value.startswith("True label:")]
    assert len(reveal) == 1 and f"**{display_name(case.label)}**" in reveal[0]
    assert len(at.get("image")) >= 1, "the example is shown"


def test_compare_runs_every_model_on_an_example_case(usable):
    at = _run("compare.py")
    at.radio(key="compare_source").set_value("Example case").run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert len(table) == len(usable)
    assert table["probability"].notna().all(), table["prediction"].tolist()
    dataset = at.selectbox(key="compare_example_dataset").value
    case = examples.gallery(examples.bundled_cases(dataset), app_ui.GALLERY_PER_CLASS)[0]
    assert f"True label: **{display_name(case.label)}**" in _text(at)


def test_evaluation_mistakes_gallery_draws_on_the_bundled_cases(usable):
    card = usable[0]
    at = _run("evaluation.py")
    assert "Drawn from the bundled examples only" in _text(at)
    captions = [c for image in at.get("image") for c in image.captions]
    assert captions and all("True:" in c and "Predicted:" in c for c in captions)
    bundled = {case.image_id for case in examples.bundled_cases(card["dataset"])}
    assert {c.split(" — ")[0] for c in captions} <= bundled, "only bundled images are shown"
    at.toggle(key="eval_use_validation").set_value(True).run()
    assert any("needs the dataset images" in i.value for i in at.info), "the bundled cases are test images only"


def test_with_the_data_folder_the_whole_test_split_is_used(data_dir, monkeypatch):
    """The contrast: with the images present, cases are every test image, read from the data folder."""
    monkeypatch.setenv(datadir.DATA_ENV, str(data_dir))
    for dataset in datadir.DATASETS:
        cases = app_cache.cases(dataset)
        with open(examples.SPLITS_DIR / f"{dataset}.csv", newline="") as handle:
            assert len(cases) == sum(row.split(",")[-1].strip() == "test" for row in handle)
        assert not any(case.bundled for case in cases) and cases[0].path.is_relative_to(data_dir)
