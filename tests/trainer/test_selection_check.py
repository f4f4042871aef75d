"""The ensemble ranking's selection check: choosing the best of many combinations on one half of the
validation split must look better there than on the other half, and the check must say so."""
from __future__ import annotations

import numpy as np

from trainer.data import read_split
from trainer.ensemble import combinations_of, lesion_groups, selection_check


def _equal_skill(candidates: int = 6, images: int = 400, classes: int = 4, seed: int = 3):
    """Candidates that make the same mistakes (shared noise) plus a little noise of their own: no
    combination is really better than another, so any lead on one half is luck."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, images)
    shared = np.eye(classes)[labels] * 1.2 + rng.normal(0, 1.0, (images, classes))
    logs = {f"m{k}": shared + rng.normal(0, 0.25, (images, classes)) for k in range(candidates)}
    groups = np.repeat(np.arange(images // 2), 2).astype(str)        # two images per lesion
    return logs, labels, groups


def test_choosing_among_equals_is_optimistic_and_gains_nothing_held_out():
    logs, labels, groups = _equal_skill()
    check = selection_check(logs, labels, groups, ["m0", "m1"], rounds=5)
    assert check["combinations"] == len(combinations_of(list(logs))) == 57 and check["choices"] == 10
    assert check["optimism"] > 0.01                           # the winner's own half flatters it
    assert check["chosen_on_own_half"] > check["chosen_on_other_half"]
    assert abs(check["held_out_gain"]) < check["optimism"]     # no real lead over an equal reference
    assert sum(n for _, n in check["most_chosen"]) <= check["choices"]


def test_a_truly_better_candidate_keeps_its_lead_held_out():
    logs, labels, groups = _equal_skill()
    logs["strong"] = np.eye(4)[labels] * 3.0 + np.random.default_rng(9).normal(0, 1.0, (len(labels), 4))
    check = selection_check(logs, labels, groups, ["m0", "m1"], rounds=5)
    assert check["held_out_gain"] > 0.05
    assert all("strong" in combo for combo, _ in check["most_chosen"])


def test_halves_keep_each_lesion_whole():
    split = read_split("ham10000")
    val = split[split["split"] == "val"]
    repeated = val[val.duplicated("lesion_id", keep=False)].sort_values("lesion_id").head(4)
    groups = lesion_groups("ham10000", list(repeated["image_id"]) + ["not_in_the_split"])
    assert groups[0] == groups[1] and groups[-1] == "not_in_the_split"
    assert list(groups[:4]) == list(repeated["lesion_id"])
