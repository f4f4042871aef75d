"""Ensembles: several zoo models of one dataset joined into one Keras model, published as a zoo model of its own.

The ensemble is flat (every member's layers, renamed `m<k>_...`, hang off one shared
input), so everything that works on a single model works on it unchanged: the fast
prediction path, Grad-CAM (one CAM layer per member, see model_zoo/explainers.py),
the OOD detector (on the concatenated `avg_pool` features), calibration, TTA.

It averages the members' logits: the `pred` layer's kernel is the members' kernels
stacked and divided by their number, its bias their mean, so
softmax(pred(concat(f_1..f_K))) == softmax(mean_k(W_k f_k + b_k)) exactly (a
normalised geometric mean of the members' probabilities). Members are chosen, and the
ensemble is judged, on validation; its test figures are reported once, like any model's.

A member may itself be an ensemble: it counts as its own members (its block of the kernel
is weighted by their number), so a committed ensemble can take a new member without the
zoo holding its original members, and the result equals the flat ensemble of all of them.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from model_zoo.constants import FEATURE_LAYER, PREDICTION_LAYER, melanoma_label

log = logging.getLogger(__name__)


SELECTION_KEYS = ("include_label_conflicts", "limit_per_class", "seed")


class EnsembleError(ValueError):
    """Members that cannot be joined (different datasets, classes or input sizes)."""


def _renamed_clone(member, prefix: str, inputs):
    """The member's graph rebuilt on `inputs` with every layer renamed `prefix + name`, weights copied."""
    import keras

    def rename(layer):
        config = layer.get_config()
        config["name"] = prefix + layer.name
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(member, input_tensors=inputs, clone_function=rename)
    for layer in member.layers:
        if layer.weights:
            clone.get_layer(prefix + layer.name).set_weights(layer.get_weights())
    return clone


def build_ensemble(members: Sequence, name: str = "ensemble", weights: Optional[Sequence[int]] = None):
    """One flat keras.Model averaging the logits of `members` (zoo-style models with `avg_pool` and `pred`).

    `weights`: how many models each member stands for (an ensemble member: its number of members), so
    that every underlying model weighs the same.
    """
    import keras

    shapes = {tuple(m.input_shape[1:]) for m in members}
    if len(shapes) != 1:
        raise EnsembleError(f"Members must share one input size; got {sorted(shapes)}.")
    inputs = keras.Input(shapes.pop(), name="image")
    clones = [_renamed_clone(m, f"m{k}_", inputs) for k, m in enumerate(members)]
    # `avg_pool` (the OOD detector's features): what each member's `pred` layer sees, side by side; that is the
    # pooled features (dropout is off at inference), or a member's hidden head layer where it has one.
    joined = keras.layers.Concatenate(name=FEATURE_LAYER)(
        [c.get_layer(f"m{k}_{PREDICTION_LAYER}").input for k, c in enumerate(clones)])
    num_classes = int(members[0].output_shape[-1])
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=PREDICTION_LAYER)(joined)
    model = keras.Model(inputs, outputs, name=name)
    weights = np.ones(len(members)) if weights is None else np.asarray(weights, dtype=float)
    kernels, biases = zip(*(m.get_layer(PREDICTION_LAYER).get_weights() for m in members))
    kernel = np.vstack([k * w for k, w in zip(kernels, weights)]) / weights.sum()
    bias = np.sum([b * w for b, w in zip(biases, weights)], axis=0) / weights.sum()
    model.get_layer(PREDICTION_LAYER).set_weights([kernel, bias])
    return model


def leaf_ids(card: dict) -> list[str]:
    """The single models a zoo model stands for: an ensemble's members, or the model itself."""
    return [m["id"] for m in card["members"]] if card.get("architecture") == "ensemble" else [card["id"]]


