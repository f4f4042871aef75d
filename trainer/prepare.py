"""`python -m trainer prepare`: a public download or any labelled folder -> a dataset the trainer reads.

The source is read by trainer/sources.py, every image is opened once (and hashed), and the dataset is written
to DATA_DIR/NAME/ in one piece: under a hidden temporary name first, then renamed, so a killed prepare leaves
no half-written dataset where the trainer or the app would see it. What lands there:

- images/<label>/<image_id>.<ext>: copied byte for byte, or reduced to --max-side (longer side, Lanczos,
  JPEG quality 90) after the shared decoding rules (model_zoo.preprocessing.load_image: EXIF-upright RGB);
- manifest.csv: one row per image: label, ids, metadata, sha256 and sizes;
- split.csv: train / val / test, grouped by patient or lesion where the source has ids, stratified by label
  (model_zoo.splits, the rule HAM10000's saved split was made with); a download's own test split is kept;
- duplicates.csv: byte-identical files (same sha256), all but one removed; skipped.csv: with --skip-bad, the
  images left out and why; dataset.json: counts, how it was made, and the marker that makes it a dataset.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import shlex
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import pandas as pd
from PIL import Image, ImageOps

from model_zoo import datadir, splits, store
from model_zoo.preprocessing import ImageError, load_image

from .sources import PrepareError, SourceImages, listed, read_source

log = logging.getLogger(__name__)
JPEG_QUALITY = 90
WORKERS = 8                                # image decoding threads (Pillow releases the GIL while decoding)
MIN_PER_CLASS = 2                          # one image to learn from, one to test on
PROGRESS_EVERY = 1000
MANIFEST_FILE, DUPLICATES_FILE, SKIPPED_FILE = "manifest.csv", "duplicates.csv", "skipped.csv"
GROUP_COLUMNS = ("patient_id", "lesion_id")    # the first one the source has decides the grouping
METADATA_COLUMNS = ("lesion_id", "patient_id", "age", "sex", "localization", "dx_type")
SPLIT_COLUMNS = ["image_id", "path", "label", "lesion_id", "label_conflict", "split"]
LEAK = "excluded_lesion_leak"              # a training image of a group that also has a test image


def prepare(source: str | Path, fmt: str, name: str, data_dir: Optional[str | Path] = None,
            max_side: Optional[int] = None, skip_bad: bool = False, overwrite: bool = False, seed: int = splits.SEED,
            ground_truth: Optional[str | Path] = None, metadata: Optional[str | Path] = None) -> Path:
    """Check `source`, then write the dataset `name` into the data folder; returns its folder."""
    problem = datadir.name_problem(name)
    if problem:
        raise PrepareError(problem)
    if max_side is not None and max_side < 32:
        raise PrepareError(f"--max-side {max_side} is too small to keep a lesion recognisable (at least 32).")
    target_root, _ = datadir.candidate(data_dir)
    _check_target(target_root, name, overwrite)
    found = read_source(Path(source), fmt, ground_truth=ground_truth, metadata=metadata)
    rows, skipped = _checked_images(found, skip_bad)
    kept, duplicates = drop_duplicates(rows)
    check_classes(kept, found.classes)
    kept = unique_ids(kept)
    kept["split"], grouped_by, rule = assign_splits(kept, seed)
    kept["path"] = [stored_path(r.label, r.image_id, r.file, _resized(r, max_side)) for r in kept.itertuples()]
    info = _summary(kept, duplicates, skipped, found, Path(source), fmt, name, max_side, seed, grouped_by, rule)

    def fill(folder: Path) -> None:
        write_images(kept, folder, max_side)
        manifest_table(kept, Path(source)).to_csv(folder / MANIFEST_FILE, index=False)
        split_table(kept).to_csv(folder / datadir.PREPARED_SPLIT, index=False)
        duplicates.assign(source_file=[_relative(f, Path(source)) for f in duplicates["source_file"]]).to_csv(
            folder / DUPLICATES_FILE, index=False)
        if len(skipped):
            skipped.assign(file=[_relative(f, Path(source)) if f else "" for f in skipped["file"]]).to_csv(
                folder / SKIPPED_FILE, index=False)
        (folder / datadir.PREPARED_FILE).write_text(json.dumps(info, indent=2) + "\n")

    target_root.mkdir(parents=True, exist_ok=True)
    _remove_stale(target_root, name)
    # The zoo's atomic folder write serves any folder: filled under .tmp-NAME-*, then one rename.
    final = store.write_model_folder(name, fill, target_root)
    log.info("Prepared %s: %d images, %d classes, in %s", name, len(kept), kept["label"].nunique(), final)
    return final


# ---------------------------------------------------------------- checks
def _check_target(root: Path, name: str, overwrite: bool) -> None:
    folder = root / name
    if folder.exists() and not datadir.is_prepared(root, name):
        raise PrepareError(f"{folder} exists and is not a prepared dataset; choose another --name.")
    if folder.exists() and not overwrite:
        raise PrepareError(f"A dataset called {name!r} exists in {root}; pass --overwrite to replace it (the old "
                           "one stays in place until the new one is complete).")


def _remove_stale(root: Path, name: str) -> None:
    """Temporary folders a killed prepare of `name` left behind (hidden; never read as datasets)."""
    for stale in root.glob(f".tmp-{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def inspect_image(path: str) -> tuple[str, int, int, str]:
    """(sha256 of the file, width, height, problem): the image fully decoded, as the trainer will decode it."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return "", 0, 0, f"cannot be read ({type(exc).__name__}: {exc})"
    digest = hashlib.sha256(data).hexdigest()
    try:
        width, height = load_image(data).size
    except ImageError as exc:
        return digest, 0, 0, str(exc)
    return digest, width, height, ""


