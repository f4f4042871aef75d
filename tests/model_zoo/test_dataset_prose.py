"""model_zoo.dataset_prose: the datasets' prose (assets/datasets/*.md), checked against the data it describes."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import model_zoo
from model_zoo import card_views, dataset_prose

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_samples import make_card  # noqa: E402


def test_split_counts_limitations_and_license():
    card = make_card()
    assert card_views.split_counts(card) == [{"Split": "Training", "Images": 1750}, {"Split": "Validation", "Images": 289},
                                             {"Split": "Test", "Images": 118}]
    text = " ".join(card_views.limitations(card))
    assert "180 x 180" in text and "seborrheic keratosis" in text.lower() and "3 vascular" in text
    assert "fair-skinned" in text and "Dermoscopy only" in text
    ham = " ".join(card_views.limitations(make_card(dataset="ham10000")))
    assert "200 x 150" in ham
    assert "43" in " ".join(dataset_prose.dataset_facts("isic_9class")["splits"])
    assert "lesion_id" in " ".join(dataset_prose.dataset_facts("ham10000")["splits"])
    assert "CC BY-NC 4.0" in dataset_prose.license_text("ham10000")
    assert "doi:10.1038/sdata.2018.161" in dataset_prose.license_text("isic_9class")
    assert "CC-0" in dataset_prose.license_text("isic_9class")
    assert dataset_prose.dataset_facts("unknown")["splits"] == []


def test_every_dataset_file_reads_back_whole(tmp_path):
    """Each assets/datasets file gives every fact; a wrapped line continues its item; an unknown section is refused."""
    assert set(dataset_prose.DATASET_FACTS) == {"isic_9class", "ham10000"}
    for name, facts in dataset_prose.DATASET_FACTS.items():
        assert all(facts[key] for key in dataset_prose.FACT_KEYS), name
        assert dataset_prose.SUBGROUP_NOTES[name], name
    assert dataset_prose.HAM10000_CITATION.startswith("Tschandl P.")
    wrapped = tmp_path / "x.md"
    wrapped.write_text("# X set\n\n## Source\n\nOne\nparagraph.\n\n## Splits\n\n- first\n  item\n- second\n")
    prose = dataset_prose.read_dataset_prose(wrapped)
    assert (prose["name"], prose["source"], prose["splits"]) == ("X set", "One paragraph.", ["first item", "second"])
    assert prose["limitations"] == [] and prose["license"] == ""
    (tmp_path / "bad.md").write_text("# Y\n\n## Licensing\n\ntext\n")
    with pytest.raises(ValueError, match="Licensing"):
        dataset_prose.read_dataset_prose(tmp_path / "bad.md")


def test_the_9class_shortcut_in_the_limitations_matches_the_data(data_dir):
    """The limitation text's numbers, recomputed from the data's manifest: every test melanoma and nevus is
    from the first archive batch, where Train has nevi and no melanoma."""
    import re

    import pandas as pd

    manifest = pd.read_csv(data_dir / "isic_9class" / "manifest.csv")
    manifest["number"] = manifest["isic_id"].str[5:].astype(int)
    test = manifest[(manifest["split"] == "test") & manifest["label"].isin(["melanoma", "nevus"])]
    batch = test["number"].max()
    train = manifest[(manifest["split"] == "train") & (manifest["number"] <= batch)]
    text = " ".join(dataset_prose.dataset_facts("isic_9class")["limitations"])
    assert f"all {len(test)} test melanomas and nevi" in text and f"ISIC_{batch:07d}" in text
    assert int(re.search(r"holds (\d+) nevi", text).group(1)) == (train["label"] == "nevus").sum()
    assert (train["label"] == "melanoma").sum() == 0
    first = manifest.loc[(manifest["split"] == "train") & (manifest["label"] == "melanoma"), "number"].min()
    assert f"first training melanoma is ISIC_{first:07d}" in text


def test_the_9class_source_shortcut_in_the_limitations_matches_the_data_and_the_model(data_dir):
    """Recomputed from the manifest (which images are HAM10000 images) and the committed Lite0's predictions."""
    import re

    import pandas as pd

    manifest = pd.read_csv(data_dir / "isic_9class" / "manifest.csv")
    manifest["ham"] = manifest["ham10000_dx"].notna()
    train = manifest[manifest["split"] == "train"]
    ham_only = sorted(train.loc[train["ham"], "label"].unique())
    text = " ".join(dataset_prose.dataset_facts("isic_9class")["limitations"])
    listed = [c for c in ham_only if train.loc[train["label"] == c, "ham"].all()]
    assert len(listed) == 6 and all(c in text for c in listed)
    assert train.loc[train["label"].isin(["melanoma", "seborrheic keratosis"]), "ham"].sum() == 0
    assert train.loc[train["label"] == "nevus", "ham"].sum() == 1 and "all nevi but 1" in text
    shifted = manifest[(manifest["split"] == "test") & manifest["label"].isin(listed) & ~manifest["ham"]]
    assert f"**{len(shifted)}** test images of those six classes" in text
    predictions = model_zoo.read_predictions("efficientnet_lite0_224_isic_9class")
    test = {row["image_id"]: row for row in predictions if row["split"] == "test"}
    on_shifted = [test[i] for i in shifted["isic_id"]]
    right = sum(r["true"] == r["predicted"] for r in on_shifted)
    mel_or_nevus = sum(r["predicted"] in ("melanoma", "nevus") for r in on_shifted)
    assert re.search(rf"gets {right} of them right and calls {mel_or_nevus} melanoma or nevus", text)
    ham_test = [test[i] for i in manifest.loc[(manifest["split"] == "test") & manifest["ham"], "isic_id"]]
    assert f"{sum(r['true'] == r['predicted'] for r in ham_test)} of the {len(ham_test)} test HAM10000" in text

