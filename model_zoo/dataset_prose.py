"""What the model cards and the About page say about each dataset: its name, source, splits, known limitations,
licence, what its subgroup table cannot show, and the citation to give.

The prose lives in assets/datasets/<dataset>.md, where it reads and diffs as text rather than as Python string
literals. Each file is a '# <name>' title, then '## ' sections (SECTIONS): list sections hold '- ' items, the
others one paragraph; a wrapped line continues its item or paragraph.
"""
from __future__ import annotations

from pathlib import Path

DATASETS_DIR = Path(__file__).resolve().parent.parent / "assets" / "datasets"
SECTIONS = {"Source": "source", "Splits": "splits", "Known limitations": "limitations", "Licence": "license",
            "Subgroups": "subgroups", "Citation": "citation"}
LIST_SECTIONS = {"splits", "limitations"}
FACT_KEYS = ("name", "source", "splits", "limitations", "license")


def read_dataset_prose(path: Path) -> dict:
    """{"name", "source", "splits", "limitations", "license", "subgroups", "citation"} from one dataset's file."""
    prose: dict = {"name": "", "subgroups": "", "citation": ""}
    prose.update({key: [] if key in LIST_SECTIONS else "" for key in SECTIONS.values()})
    key = None
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if line.startswith("# "):
            prose["name"], key = text[2:], None
        elif line.startswith("## "):
            if text[3:] not in SECTIONS:
                raise ValueError(f"{path.name}: unknown section {text[3:]!r}; expected one of {list(SECTIONS)}")
            key = SECTIONS[text[3:]]
        elif not text or key is None:
            continue
        elif key in LIST_SECTIONS:
            if text.startswith("- ") or not prose[key]:
                prose[key].append(text.removeprefix("- "))
            else:
                prose[key][-1] += " " + text
        else:
            prose[key] = f"{prose[key]} {text}" if prose[key] else text
    return prose


DATASET_PROSE = {path.stem: read_dataset_prose(path) for path in sorted(DATASETS_DIR.glob("*.md"))}
DATASET_FACTS = {name: {key: prose[key] for key in FACT_KEYS} for name, prose in DATASET_PROSE.items()}
SUBGROUP_NOTES = {name: prose["subgroups"] for name, prose in DATASET_PROSE.items() if prose["subgroups"]}
HAM10000_CITATION = DATASET_PROSE["ham10000"]["citation"]


def dataset_facts(dataset: str) -> dict:
    """Source, split, limitation and licence text for a dataset (empty lists for unknown datasets)."""
    return DATASET_FACTS.get(dataset, {"name": dataset, "source": "", "splits": [], "limitations": [], "license": ""})


def license_text(dataset: str) -> str:
    """Markdown: licence of the data and the citation to give."""
    text = dataset_facts(dataset).get("license") or "Licence: see the dataset's SOURCE.md."
    return f"{text}\n\nCite HAM10000 as: {HAM10000_CITATION}"