def inspect_images(files: list[str]) -> list[tuple[str, int, int, str]]:
    """inspect_image for each file, in threads, with a progress line every PROGRESS_EVERY images."""
    results = []
    with ThreadPoolExecutor(WORKERS) as pool:
        for i, result in enumerate(pool.map(inspect_image, files), start=1):
            results.append(result)
            if i % PROGRESS_EVERY == 0:
                log.info("checked %d / %d images", i, len(files))
    return results


def _checked_images(found: SourceImages, skip_bad: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows whose image opens, with sha256 and size; refused (or, with skip_bad, listed) otherwise."""
    rows = found.rows.copy()
    skipped = pd.DataFrame({"image_id": found.missing, "file": "", "reason": "metadata row without an image file"})
    if found.missing and not skip_bad:
        raise PrepareError(f"{len(found.missing)} metadata row(s) name an image the source does not have: "
                           f"{listed(found.missing)}. Add the images, delete those rows, or pass --skip-bad to leave "
                           f"them out (they are then listed in {SKIPPED_FILE}).")
    if rows.empty:
        raise PrepareError("The source holds no labelled images.")
    rows["sha256"], rows["width"], rows["height"], problems = zip(*inspect_images(rows["file"].tolist()))
    bad = [p != "" for p in problems]
    if any(bad) and not skip_bad:
        named = [f"{f}: {p}" for f, p, b in zip(rows["file"], problems, bad) if b]
        raise PrepareError(f"{len(named)} image(s) cannot be opened (damaged, truncated or not an image): "
                           f"{listed(named, 3)}. Replace or delete them, or pass --skip-bad to leave them out "
                           f"(listed in {SKIPPED_FILE}).")
    broken = pd.DataFrame({"image_id": rows.loc[bad, "image_id"], "file": rows.loc[bad, "file"],
                           "reason": [p for p, b in zip(problems, bad) if b]})
    return rows[[not b for b in bad]].reset_index(drop=True), pd.concat([skipped, broken], ignore_index=True)


def drop_duplicates(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept rows, removed duplicates): one image per sha256. The copy in a download's test split is kept (no
    image in two splits), else the lowest image id; copies filed under different labels mark the kept one
    label_conflict=1 with the others in alt_labels (select() leaves those out of training and validation)."""
    order = rows.assign(_test=rows["source_split"] != "test").sort_values(["_test", "image_id", "file"])
    first = order.drop_duplicates("sha256")
    labels = order.groupby("sha256")["label"].agg(lambda s: sorted(set(s)))
    kept = first.drop(columns="_test").set_index("sha256")
    kept["alt_labels"] = [";".join(l for l in labels[h] if l != kept.at[h, "label"]) for h in kept.index]
    kept["label_conflict"] = (kept["alt_labels"] != "").astype(int)
    removed = order.drop(first.index)
    duplicates = pd.DataFrame({"image_id": removed["image_id"], "source_file": removed["file"],
                               "label": removed["label"], "sha256": removed["sha256"],
                               "kept_image_id": kept.loc[removed["sha256"], "image_id"].to_numpy(),
                               "kept_label": kept.loc[removed["sha256"], "label"].to_numpy()})
    return kept.reset_index().sort_values(["label", "image_id"]).reset_index(drop=True), duplicates


def check_classes(rows: pd.DataFrame, declared: list[str]) -> None:
    """Refuse empty classes and classes with fewer than MIN_PER_CLASS images (after duplicates are removed)."""
    counts = rows["label"].value_counts()
    empty = [c for c in declared if counts.get(c, 0) == 0]
    few = [f"'{c}' ({n})" for c, n in sorted(counts.items()) if n < MIN_PER_CLASS]
    parts = []
    if empty:
        parts.append(f"class(es) without images: {listed([repr(c) for c in empty], 10)}")
    if few:
        parts.append(f"class(es) with a single image: {listed(few, 10)}")
    if parts:
        raise PrepareError(f"{'; '.join(parts).capitalize()}. Every class needs at least {MIN_PER_CLASS} images "
                           "(one to learn from, one to test on): add images or remove the class.")
    if len(counts) < 2:
        raise PrepareError(f"Only one class ({counts.index[0]!r}): a classifier needs at least two.")


def unique_ids(rows: pd.DataFrame) -> pd.DataFrame:
    """Image ids made file-name safe and unique: two class folders may both hold an img001.jpg (different images)."""
    rows = rows.copy()
    rows["image_id"] = rows["image_id"].map(_safe)
    clash = rows["image_id"].duplicated(keep=False)
    rows.loc[clash, "image_id"] = [f"{_safe(l)}__{i}" for l, i in zip(rows.loc[clash, "label"],
                                                                     rows.loc[clash, "image_id"])]
    counter = rows.groupby("image_id").cumcount()
    rows.loc[counter > 0, "image_id"] += "_" + (counter[counter > 0] + 1).astype(str)
    return rows


# ---------------------------------------------------------------- splitting
def split_groups(rows: pd.DataFrame) -> tuple[pd.Series, str]:
    """(group per image, what it is): patient ids, else lesion ids, else each image alone (stratified only)."""
    for column in GROUP_COLUMNS:
        if column in rows.columns and rows[column].notna().any():
            return rows[column].fillna(rows["image_id"]).astype(str), column
    return rows["image_id"], "image_id (the source has no lesion or patient ids: stratified by label only)"


def assign_splits(rows: pd.DataFrame, seed: int = splits.SEED) -> tuple[list[str], str, str]:
    """(split per row, grouped by, the rule in words): 70/15/15 (about 72/14/14 for small sets), or the download's
    own test split with 15% of the rest as validation; a training image whose group also has a test image is set
    aside (LEAK), as in the 9-class split."""
    groups, grouped_by = split_groups(rows)
    try:
        if not (rows["source_split"] == "test").any():
            plan = splits.fold_plan(rows["label"])
            rule = (f"{splits.describe_plan(*plan)} train/validation/test ({plan[0]} stratified group folds, seed "
                    f"{seed}; model_zoo.splits)")
            return list(splits.grouped_split(rows["label"], groups, seed, *plan)), grouped_by, rule
        split = pd.Series("test", index=rows.index, dtype=object)
        train = rows["source_split"] != "test"
        split[train] = splits.validation_from_train(rows.loc[train, "label"], groups[train], seed)
    except splits.SplitError as exc:
        raise PrepareError(f"Too few images to split: {exc}") from exc
    split[train & groups.isin(set(groups[~train]))] = LEAK
    rule = (f"the download's own test split kept; {splits.VAL_FRACTION:.0%} of the rest as validation (stratified "
            f"group folds, seed {seed}); training images of a group with a test image set aside as {LEAK}")
    return split.tolist(), grouped_by, rule


# ---------------------------------------------------------------- writing
def _safe(text: str) -> str:
    """A file or folder name: letters, digits, space, '.', '_' and '-' kept; anything else becomes '_'."""
    return re.sub(r"[^A-Za-z0-9 ._-]", "_", str(text)).strip(" .") or "_"


def _resized(row, max_side: Optional[int]) -> bool:
    return bool(max_side) and max(int(row.width), int(row.height)) > max_side


def stored_path(label: str, image_id: str, source_file: str, resized: bool) -> str:
    """images/<label>/<image_id><ext>, relative to the dataset folder (a reduced image is a JPEG)."""
    suffix = ".jpg" if resized else Path(source_file).suffix.lower()
    return f"images/{_safe(label)}/{image_id}{suffix}"


def write_images(rows: pd.DataFrame, folder: Path, max_side: Optional[int]) -> None:
    """Every image to its stored path, in threads."""
    jobs = [(r.file, folder / r.path, max_side if _resized(r, max_side) else None) for r in rows.itertuples()]
    with ThreadPoolExecutor(WORKERS) as pool:
        for i, _ in enumerate(pool.map(lambda job: _store(*job), jobs), start=1):
            if i % PROGRESS_EVERY == 0:
                log.info("wrote %d / %d images", i, len(jobs))


def _store(source: str, target: Path, max_side: Optional[int]) -> None:
    """Copy byte for byte, or decode as the trainer does and reduce the longer side to `max_side`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if max_side:
        image = ImageOps.contain(load_image(source), (max_side, max_side), Image.Resampling.LANCZOS)
        image.save(target, "JPEG", quality=JPEG_QUALITY)
    else:
        shutil.copyfile(source, target)


def manifest_table(rows: pd.DataFrame, source: Path) -> pd.DataFrame:
    """manifest.csv: path, label, ids, the source's metadata, sha256 and sizes."""
    table = pd.DataFrame({"image_id": rows["image_id"], "path": rows["path"], "label": rows["label"],
                          "source_split": rows["source_split"].replace("", None),
                          "source_path": [_relative(f, source) for f in rows["file"]],
                          "sha256": rows["sha256"], "original_width": rows["width"],
                          "original_height": rows["height"]})
    for column in METADATA_COLUMNS:
        if column in rows.columns:
            table[column] = rows[column]
    table["label_conflict"] = rows["label_conflict"]
    table["alt_labels"] = rows["alt_labels"]
    return table


def split_table(rows: pd.DataFrame) -> pd.DataFrame:
    """split.csv, the columns of trainer/splits/*.csv: lesion_id is the lesion where known, else the image."""
    lesion = rows["lesion_id"].fillna(rows["image_id"]) if "lesion_id" in rows.columns else rows["image_id"]
    table = rows.assign(lesion_id=lesion)[SPLIT_COLUMNS]
    return table.sort_values(["split", "label", "image_id"]).reset_index(drop=True)


def _relative(file: str, source: Path) -> str:
    try:
        return str(Path(file).resolve().relative_to(source.resolve()))
    except ValueError:
        return file


def _summary(rows: pd.DataFrame, duplicates: pd.DataFrame, skipped: pd.DataFrame, found: SourceImages,
             source: Path, fmt: str, name: str, max_side: Optional[int], seed: int, grouped_by: str,
             rule: str) -> dict:
    """dataset.json: what is in the dataset and exactly how it was made."""
    counts = rows.groupby(["split", "label"]).size()
    return {
        "name": name, "format": fmt, "source": str(source.resolve()),
        "prepared": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
        "command": "python -m trainer prepare " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        if sys.argv[1:2] == ["prepare"] else f"trainer.prepare.prepare({str(source)!r}, {fmt!r}, {name!r}, ...)",
        "images": int(len(rows)),
        "classes": {str(k): int(v) for k, v in rows["label"].value_counts().sort_index().items()},
        "splits": {str(s): {str(l): int(n) for l, n in counts[s].items()} for s in counts.index.levels[0]
                   if s in counts.index.get_level_values(0)},
        "grouped_by": grouped_by, "seed": seed,
        "split_rule": rule,
        "images_stored": (f"reduced to {max_side} px on the longer side where larger (Lanczos, JPEG quality "
                          f"{JPEG_QUALITY}), else copied byte for byte" if max_side else "copied byte for byte"),
        "max_side": max_side,
        "duplicates_removed": int(len(duplicates)),
        "label_conflicts": int(rows["label_conflict"].sum()),
        "skipped": {"metadata_rows_without_image": int((skipped["file"] == "").sum()),
                    "unreadable_images": int((skipped["file"] != "").sum())},
        "metadata_columns": [c for c in METADATA_COLUMNS if c in rows.columns and rows[c].notna().any()],
        "notes": found.notes,
    }
