"""Readers for the public downloads and any labelled folder: what `python -m trainer prepare` starts from.

Each reader turns one layout into the same table (one row per labelled image: its file, label, ids and
metadata), checking only what the layout itself promises: file and column names, the label vocabulary,
metadata rows that name an image the download lacks. Opening the images is trainer/prepare.py's job.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import pandas as pd

from model_zoo.constants import IMAGE_SUFFIXES

HAM_METADATA = "HAM10000_metadata.csv"
HAM_PARTS = ("HAM10000_images_part_1", "HAM10000_images_part_2")
HAM_LABELS = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
ISIC9_SPLITS = {"Train": "train", "Test": "test"}
ISIC9_LABELS = ("actinic keratosis", "basal cell carcinoma", "dermatofibroma", "melanoma", "nevus",
                "pigmented benign keratosis", "seborrheic keratosis", "squamous cell carcinoma", "vascular lesion")
# ISIC 2019 ground-truth columns -> labels. Lower-case codes: HAM10000's where they mean the same (mel, nv, bcc,
# bkl, df, vasc); AK and SCC stay apart (HAM10000's akiec holds actinic keratoses and SCC in situ together).
ISIC_CODES = {"MEL": "mel", "NV": "nv", "BCC": "bcc", "AK": "ak", "BKL": "bkl", "DF": "df", "VASC": "vasc",
              "SCC": "scc"}
ISIC_UNKNOWN = "UNK"                       # "none of the others": not a diagnosis a model can learn
IMAGE_COLUMNS = ("image", "image_name")
# metadata column -> manifest column (HAM10000's names, so subgroup metrics read every dataset alike)
ISIC_METADATA = {"age_approx": "age", "sex": "sex", "anatom_site_general": "localization",
                 "anatom_site_general_challenge": "localization", "lesion_id": "lesion_id", "patient_id": "patient_id"}
HAM_OPTIONAL = ("dx_type", "age", "sex", "localization")
MAX_LISTED = 5                             # examples named in a message


class PrepareError(ValueError):
    """A source that cannot be prepared; the message says what is wrong and how to fix it."""


@dataclass
class SourceImages:
    """What a reader found: one row per labelled image, before any image is opened.

    rows: file (absolute path), label, image_id, source_split ("" or the download's own "train" / "test"),
    and where the source has them lesion_id, patient_id, age, sex, localization, dx_type.
    """

    rows: pd.DataFrame
    classes: list[str]                                       # every class the source declares (empty ones too)
    missing: list[str] = field(default_factory=list)         # metadata rows whose image file is absent
    notes: list[str] = field(default_factory=list)


def listed(items: Sequence[str], limit: int = MAX_LISTED) -> str:
    """'a, b, c and 4 more' for messages."""
    items = [str(i) for i in items]
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (any depth), hidden files and folders (and macOS metadata) left out."""
    return sorted(p for p in folder.rglob("*") if is_image_file(p)
                  and not any(part.startswith((".", "__MACOSX")) for part in p.relative_to(folder).parts))


def index_images(folders: Iterable[Path]) -> dict[str, Path]:
    """Image file stem -> path; two different files with one stem make the source ambiguous."""
    index: dict[str, Path] = {}
    clashes = []
    for folder in folders:
        for path in image_files(folder):
            if path.stem in index:
                clashes.append(f"{index[path.stem]} and {path}")
            index.setdefault(path.stem, path)
    if clashes:
        raise PrepareError(f"{len(clashes)} image names occur twice, so the metadata cannot tell which file it "
                           f"means: {listed(clashes, 3)}. Keep one copy of each.")
    return index


def read_table(path: Path, required: Sequence[str], what: str) -> pd.DataFrame:
    """A CSV read as text, refused with one message naming every missing column (and a likely misnaming)."""
    if not path.is_file():
        raise PrepareError(f"{what} not found: {path}.")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PrepareError(f"{path.name} is not a readable CSV file ({type(exc).__name__}: {exc}).") from exc
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        hints = []
        for column in missing:
            close = difflib.get_close_matches(column.lower(), [c.lower() for c in table.columns], n=1, cutoff=0.6)
            if close:
                found = next(c for c in table.columns if c.lower() == close[0])
                hints.append(f"'{found}' looks like '{column}': rename it")
        raise PrepareError(f"{path.name} lacks the column(s) {listed([repr(c) for c in missing], 10)}; it has "
                           f"{listed([repr(c) for c in table.columns], 12)}."
                           + (" " + "; ".join(hints) + "." if hints else ""))
    return table


def check_labels(labels: pd.Series, known: Sequence[str], where: str) -> None:
    """Refuse labels outside the format's vocabulary, naming each with its count."""
    values = labels.fillna("(empty)")
    unknown = values[~values.isin(known)].value_counts()
    if len(unknown):
        found = [f"'{label}' ({count} image{'s' * (count > 1)})" for label, count in unknown.items()]
        raise PrepareError(f"Unknown label(s) in {where}: {listed(found, 8)}. This format's labels are "
                           f"{', '.join(known)}; fix or remove those rows (or prepare the images with "
                           "--format folders, one folder per class).")


def _root_with(source: Path, names: Sequence[str]) -> Path:
    """`source`, or its one sub-folder that holds all of `names` (a zip unpacked into a folder of its own)."""
    if all((source / n).is_dir() for n in names):
        return source
    inner = [p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")] if source.is_dir() else []
    if len(inner) == 1 and all((inner[0] / n).is_dir() for n in names):
        return inner[0]
    raise PrepareError(f"{source} has no {' and '.join(n + '/' for n in names)} folders.")


# ---------------------------------------------------------------- the formats
def read_ham10000(source: Path, **_) -> SourceImages:
    """The official HAM10000 download: HAM10000_metadata.csv beside HAM10000_images_part_1/ and _part_2/."""
    parts = [source / p for p in HAM_PARTS]
    absent = [p.name + "/" for p in parts if not p.is_dir()]
    if absent:
        raise PrepareError(f"{source} lacks {' and '.join(absent)}: the HAM10000 download keeps its images in "
                           f"{' and '.join(HAM_PARTS)} beside {HAM_METADATA}.")
    table = read_table(source / HAM_METADATA, ("lesion_id", "image_id", "dx"), HAM_METADATA)
    check_labels(table["dx"], HAM_LABELS, f"{HAM_METADATA} (column dx)")
    files = index_images(parts)
    found = table["image_id"].map(files)
    rows = pd.DataFrame({"file": found, "label": table["dx"], "image_id": table["image_id"], "source_split": "",
                         "lesion_id": table["lesion_id"]})
    for column in HAM_OPTIONAL:
        if column in table.columns:
            rows[column] = table[column]
    return SourceImages(rows[found.notna()].reset_index(drop=True), sorted(set(table["dx"])),
                        missing=table.loc[found.isna(), "image_id"].tolist())


def read_isic_9class(source: Path, **_) -> SourceImages:
    """The Kaggle "Skin cancer ISIC" download: Train/<class>/ and Test/<class>/; its Test stays the test split."""
    root = _root_with(source, tuple(ISIC9_SPLITS))
    records, classes = [], set()
    for folder, split in ISIC9_SPLITS.items():
        for class_dir in sorted(p for p in (root / folder).iterdir() if p.is_dir() and not p.name.startswith(".")):
            classes.add(class_dir.name)
            records += [(str(path), class_dir.name, path.stem, split) for path in image_files(class_dir)]
    check_labels(pd.Series(sorted(classes)), ISIC9_LABELS, f"the class folders of {root}")
    rows = pd.DataFrame(records, columns=["file", "label", "image_id", "source_split"])
    return SourceImages(rows, sorted(classes))


def read_isic_challenge(source: Path, ground_truth: Optional[Path] = None, metadata: Optional[Path] = None,
                        **_) -> SourceImages:
    """ISIC 2019/2020-style: an images folder, a one-hot ground-truth CSV (image,MEL,NV,...), and optionally a
    metadata CSV (image, age_approx, sex, anatom_site_general, lesion_id / patient_id)."""
    ground_truth = Path(ground_truth) if ground_truth else _find_csv(source, "groundtruth")
    truth = read_table(ground_truth, (), "The ground-truth CSV")
    image_column = next((c for c in IMAGE_COLUMNS if c in truth.columns), None)
    if image_column is None:
        truth = read_table(ground_truth, ("image",), "The ground-truth CSV")          # the same message as any CSV
    columns = [c for c in truth.columns if c != image_column]
    unknown = [c for c in columns if c not in ISIC_CODES and c != ISIC_UNKNOWN]
    if unknown:
        raise PrepareError(f"Unknown label column(s) in {ground_truth.name}: {listed(unknown)}. The ground truth "
                           f"has one column per diagnosis: {', '.join(ISIC_CODES)} (and {ISIC_UNKNOWN}).")
    values = truth[columns].apply(pd.to_numeric, errors="coerce")
    one_hot = values.isin([0, 1]).all(axis=1) & (values.sum(axis=1) == 1)
    if not one_hot.all():
        bad = truth.loc[~one_hot, image_column].tolist()
        raise PrepareError(f"{len(bad)} row(s) of {ground_truth.name} are not one-hot (exactly one 1 and 0 "
                           f"elsewhere): {listed(bad)}.")
    codes = values.idxmax(axis=1)
    check_labels(codes, list(ISIC_CODES), f"{ground_truth.name} (an image labelled {ISIC_UNKNOWN} has no diagnosis)")
    rows = pd.DataFrame({"image_id": truth[image_column], "label": codes.map(ISIC_CODES), "source_split": ""})
    if metadata or _find_csv(source, "metadata", required=False):
        rows = _join_isic_metadata(rows, Path(metadata) if metadata else _find_csv(source, "metadata"))
    files = index_images([source])
    rows.insert(0, "file", rows["image_id"].map(files))
    present = [ISIC_CODES[c] for c in columns if c in ISIC_CODES]
    return SourceImages(rows[rows["file"].notna()].reset_index(drop=True), sorted(present),
                        missing=rows.loc[rows["file"].isna(), "image_id"].tolist())


def _join_isic_metadata(rows: pd.DataFrame, path: Path) -> pd.DataFrame:
    table = read_table(path, (), "The metadata CSV")
    image_column = next((c for c in IMAGE_COLUMNS if c in table.columns), None)
    if image_column is None:
        read_table(path, ("image",), "The metadata CSV")
    known = {c: ISIC_METADATA[c] for c in table.columns if c in ISIC_METADATA}
    if not known:
        raise PrepareError(f"{path.name} has none of the metadata columns {', '.join(ISIC_METADATA)}; it has "
                           f"{listed(list(table.columns), 12)}.")
    details = table[[image_column, *known]].rename(columns={image_column: "image_id", **known})
    details = details.loc[:, ~details.columns.duplicated()].drop_duplicates("image_id")
    return rows.merge(details, on="image_id", how="left")


def _find_csv(source: Path, word: str, required: bool = True) -> Optional[Path]:
    """The one CSV in `source` whose name contains `word` (ISIC_2019_Training_GroundTruth.csv, ..._Metadata.csv)."""
    found = sorted(p for p in source.glob("*.csv") if word in p.name.lower().replace("_", "").replace("-", ""))
    if len(found) == 1:
        return found[0]
    if not required and not found:
        return None
    what = {"groundtruth": "--ground-truth", "metadata": "--metadata"}[word]
    raise PrepareError(f"{'No' if not found else 'More than one'} CSV with '{word}' in its name in {source}"
                       f"{': ' + listed([p.name for p in found]) if found else ''}; name the file with {what} CSV.")


def read_folders(source: Path, **_) -> SourceImages:
    """Any labelled folder: one sub-folder per class (images at any depth inside it)."""
    class_dirs = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX")))
    if len(class_dirs) < 2:
        raise PrepareError(f"{source} should hold one folder per class (at least two); it has "
                           f"{len(class_dirs)} folder(s).")
    records, notes = [], []
    for class_dir in class_dirs:
        records += [(str(path), class_dir.name, path.stem, "") for path in image_files(class_dir)]
    loose = [p.name for p in source.iterdir() if is_image_file(p)]
    if loose:
        notes.append(f"{len(loose)} image(s) outside the class folders were left out: {listed(loose)}.")
    return SourceImages(pd.DataFrame(records, columns=["file", "label", "image_id", "source_split"]),
                        [p.name for p in class_dirs], notes=notes)


Reader = Callable[..., SourceImages]
FORMATS: dict[str, Reader] = {"ham10000": read_ham10000, "isic_9class": read_isic_9class,
                              "isic_challenge": read_isic_challenge, "folders": read_folders}


def read_source(source: Path, fmt: str, **options) -> SourceImages:
    """The rows of `source` read as format `fmt` (see FORMATS)."""
    if fmt not in FORMATS:
        raise PrepareError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    source = Path(source).expanduser()
    if not source.is_dir():
        raise PrepareError(f"{source} is not a folder.")
    found = FORMATS[fmt](source, **options)
    found.rows = found.rows.astype({"file": str, "label": str, "image_id": str})
    return found
