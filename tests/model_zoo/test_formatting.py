"""model_zoo.formatting: how shares, intervals, sizes and durations read on the pages."""
from __future__ import annotations

from model_zoo import formatting


def test_formatting():
    assert formatting.pct(0.714) == "71%"
    assert formatting.pct(0.714, 1) == "71.4%"
    assert formatting.pct(None) == "n/a"
    assert formatting.pct(float("nan")) == "n/a"
    assert formatting.with_ci(0.71, [0.63, 0.78]) == "71% (95% CI 63–78%)"
    assert formatting.with_ci(0.71, None) == "71%"
    assert formatting.human_bytes(512) == "512 bytes"
    assert formatting.human_bytes(9 * 1024 * 1024) == "9.0 MB"
    assert formatting.human_seconds(42) == "42 s"
    assert formatting.human_seconds(75) == "1 min 15 s"
    assert formatting.human_seconds(4000) == "1 h 06 min"
    assert formatting.human_seconds(None) == "n/a"