def _leaf_entries(card: dict, k: int) -> list[dict]:
    """Card entries of the single models behind member k, with CAM layers renamed as in the joined model."""
    if card.get("architecture") == "ensemble":
        return [{**m, "cam_layer": f"m{k}_{m['cam_layer']}"} for m in card["members"]]
    return [{"id": card["id"], "display_name": card.get("display_name"), "architecture": card.get("architecture"),
             "sha256": card.get("sha256"), "val_balanced_accuracy": card.get("headline", {}).get("val_balanced_accuracy"),
             "cam_layer": f"m{k}_{card['cam_layer']}"}]


def check_members(cards: Sequence[dict]) -> None:
    """Members must be usable models of one dataset with the same classes and input size."""
    if len(cards) < 2:
        raise EnsembleError("An ensemble needs at least two members.")
    leaves = [leaf for card in cards for leaf in leaf_ids(card)]
    if len(set(leaves)) != len(leaves):
        raise EnsembleError("Each model may appear once (counting the members of an ensemble): "
                            + ", ".join(sorted({leaf for leaf in leaves if leaves.count(leaf) > 1})))
    for field in ("dataset", "classes", "input_size"):
        values = {json.dumps(card.get(field)) for card in cards}
        if len(values) != 1:
            raise EnsembleError(f"Members differ in {field}: " + ", ".join(f"{c['id']}={c.get(field)}" for c in cards))


def ensemble_card(model_id: str, display_name: str, cards: Sequence[dict], model) -> dict:
    """The card: the single models behind it (an ensemble member's own members) with their sha256 and
    validation score; training cost is their sum; the build command names the members as given."""
    first = cards[0]
    first_config = first.get("training", {}).get("config", {})
    members = [entry for k, c in enumerate(cards) for entry in _leaf_entries(c, k)]
    return {
        "id": model_id,
        "display_name": display_name,
        "architecture": "ensemble",
        "architecture_description": f"Ensemble of {len(members)} zoo models: the mean of their logits "
                                    "(a normalised geometric mean of their probabilities).",
        "dataset": first["dataset"],
        "classes": list(first["classes"]),
        "input_size": list(first["input_size"]),
        "preprocessing": {**first.get("preprocessing", {}), "inside_model": "each member's own (inside the model)"},
        "cam_layer": [m["cam_layer"] for m in members],
        "pretrained": "; ".join(f"{c['id']}: {c.get('pretrained')}" for c in cards),
        "members": members,
        "trained_on": first.get("trained_on", {}),
        "training": {
            "seconds": round(sum(float(c.get("training", {}).get("seconds") or 0.0) for c in cards), 1),
            "hardware": first.get("training", {}).get("hardware"),
            "strategy": "members trained separately",
            "config": {"architecture": "ensemble", "dataset": first["dataset"], "members": [c["id"] for c in cards],
                       "input_size": first["input_size"][0],
                       # evaluate_model selects the same images as the members were evaluated on
                       **{key: first_config.get(key) for key in SELECTION_KEYS if key in first_config}},
        },
        "headline": {},
        "notes": "Built by `python -m trainer ensemble`; no training of its own.",
        "parameters": int(model.count_params()),
    }


def validation_logs(candidate_ids: Sequence[str], zoo_root: Optional[Path] = None) -> dict:
    """The candidates' saved validation log-probabilities on the images they share (test rows are not read).

    The mean of the members' log-probabilities has the same argmax as the mean of their logits, which is
    what a built ensemble computes. Returns ids, labels, classes, dataset, melanoma (index or None), logs
    ({model id: (n, k) array}), input_sizes ({model id: size}) and leaves ({model id: the single models it
    stands for}, see leaf_ids).
    """
    import model_zoo

    from .data import refuse_test_only

    cards = [model_zoo.get_card(member_id, zoo_root) for member_id in candidate_ids]
    for card in cards:
        refuse_test_only(card.get("dataset"), "choosing or ranking models")
    classes = list(cards[0]["classes"])
    if any(list(c["classes"]) != classes or c["dataset"] != cards[0]["dataset"] for c in cards):
        raise EnsembleError("Candidates must share one dataset and its classes.")
    val = {c["id"]: {r["image_id"]: r for r in model_zoo.read_predictions(c["id"], zoo_root) if r["split"] == "val"}
           for c in cards}
    ids = sorted(set.intersection(*(set(rows) for rows in val.values())))
    if not ids:
        raise EnsembleError("The candidates have no validation images in common in their predictions.csv.")
    label = melanoma_label(classes)
    return {
        "ids": ids, "classes": classes, "dataset": cards[0]["dataset"],
        "labels": np.array([classes.index(val[cards[0]["id"]][i]["true"]) for i in ids]),
        "melanoma": classes.index(label) if label else None,
        "logs": {m: np.log(np.array([[float(rows[i][f"p_{c}"]) for c in classes] for i in ids]) + 1e-12)
                 for m, rows in val.items()},
        "input_sizes": {c["id"]: json.dumps(c["input_size"]) for c in cards},
        "leaves": {c["id"]: leaf_ids(c) for c in cards},
    }


