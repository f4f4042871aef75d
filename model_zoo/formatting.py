"""Figures as the pages print them: shares, intervals, sizes, durations and card values.

One home for these small formatters, so a percentage or a duration reads the same on every page and in every
table. Plain Python, no numpy.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence


def is_number(value) -> bool:
    """A finite int or float (not a bool): what the formatters print rather than 'n/a'."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def pct(value, digits: int = 0) -> str:
    """0.714 -> '71%'; None / NaN -> 'n/a'."""
    return f"{100 * value:.{digits}f}%" if is_number(value) else "n/a"


def with_ci(value, ci: Optional[Sequence[float]], digits: int = 0) -> str:
    """'71% (95% CI 63–78%)', or just '71%' without an interval."""
    text = pct(value, digits)
    if ci and len(ci) == 2 and all(is_number(v) for v in ci):
        text += f" (95% CI {pct(ci[0], digits)[:-1]}–{pct(ci[1], digits)})"
    return text


def human_bytes(size) -> str:
    """512 -> '512 bytes'; 9437184 -> '9.0 MB'."""
    if not is_number(size):
        return "n/a"
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return "n/a"  # pragma: no cover


def human_seconds(seconds) -> str:
    """75 -> '1 min 15 s'; 4000 -> '1 h 06 min'."""
    if not is_number(seconds):
        return "n/a"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def dataset_label(dataset: str) -> str:
    """The short dataset name tables use ('ISIC 9-class'); an unknown id is shown as it is."""
    return {"isic_9class": "ISIC 9-class", "ham10000": "HAM10000 7-class"}.get(dataset, dataset)


def fmt_value(value) -> str:
    """A recorded setting as text: [192, 192] -> '192 x 192', True -> 'yes', None -> 'n/a'."""
    if isinstance(value, (list, tuple)):
        return " x ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "n/a" if value is None or value == "" else str(value)
