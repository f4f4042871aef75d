"""metrics.json["subgroups"] (test metrics by sex, age band, body site or image source, written by
`python -m trainer subgroups`) as rows for the Evaluation page and the model cards, and the weakest group.

Small groups stay in the rows, marked, but never count as the weakest: their figures are too uncertain.
What each dataset's table cannot show is model_zoo.dataset_prose.SUBGROUP_NOTES.
"""
from __future__ import annotations

from typing import Optional

from .formatting import is_number, pct, with_ci

SUBGROUP_COLUMNS = {"sex": "Sex", "age_band": "Age band", "localization": "Body site", "source": "Image source"}


def subgroup_rows(groups: dict, column: str) -> list[dict]:
    """Display rows of one subgroup dimension (metrics.json["subgroups"][column]), small groups marked."""
    return [{"group": name, "images": r["n"], "small group": "small" if r["small"] else "",
             "accuracy": pct(r["accuracy"]),
             "balanced accuracy": with_ci(r["balanced_accuracy"], r["balanced_accuracy_ci95"]),
             "melanoma recall": "n/a" if r["melanoma_recall"] is None else f"{pct(r['melanoma_recall'])} of {r['melanomas']}"}
            for name, r in (groups or {}).get(column, {}).items()]


def weakest_subgroup(groups: dict) -> Optional[dict]:
    """The group (not marked small) with the lowest balanced accuracy: {"column", "group", "n", "balanced_accuracy"}."""
    candidates = [{"column": SUBGROUP_COLUMNS.get(column, column), "group": name, "n": r["n"],
                   "balanced_accuracy": r["balanced_accuracy"]}
                  for column, rows in (groups or {}).items() if isinstance(rows, dict)
                  for name, r in rows.items()
                  if isinstance(r, dict) and not r.get("small") and is_number(r.get("balanced_accuracy"))]
    return min(candidates, key=lambda c: c["balanced_accuracy"]) if candidates else None
