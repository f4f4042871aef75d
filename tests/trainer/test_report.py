"""docs/results.md is generated from the zoo and must match it (no hand-typed numbers)."""
from pathlib import Path

import model_zoo
from trainer.report import results_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_results_page_matches_the_zoo():
    committed = (ROOT / "docs" / "results.md").read_text()
    assert committed == results_markdown(), "run `python -m trainer report` after changing the zoo"


def test_every_model_and_its_test_balanced_accuracy_is_listed():
    text = results_markdown()
    for card in model_zoo.list_models():
        test = model_zoo.read_metrics(card["id"])["test"]
        assert f"`{card['id']}`" in text
        assert f"{test['balanced_accuracy']:.3f}" in text
