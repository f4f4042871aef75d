"""`python -m trainer examples`: the bundled example cases (assets/examples) that a copy without data shows.

A few test-split images per class of each dataset, drawn at random with a fixed seed (never chosen for being
easy or for the models getting them right), copied byte for byte, with manifest.csv (true label, patient
details where known, source, licence, attribution) and LICENSE.md. The folder is written atomically and kept
small (MAX_BYTES), since it is committed to the repository.
"""
from __future__ import annotations

import csv
import random
import shutil
from pathlib import Path
from typing import Optional, Sequence

from model_zoo import store
from model_zoo.examples import (HAM10000, ISIC_ARCHIVE, LICENSE_FILE, MANIFEST_COLUMNS, MANIFEST_FILE, Case, by_class,
                                manifest_row, test_cases)

from .data import DATASETS, REPO_ROOT, SEED, SPLITS_DIR, refuse_test_only, resolve_data_dir

DEFAULT_OUT = REPO_ROOT / "assets" / "examples"
DEFAULT_PER_CLASS = 4
MAX_BYTES = 3_000_000                  # committed to git and shipped in every hosted copy


class ExamplesError(RuntimeError):
    """The examples cannot be written as asked (too large, image missing); nothing was changed."""


def draw(cases: Sequence[Case], per_class: int, seed: int) -> list[Case]:
    """Up to `per_class` cases of each class at random; the same seed gives the same draw on any machine."""
    picks: list[Case] = []
    for label, group in by_class(cases).items():
        rng = random.Random(f"{seed}:{group[0].dataset}:{label}")     # str seeds hash the same everywhere
        picks += sorted(rng.sample(group, min(per_class, len(group))), key=lambda c: c.image_id)
    return picks


def draw_examples(data_dir: Path, per_class: int = DEFAULT_PER_CLASS, seed: int = SEED,
                  datasets: Sequence[str] = DATASETS) -> list[Case]:
    """The drawn test-split cases of every dataset, their files checked."""
    for dataset in datasets:
        refuse_test_only(dataset, "drawing example cases")
    picks = [case for dataset in datasets for case in draw(test_cases(dataset, data_dir, SPLITS_DIR), per_class, seed)]
    missing = [str(case.path) for case in picks if not case.path.is_file()]
    if missing:
        raise ExamplesError(f"{len(missing)} drawn image(s) are missing from the data folder, e.g. {missing[0]}")
    return picks


def relative_file(case: Case) -> str:
    """Where the case's image goes inside the examples folder: no label in the name (a quiz shows it)."""
    return f"{case.dataset}/{case.image_id}{case.path.suffix.lower()}"


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def fill_folder(folder: Path, picks: Sequence[Case], per_class: int, seed: int, max_bytes: int) -> None:
    """Copy the images, write manifest.csv and LICENSE.md into `folder`; refuse when it outgrows max_bytes."""
    rows = []
    for case in picks:
        target = folder / relative_file(case)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(case.path, target)                      # byte for byte: no re-encoding
        rows.append(manifest_row(case, relative_file(case)))
    with open(folder / MANIFEST_FILE, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    (folder / LICENSE_FILE).write_text(license_markdown(picks, per_class, seed), encoding="utf-8")
    size = folder_bytes(folder)
    if size > max_bytes:
        raise ExamplesError(f"The examples would take {size:,} bytes, more than the {max_bytes:,} allowed; "
                            "use a smaller --per-class.")


def _remove_leftovers(out: Path) -> None:
    """Temporary folders of an earlier run that was killed (store.write_model_folder's naming)."""
    for leftover in list(out.parent.glob(f".tmp-{out.name}-*")) + list(out.parent.glob(f".old-{out.name}-*")):
        shutil.rmtree(leftover, ignore_errors=True)


def write_examples(data_dir: Optional[str | Path] = None, per_class: int = DEFAULT_PER_CLASS, seed: int = SEED,
                   out: str | Path = DEFAULT_OUT, max_bytes: int = MAX_BYTES) -> dict:
    """Draw and write the examples folder atomically (built beside `out`, then renamed); returns a summary."""
    if per_class < 1:
        raise ExamplesError("--per-class must be at least 1.")
    out = Path(out).resolve()
    picks = draw_examples(resolve_data_dir(data_dir), per_class, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out)
    store.write_model_folder(out.name, lambda folder: fill_folder(folder, picks, per_class, seed, max_bytes),
                             root=out.parent)
    return {"folder": str(out), "cases": len(picks), "bytes": folder_bytes(out), "per_class": _counts(picks)}


def _counts(picks: Sequence[Case]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for case in picks:
        counts.setdefault(case.dataset, {}).setdefault(case.label, 0)
        counts[case.dataset][case.label] += 1
    return counts


def license_markdown(picks: Sequence[Case], per_class: int, seed: int) -> str:
    """LICENSE.md: each source's terms (from the data folders' SOURCE.md) and what the images may be used for."""
    table = "\n".join(f"| {dataset} | {label} | {n} |" for dataset, labels in _counts(picks).items()
                      for label, n in labels.items())
    return f"""# Bundled example cases: licences and attribution

These images are **not** covered by the licence of this project's code. They are byte-for-byte copies of
test-split images of two public dermoscopy datasets, drawn at random within each class by
`python -m trainer examples --per-class {per_class} --seed {seed}` (not chosen for being easy or for the models
getting them right). They are redistributed here **for non-commercial teaching and research only**, with
attribution, under their sources' terms below. They are not for diagnosis: this is not a medical device.
Each image's source, licence and attribution are in `manifest.csv`.

## HAM10000 (`ham10000/`, and the 9-class images whose source in manifest.csv says "HAM10000 image")

HAM10000 is published under **{HAM10000.licence}** (the Kaggle mirror states CC BY-NC-SA 4.0): non-commercial use,
attribution required. Cite:

> {HAM10000.attribution}

Copy taken from the public GitHub repository mmalek06/bounding-box-detection-ham1000
(commit fcf5ea80af329997639e3bdb65bd3bf80a0571d7), 200 x 150 px as stored there.

## ISIC Archive images (`isic_9class/`)

From the Kaggle set "Skin cancer ISIC The International Skin Imaging Collaboration" (9 classes), copy taken from
the public GitHub repository AmitBytesSage/Melanoma-Skin-Cancer-Detection-Model
(commit c9a7a7088c57aa7bc02939db9a233a1c44eb11ee), 180 x 180 px as stored there. All its images come from the
ISIC Archive, which publishes each image under CC-0, CC-BY or CC-BY-NC 4.0 (most challenge images: CC-BY-NC 4.0);
the HAM10000 images among them are CC BY-NC 4.0 (citation above). The licence of each image and the Kaggle page's
licence text were not checked, so treat every image here as **CC BY-NC 4.0:
non-commercial, attribution required**. Attribution: {ISIC_ARCHIVE.attribution}.

## Counts

| dataset | class | images |
|---|---|---|
{table}
"""
