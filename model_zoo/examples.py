"""Example cases: test-split images with their true label, for the galleries, Compare and a quiz.

With the data folder present, a dataset's cases are its whole test split (the saved split table in
trainer/splits/, read as a file: the app never imports the trainer). Without it they are the bundled cases
in assets/examples, a few test images per class drawn at random by `python -m trainer examples`, so a hosted
copy with no data still has cases to show.

    >>> from model_zoo import datadir, examples
    >>> cases = examples.cases("ham10000", datadir.find_data_dir())   # whole test split, or the bundled ones
    >>> picks = examples.gallery(cases, per_class=4)                  # every class, interleaved
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from .datadir import DATASETS, PREPARED_SPLIT, REPO_ROOT, has_dataset, is_prepared

EXAMPLES_DIR = REPO_ROOT / "assets" / "examples"
SPLITS_DIR = REPO_ROOT / "trainer" / "splits"
MANIFEST_FILE = "manifest.csv"
LICENSE_FILE = "LICENSE.md"
MANIFEST_COLUMNS = ("case_id", "dataset", "image_id", "file", "label", "age", "sex", "site",
                    "source", "licence", "attribution")
TEST_SPLIT = "test"
_UNKNOWN = {"", "unknown", "nan", "none"}

HAM10000_ATTRIBUTION = ("Tschandl P., Rosendahl C., Kittler H. The HAM10000 dataset, a large collection of "
                        "multi-source dermatoscopic images of common pigmented skin lesions. Scientific Data 5, "
                        "180161 (2018). doi:10.1038/sdata.2018.161")
ISIC_ATTRIBUTION = "International Skin Imaging Collaboration (ISIC Archive)"


@dataclass(frozen=True)
class Source:
    """Where an image comes from and the terms it is shared under."""
    name: str
    licence: str
    attribution: str


HAM10000 = Source("HAM10000", "CC BY-NC 4.0", HAM10000_ATTRIBUTION)
ISIC_ARCHIVE = Source("ISIC Archive (Kaggle 9-class set)",
                      "CC-0, CC-BY or CC BY-NC 4.0 per image; treated as CC BY-NC 4.0", ISIC_ATTRIBUTION)
HAM10000_IN_ISIC = Source("HAM10000 image in the ISIC Archive (Kaggle 9-class set)", "CC BY-NC 4.0",
                          f"{HAM10000_ATTRIBUTION}; {ISIC_ATTRIBUTION}")
SOURCES = {source.name: source for source in (HAM10000, ISIC_ARCHIVE, HAM10000_IN_ISIC)}


@dataclass(frozen=True)
class Case:
    """One test image with its true label, and the patient's details where the source records them."""
    id: str                       # "<dataset>:<image_id>": unique across datasets (they share ISIC ids)
    dataset: str
    image_id: str
    label: str
    path: Path
    age: Optional[float] = None
    sex: Optional[str] = None
    site: Optional[str] = None
    source: str = ""
    bundled: bool = False
    data: Optional[bytes] = field(default=None, repr=False, compare=False)   # an upload held in memory only

    def read_bytes(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()

    @property
    def licence(self) -> str:
        return SOURCES[self.source].licence if self.source in SOURCES else ""

    @property
    def attribution(self) -> str:
        return SOURCES[self.source].attribution if self.source in SOURCES else ""


def case_id(dataset: str, image_id: str) -> str:
    return f"{dataset}:{image_id}"


# ------------------------------------------------------------------------------------------------ reading
def _text(value: object) -> Optional[str]:
    """A recorded value, or None for the sources' ways of saying 'not recorded'."""
    text = str(value if value is not None else "").strip()
    return None if text.lower() in _UNKNOWN else text


def _age(value: object) -> Optional[float]:
    try:
        age = float(str(value))
    except ValueError:
        return None
    return None if math.isnan(age) else age


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def patient_details(data_dir: Path) -> dict[str, tuple[Optional[float], Optional[str], Optional[str]]]:
    """HAM10000 image id -> (age, sex, site); {} without HAM10000's manifest.

    The 9-class set's images are named by ISIC id, so the HAM10000 ones among them are found here too.
    """
    manifest = data_dir / "ham10000" / "manifest.csv"
    if not manifest.is_file():
        return {}
    return {row["image_id"]: (_age(row.get("age")), _text(row.get("sex")), _text(row.get("localization")))
            for row in _rows(manifest)}


def source_of(dataset: str, is_ham10000_image: bool) -> Source:
    return HAM10000 if dataset == "ham10000" else HAM10000_IN_ISIC if is_ham10000_image else ISIC_ARCHIVE


def test_cases(dataset: str, data_dir: Path, splits_dir: Path = SPLITS_DIR) -> list[Case]:
    """Every image of the dataset's saved test split, with its file in `data_dir`."""
    _check(dataset)
    details = patient_details(data_dir)
    cases = []
    for row in _rows(splits_dir / f"{dataset}.csv"):
        if row["split"] != TEST_SPLIT:
            continue
        age, sex, site = details.get(row["image_id"], (None, None, None))
        cases.append(Case(case_id(dataset, row["image_id"]), dataset, row["image_id"], row["label"],
                          data_dir / dataset / row["path"], age, sex, site,
                          source_of(dataset, row["image_id"] in details).name))
    return sorted(cases, key=_order)


test_cases.__test__ = False       # a library function, not a pytest test


def prepared_test_cases(dataset: str, data_dir: Path) -> list[Case]:
    """Every image of a prepared dataset's test split (its split.csv), with the details its manifest records."""
    folder = data_dir / dataset
    details = {row["image_id"]: (_age(row.get("age")), _text(row.get("sex")), _text(row.get("localization")))
               for row in _rows(folder / "manifest.csv")} if (folder / "manifest.csv").is_file() else {}
    cases = [Case(case_id(dataset, row["image_id"]), dataset, row["image_id"], row["label"], folder / row["path"],
                  *details.get(row["image_id"], (None, None, None)))
             for row in _rows(folder / PREPARED_SPLIT) if row["split"] == TEST_SPLIT]
    return sorted(cases, key=_order)


def bundled_cases(dataset: Optional[str] = None, folder: Path = EXAMPLES_DIR) -> list[Case]:
    """The cases shipped in assets/examples (all datasets, or one); those whose file is missing are left out."""
    if dataset is not None:
        _check(dataset)
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        return []
    cases = [Case(row["case_id"], row["dataset"], row["image_id"], row["label"], folder / row["file"],
                  _age(row["age"]), _text(row["sex"]), _text(row["site"]), row["source"], bundled=True)
             for row in _rows(manifest) if dataset is None or row["dataset"] == dataset]
    return sorted((case for case in cases if case.path.is_file()), key=_order)


def cases(dataset: str, data_dir: Optional[Path], folder: Path = EXAMPLES_DIR) -> list[Case]:
    """The whole test split when `data_dir` holds the dataset (a built-in or a prepared one), else the bundled
    cases (None: no data folder; none for a dataset other than the built-ins).

    The split table is needed too (trainer/splits/, left out of some slim copies); without it: the bundled cases.

    Pass model_zoo.datadir.find_data_dir() for the usual rule ($DERMLAB_DATA_DIR, then ../shared/data).
    """
    if data_dir is not None and is_prepared(data_dir, dataset):
        return prepared_test_cases(dataset, data_dir)
    if data_dir is not None and has_dataset(data_dir, dataset) and (SPLITS_DIR / f"{dataset}.csv").is_file():
        return test_cases(dataset, data_dir)
    return bundled_cases(dataset, folder) if dataset in DATASETS else []       # none bundled for other datasets


def _check(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")


def _order(case: Case) -> tuple[str, str, str]:
    return case.dataset, case.label, case.image_id


# --------------------------------------------------------------------------------------------- choosing
def by_class(cases: Iterable[Case]) -> dict[str, list[Case]]:
    """Label -> its cases (labels sorted, cases by image id)."""
    groups: dict[str, list[Case]] = {}
    for case in sorted(cases, key=_order):
        groups.setdefault(case.label, []).append(case)
    return dict(sorted(groups.items()))


def gallery(cases: Iterable[Case], per_class: int) -> list[Case]:
    """Up to `per_class` cases of every class, interleaved (one of each class, then a second, ...).

    Interleaving keeps the first picks from giving the label away and shows every class, however many.
    """
    groups = [group[:per_class] for group in by_class(cases).values()]
    return [group[i] for i in range(per_class) for group in groups if i < len(group)]


def find(cases: Iterable[Case], image_id: str) -> Optional[Case]:
    return next((case for case in cases if case.image_id == image_id), None)


def among(rows: Sequence[dict], cases: Iterable[Case]) -> list[dict]:
    """The rows (e.g. predictions.csv rows or mistakes) whose image_id is one of `cases`, order kept."""
    ids = {case.image_id for case in cases}
    return [row for row in rows if str(row.get("image_id")) in ids]


def manifest_row(case: Case, file: str) -> dict[str, str]:
    """A manifest.csv row for `case`, its image stored at `file` (relative to the examples folder)."""
    source = SOURCES[case.source]
    age = "" if case.age is None else f"{case.age:g}"
    return {"case_id": case.id, "dataset": case.dataset, "image_id": case.image_id, "file": file,
            "label": case.label, "age": age, "sex": case.sex or "", "site": case.site or "",
            "source": source.name, "licence": source.licence, "attribution": source.attribution}
