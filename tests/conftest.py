"""Shared fixtures: the real data directory, a scratch zoo, small real image sets."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
DATA_DIR = Path(os.environ.get("DERMLAB_DATA_DIR") or ROOT.parent / "shared" / "data")
WEIGHTS_DIR = ROOT.parent / "shared" / "weights"


def _require(path: Path, what: str) -> None:
    if not path.exists():
        if os.environ.get("CI") or os.environ.get("DERMLAB_REQUIRE_DATA"):
            pytest.fail(f"{what} missing at {path}; CI must have ../shared beside the repository")
        pytest.skip(f"{what} not found at {path}")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    _require(DATA_DIR / "isic_9class", "data directory")
    return DATA_DIR


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    _require(WEIGHTS_DIR / "mobilenet_v2_1.0_224_imagenet_no_top.h5", "ImageNet weights")
    return WEIGHTS_DIR


@pytest.fixture
def tmp_zoo(tmp_path, monkeypatch) -> Path:
    """An empty zoo that model_zoo uses for the duration of a test."""
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    monkeypatch.setenv("DERMLAB_ZOO", str(zoo))
    return zoo


@pytest.fixture(scope="session")
def test_images(data_dir) -> list[tuple[Path, str]]:
    """One real isic_9class test image per class: (path, label)."""
    import pandas as pd

    split = pd.read_csv(ROOT / "trainer" / "splits" / "isic_9class.csv")
    rows = split[split["split"] == "test"].groupby("label").head(1)
    return [(data_dir / "isic_9class" / p, label) for p, label in zip(rows["path"], rows["label"])]


@pytest.fixture
def no_data(tmp_path, monkeypatch) -> Path:
    """$DERMLAB_DATA_DIR at an empty folder, as on a hosted copy: the app must see no data (not fall back to
    ../shared/data) and use the bundled example cases. Streamlit's data caches are cleared around the test."""
    import streamlit as st

    from model_zoo import datadir

    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv(datadir.DATA_ENV, str(empty))
    st.cache_data.clear()
    yield empty
    st.cache_data.clear()
