"""Helpers shared by the quick-model, jobs and Train page tests (not a test module)."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
BACKBONE = "mobilenet_v2_ham10000"             # the smallest HAM10000 export (192 px, one network)
CLASSES = ("melanoma", "nevus", "dermatofibroma")
# Stands in for `python -m trainer train` in jobs tests: the same files (history_<phase>.csv per epoch, output).
FAKE_TRAINER = """
import pathlib, sys, time
run = pathlib.Path(sys.argv[1]); run.mkdir(parents=True, exist_ok=True)
history = run / "history_head.csv"
history.write_text("epoch,loss\\n")
for epoch in range({epochs}):
    print(f"epoch {{epoch + 1}}", flush=True)
    with open(history, "a") as handle:
        handle.write(f"{{epoch}},0.5\\n")
    time.sleep({pause})
sys.exit({code})
"""


def link_backbone(zoo: Path, model_id: str = BACKBONE) -> None:
    """A committed model in a scratch zoo, its files linked (not copied)."""
    (zoo / model_id).mkdir()
    for path in (ROOT / "model_zoo" / "models" / model_id).iterdir():
        os.symlink(path, zoo / model_id / path.name)


def class_zip_bytes(data_dir: Path, per_class: int = 20, top: str = "lesions", extra: dict | None = None) -> bytes:
    """A zip of CLASSES folders of 9-class images (inside `top`), plus `extra` {entry name: bytes}."""
    manifest = pd.read_csv(data_dir / "isic_9class" / "manifest.csv")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in CLASSES:
            for path in manifest.loc[manifest["label"] == label, "path"].head(per_class):
                archive.write(data_dir / "isic_9class" / path, f"{top}/{label}/{Path(path).name}")
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()
