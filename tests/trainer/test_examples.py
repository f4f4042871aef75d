"""`python -m trainer examples` and the committed assets/examples: seeded, test split only, every class, small."""
from __future__ import annotations

import csv
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from model_zoo import datadir
from model_zoo.examples import EXAMPLES_DIR, LICENSE_FILE, MANIFEST_COLUMNS, MANIFEST_FILE, bundled_cases
from trainer import data
from trainer.cli import main
from trainer.examples import MAX_BYTES, ExamplesError, folder_bytes, write_examples

ROOT = Path(__file__).resolve().parents[2]
SMALL = 2                   # per class in the scratch runs: enough to draw, quick to copy


def _manifest(folder: Path) -> list[dict]:
    with open(folder / MANIFEST_FILE, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _test_split(dataset: str) -> pd.DataFrame:
    split = data.read_split(dataset)
    return split[split["split"] == "test"]


def _run(out: Path, data_dir: Path, per_class: int = SMALL, seed: int = 7) -> int:
    return main(["examples", "--data-dir", str(data_dir), "--per-class", str(per_class), "--seed", str(seed),
                 "--out", str(out)])


@pytest.fixture(scope="module")
def scratch_runs(tmp_path_factory, data_dir) -> tuple[Path, Path, Path]:
    """The command run twice with one seed and once with another, each into its own scratch folder."""
    base = tmp_path_factory.mktemp("examples")
    first, again, other = base / "first", base / "again", base / "other"
    assert _run(first, data_dir) == 0
    assert _run(again, data_dir) == 0
    assert _run(other, data_dir, seed=8) == 0
    return first, again, other


def test_the_command_is_seeded_and_reproducible(scratch_runs):
    first, again, other = scratch_runs
    assert _tree(first) == _tree(again), "the same seed must give the same files, byte for byte"
    assert [r["case_id"] for r in _manifest(first)] != [r["case_id"] for r in _manifest(other)], \
        "another seed draws other images: the draw is random, not a fixed pick"


def test_the_command_draws_test_images_of_every_class_byte_for_byte(scratch_runs, data_dir):
    rows = _manifest(scratch_runs[0])
    assert rows and list(rows[0]) == list(MANIFEST_COLUMNS)
    for dataset in data.DATASETS:
        test = _test_split(dataset).set_index("image_id")
        mine = [r for r in rows if r["dataset"] == dataset]
        assert {r["image_id"] for r in mine} <= set(test.index), "test-split images only"
        drawn = Counter(r["label"] for r in mine)
        expected = {label: min(SMALL, n) for label, n in test["label"].value_counts().items()}
        assert drawn == expected, "every class of the test split, SMALL of each (or all it has)"
        for row in mine:
            assert row["label"] == test.loc[row["image_id"], "label"]
            source = data_dir / dataset / test.loc[row["image_id"], "path"]
            assert (scratch_runs[0] / row["file"]).read_bytes() == source.read_bytes()
            assert row["licence"] and row["attribution"] and row["source"]
    assert "vascular lesion" in {r["label"] for r in rows} and "vasc" in {r["label"] for r in rows}
    ham = [r for r in rows if r["dataset"] == "ham10000"]
    assert all(r["sex"] and r["site"] for r in ham), "HAM10000 cases carry the patient's details"
    assert (scratch_runs[0] / LICENSE_FILE).is_file()


def test_a_run_that_would_be_too_large_changes_nothing(tmp_path, data_dir):
    out = tmp_path / "examples"
    out.mkdir()
    (out / "keep.txt").write_text("the folder as it was")
    (tmp_path / ".tmp-examples-killed").mkdir()          # what a killed run leaves behind
    with pytest.raises(ExamplesError, match="more than"):
        write_examples(data_dir, per_class=1, out=out, max_bytes=10_000)
    assert _tree(out) == {"keep.txt": b"the folder as it was"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["examples"], "no temporary folder is left behind"


def test_the_cli_refuses_a_data_folder_without_data(tmp_path, capsys):
    assert main(["examples", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "no isic_9class/ or ham10000/" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_examples_has_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["examples", "--help"])
    assert exit_info.value.code == 0
    assert "--per-class" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ the committed folder
def test_committed_examples_match_their_manifest():
    rows = _manifest(EXAMPLES_DIR)
    listed = {r["file"] for r in rows}
    on_disk = {str(p.relative_to(EXAMPLES_DIR)) for p in EXAMPLES_DIR.rglob("*") if p.is_file()}
    assert on_disk == listed | {MANIFEST_FILE, LICENSE_FILE}, "every file listed, nothing else in the folder"
    assert folder_bytes(EXAMPLES_DIR) <= MAX_BYTES
    assert len({r["case_id"] for r in rows}) == len(rows)
    assert len(bundled_cases()) == len(rows)
    for dataset in data.DATASETS:
        test = _test_split(dataset).set_index("image_id")
        mine = [r for r in rows if r["dataset"] == dataset]
        assert {r["image_id"] for r in mine} <= set(test.index), f"{dataset}: test-split ids only"
        assert all(r["label"] == test.loc[r["image_id"], "label"] for r in mine)
        drawn = Counter(r["label"] for r in mine)
        for label, n in test["label"].value_counts().items():
            assert drawn[label] >= min(4, n), f"{dataset}/{label}: {drawn[label]} bundled of {n} in test"


def test_committed_examples_are_what_the_command_writes(tmp_path, data_dir):
    """The committed folder is the command's output with its defaults, not a hand-made selection."""
    out = tmp_path / "examples"
    assert main(["examples", "--data-dir", str(data_dir), "--out", str(out)]) == 0
    assert _tree(out) == _tree(EXAMPLES_DIR)


def test_dataset_images_are_committed_only_under_assets_examples():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    images = [f for f in files if f.lower().endswith((".jpg", ".jpeg", ".bmp", ".tif", ".tiff"))]
    assert all(f.startswith("assets/examples/") for f in images), images


# ----------------------------------------------------------------------------------- where the data is
def test_an_explicit_data_folder_is_never_silently_replaced(tmp_path, monkeypatch, data_dir):
    monkeypatch.setenv(datadir.DATA_ENV, str(tmp_path))
    assert datadir.find_data_dir() is None, "the app treats an empty $DERMLAB_DATA_DIR as 'no data'"
    with pytest.raises(data.DataError, match=datadir.DATA_ENV):
        data.resolve_data_dir()
    assert data.resolve_data_dir(data_dir) == data_dir, "--data-dir comes first"
    monkeypatch.setenv(datadir.DATA_ENV, str(data_dir))
    assert data.resolve_data_dir() == data_dir == datadir.find_data_dir()
    monkeypatch.delenv(datadir.DATA_ENV)
    assert datadir.candidate() == (datadir.DEFAULT_DATA_DIR, datadir.DEFAULT)