def combinations_of(candidate_ids: Sequence[str], smallest: int = 2,
                    leaves: Optional[dict] = None) -> list[tuple[str, ...]]:
    """Every combination of `smallest` or more candidates, in a fixed order; with `leaves` (see
    validation_logs), only those that could be built: no single model twice."""
    from itertools import combinations

    def buildable(combo) -> bool:
        names = [leaf for m in combo for leaf in (leaves or {}).get(m, [m])]
        return len(set(names)) == len(names)

    return [combo for size in range(smallest, len(candidate_ids) + 1)
            for combo in combinations(candidate_ids, size) if buildable(combo)]


def combined_prediction(logs: dict, combo: Sequence[str], leaves: Optional[dict] = None) -> np.ndarray:
    """The class an ensemble of `combo` predicts for each image: argmax of the mean log-probability, an
    ensemble candidate weighted by its number of members as build_ensemble weighs it."""
    weights = [len((leaves or {}).get(m, [m])) for m in combo]
    return np.average([logs[m] for m in combo], axis=0, weights=weights).argmax(axis=1)


def rank_combinations(candidate_ids: Sequence[str], zoo_root: Optional[Path] = None) -> list[dict]:
    """Every combination of two or more candidates, scored on the validation split only, best first."""
    from sklearn.metrics import balanced_accuracy_score, recall_score

    table = validation_logs(candidate_ids, zoo_root)
    labels, melanoma = table["labels"], table["melanoma"]
    results = []
    for combo in combinations_of(list(table["logs"]), leaves=table["leaves"]):
        predicted = combined_prediction(table["logs"], combo, table["leaves"])
        results.append({
            "members": list(combo),
            "val_balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
            "val_melanoma_recall": (float(recall_score(labels == melanoma, predicted == melanoma))
                                    if melanoma is not None else None),
            "one_input_size": len({table["input_sizes"][m] for m in combo}) == 1,
            "images": len(table["ids"]),
        })
    return sorted(results, key=lambda r: -r["val_balanced_accuracy"])


def lesion_groups(dataset: str, image_ids: Sequence[str]) -> np.ndarray:
    """Each image's lesion id from the saved split (its own id where none is known), so that both images
    of a lesion fall on the same side when validation is halved."""
    from .data import DataError, read_split

    try:
        lesions = read_split(dataset).set_index("image_id")["lesion_id"].dropna().to_dict()
    except DataError:           # a prepared dataset outside the default data folder: images alone
        lesions = {}
    return np.array([str(lesions.get(i, i)) for i in image_ids])


def selection_check(logs: dict, labels: np.ndarray, groups: np.ndarray, reference: Sequence[str],
                    rounds: int = 10, seed: int = 0, leaves: Optional[dict] = None) -> dict:
    """How much of the ranking winner's lead survives fresh images.

    Picking the best of many combinations on one split overrates the winner on that split. So halve the
    validation lesions at random (stratified by class), pick the best combination on one half, score it on
    the other, both ways, `rounds` times. `optimism` is the winner's mean score on the half that chose it
    minus its score on the other half; `held_out_gain` is its held-out score minus `reference`'s on the
    same half: the part of the lead that is real.
    """
    from collections import Counter

    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedGroupKFold

    combos = combinations_of(list(logs), leaves=leaves)
    predictions = {combo: combined_prediction(logs, combo, leaves) for combo in combos}
    predictions[tuple(reference)] = combined_prediction(logs, reference, leaves)

    def score(combo, rows):
        return balanced_accuracy_score(labels[rows], predictions[combo][rows])

    chosen_in, chosen_out, reference_out, picks = [], [], [], Counter()
    for r in range(rounds):
        halving = StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=seed + r)
        for choose, judge in halving.split(np.zeros(len(labels)), labels, groups):     # each half chooses once
            best = max(combos, key=lambda combo: score(combo, choose))
            chosen_in.append(score(best, choose))
            chosen_out.append(score(best, judge))
            reference_out.append(score(tuple(reference), judge))
            picks[" + ".join(best)] += 1
    return {
        "rounds": rounds, "choices": len(chosen_in), "combinations": len(combos),
        "chosen_on_own_half": float(np.mean(chosen_in)), "chosen_on_other_half": float(np.mean(chosen_out)),
        "optimism": float(np.mean(np.subtract(chosen_in, chosen_out))),
        "reference": " + ".join(reference), "reference_on_other_half": float(np.mean(reference_out)),
        "held_out_gain": float(np.mean(np.subtract(chosen_out, reference_out))),
        "held_out_gain_sd": float(np.std(np.subtract(chosen_out, reference_out))),
        "most_chosen": picks.most_common(3),
    }


def check_ranking(candidate_ids: Sequence[str], reference: Sequence[str], zoo_root: Optional[Path] = None,
                  rounds: int = 10) -> dict:
    """selection_check on the candidates' saved validation predictions, halved by lesion."""
    if not set(reference) <= set(candidate_ids):
        raise EnsembleError("The reference combination must be made of the candidates.")
    table = validation_logs(candidate_ids, zoo_root)
    groups = lesion_groups(table["dataset"], table["ids"])
    return selection_check(table["logs"], table["labels"], groups, list(reference), rounds, leaves=table["leaves"])


def create_ensemble(member_ids: Sequence[str], model_id: str, display_name: Optional[str] = None,
                    data_dir: Optional[str] = None, zoo_root: Optional[Path] = None, set_default: bool = False,
                    bootstrap: int = 1000) -> Path:
    """Join zoo models into a new zoo model, then evaluate, calibrate and fit its OOD detector like a trained one."""
    import model_zoo
    from model_zoo import store

    from .calibrate import calibrate_model
    from .evaluate import evaluate_model
    from .ood import fit_ood_for_model
    from .subgroups import subgroups_for_model

    loaded = [model_zoo.load(member_id, zoo_root) for member_id in member_ids]
    cards = [m.card for m in loaded]
    check_members(cards)
    model = build_ensemble([m.keras_model for m in loaded], name=model_id,
                           weights=[len(leaf_ids(card)) for card in cards])
    card = ensemble_card(model_id, display_name or f"Ensemble: {' + '.join(member_ids)}", cards, model)

    def fill(folder: Path) -> None:
        path = folder / store.MODEL_FILE
        model.save(path)
        card["sha256"] = store.sha256_file(path)
        card["size_bytes"] = path.stat().st_size
        store.write_card(folder, card)
        store.write_metrics(folder, {})

    folder = store.write_model_folder(model_id, fill, zoo_root)
    evaluate_model(model_id, data_dir, zoo_root, bootstrap)
    calibrate_model(model_id, zoo_root, bootstrap)
    if not any(m.card.get("training", {}).get("config", {}).get("limit_per_class") for m in loaded):
        fit_ood_for_model(model_id, data_dir, zoo_root)
        subgroups_for_model(model_id, data_dir, zoo_root)
    if set_default:
        store.set_default_model(model_id, zoo_root)
    log.info("Published ensemble %s (%s) to %s", model_id, ", ".join(member_ids), folder)
    return folder
