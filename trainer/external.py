"""`python -m trainer external`: score zoo models once on an external test set (PH², another clinic).

Each image goes through model_zoo.diagnosis (LiteRT, as the app serves it): the quality gate, the dermoscopy
check (refused as not dermoscopy, or classified with a warning as unlike the training images), calibrated
probabilities, abstention and the shipped melanoma alert. Nothing is fitted or chosen here: the thresholds are
the card's, chosen on validation. Figures are given twice:

- "all_images": every image, gates aside (the model's own discrimination, comparable with published figures);
- "as_served": what a user of the app gets: a refused image has no answer and raises no alert.

The result goes to metrics.json["external"][DATASET] (only that key is rewritten, atomically). PH² is an
external test only (model_zoo.datadir.TEST_ONLY): the trainer refuses to train, tune, calibrate, fit
thresholds, rank models or draw examples with it.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from model_zoo import datadir, store
from model_zoo.ood import IN_DISTRIBUTION, NOT_DERMOSCOPY, UNLIKE_TRAINING

from .data import DataError

log = logging.getLogger(__name__)
EXTERNAL_SETS = datadir.TEST_ONLY
GROUP_COLUMN = {"ph2": "ph2_diagnosis"}            # the finer diagnosis each image carries
POSITIVE, NEGATIVE = "mel", "nv"                  # HAM10000 codes (PH²'s manifest uses them)
N_BOOTSTRAP = 2000
SEED = 42
OUTCOMES = ("quality", NOT_DERMOSCOPY, UNLIKE_TRAINING, IN_DISTRIBUTION)


class ExternalError(ValueError):
    """A model or data set that cannot be scored externally; the message says why."""


# ------------------------------------------------------------------------------------------------ data


def read_external(dataset: str, data_dir: Optional[str | Path] = None) -> tuple[Path, pd.DataFrame]:
    """(folder, manifest) of an external test set; DataError when it is absent."""
    if dataset not in EXTERNAL_SETS:
        raise ExternalError(f"{dataset!r} is not an external test set (known: {', '.join(EXTERNAL_SETS)}).")
    root, _ = datadir.candidate(data_dir)          # the same rule as the trainer's; the folder may hold only ph2/
    folder = Path(root) / dataset
    if not (folder / "manifest.csv").is_file():
        raise DataError(f"No {dataset}/manifest.csv in the data folder {root}: pass --data-dir or set "
                        f"{datadir.DATA_ENV} to the folder that holds {dataset}/.")
    manifest = pd.read_csv(folder / "manifest.csv", dtype={"image_id": str, "path": str, "label": str})
    group = GROUP_COLUMN.get(dataset, "label")
    manifest["group"] = manifest[group] if group in manifest else manifest["label"]
    return folder, manifest


def check_model(card: dict) -> None:
    """The model must name both classes PH² is labelled with (HAM10000 codes)."""
    if POSITIVE not in card.get("classes", []) or NEGATIVE not in card.get("classes", []):
        raise ExternalError(f"{card.get('id')}: external validation on PH² needs the HAM10000 classes "
                            f"{POSITIVE!r} and {NEGATIVE!r}; this model has {card.get('classes')}.")


def external_models(root: Optional[Path] = None) -> list[str]:
    """Every usable zoo model with the HAM10000 melanoma and nevus classes."""
    import model_zoo

    return [c["id"] for c in model_zoo.list_models(root) if c.get("status") == "ok"
            and POSITIVE in c.get("classes", []) and NEGATIVE in c.get("classes", [])]


# ------------------------------------------------------------------------------------------------ figures


def _bootstrap(statistic, arrays: Sequence[np.ndarray], n_bootstrap: int, seed: int = SEED) -> Optional[list]:
    """Percentile 95% interval of statistic(*resampled arrays) over resampled images (None if undefined)."""
    rng = np.random.default_rng(seed)
    n, values = len(arrays[0]), []
    for _ in range(n_bootstrap):
        pick = rng.integers(0, n, n)
        value = statistic(*(a[pick] for a in arrays))
        if value is not None and np.isfinite(value):
            values.append(value)
    return [float(v) for v in np.percentile(values, [2.5, 97.5])] if values else None


def _auroc(positive: np.ndarray, score: np.ndarray) -> Optional[float]:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, score)) if 0 < positive.sum() < len(positive) else None


def _share(mask: np.ndarray) -> Optional[float]:
    return float(mask.mean()) if len(mask) else None


def discrimination(positive: np.ndarray, p_mel: np.ndarray, predicted: Sequence[str], threshold: Optional[float],
                   n_bootstrap: int) -> dict:
    """Melanoma-vs-nevus AUROC (melanoma probability), the alert's sensitivity and specificity, argmax recall."""
    predicted = np.asarray(predicted, dtype=object)
    result = {"n": int(len(positive)), "melanomas": int(positive.sum()), "nevi": int((~positive).sum()),
              "melanoma_auroc": _auroc(positive, p_mel),
              "melanoma_auroc_ci95": _bootstrap(_auroc, (positive, p_mel), n_bootstrap),
              "recall": {POSITIVE: _share(predicted[positive] == POSITIVE),
                         NEGATIVE: _share(predicted[~positive] == NEGATIVE)}}
    if threshold is not None:
        alert = p_mel >= threshold
        sens = lambda y, a: _share(a[y]) if y.any() else None                       # noqa: E731
        spec = lambda y, a: _share(~a[~y]) if (~y).any() else None                  # noqa: E731
        result["alert"] = {"threshold": float(threshold), "caught": int(alert[positive].sum()),
                           "false_alarms": int(alert[~positive].sum()),
                           "sensitivity": sens(positive, alert),
                           "sensitivity_ci95": _bootstrap(sens, (positive, alert), n_bootstrap),
                           "specificity": spec(positive, alert),
                           "specificity_ci95": _bootstrap(spec, (positive, alert), n_bootstrap)}
    return result


def outcome(d) -> str:
    """What the app did with one image: refused for quality or as not dermoscopy, warned, or plainly classified."""
    if d.refusal_kind == "quality":
        return "quality"
    if d.refused:
        return NOT_DERMOSCOPY
    return UNLIKE_TRAINING if d.unlike_training else IN_DISTRIBUTION


def gate_table(groups: Sequence[str], outcomes: Sequence[str], alerts: Sequence[Optional[bool]]) -> dict:
    """Per group (PH² diagnosis) and overall: how many images got each outcome, and alerts among those answered."""
    frame = pd.DataFrame({"group": list(groups), "outcome": list(outcomes), "alert": [bool(a) for a in alerts]})

    def counts(part: pd.DataFrame) -> dict:
        row = {"n": int(len(part)), **{o: int((part["outcome"] == o).sum()) for o in OUTCOMES}}
        row["alert_when_unlike"] = int((part["alert"] & (part["outcome"] == UNLIKE_TRAINING)).sum())
        row["alert_when_in_distribution"] = int((part["alert"] & (part["outcome"] == IN_DISTRIBUTION)).sum())
        return row

    overall = counts(frame)
    rates = {"refused_not_dermoscopy": overall[NOT_DERMOSCOPY] / max(1, overall["n"]),
             "refused_quality": overall["quality"] / max(1, overall["n"]),
             "warned_unlike_training": overall[UNLIKE_TRAINING] / max(1, overall["n"])}
    return {"overall": overall, **rates,
            "by_group": {g: counts(frame[frame["group"] == g]) for g in sorted(frame["group"].unique())}}


def abstention(diagnoses: Sequence, labels: Sequence[str]) -> dict:
    """Among the classified images: the share answered (not abstaining), their accuracy, and the share the app
    advises to refer (abstains or unlike the training images)."""
    answered = [(d, y) for d, y in zip(diagnoses, labels) if d.probabilities is not None]
    confident = [(d, y) for d, y in answered if not d.abstains]
    return {"classified": len(answered),
            "coverage": len(confident) / len(answered) if answered else None,
            "accuracy": float(np.mean([d.top == y for d, y in confident])) if confident else None,
            "refer_share": float(np.mean([bool(d.refer) for d, _ in answered])) if answered else None}


# ------------------------------------------------------------------------------------------------ one model


def _probabilities_gates_aside(model, paths: Sequence[Path], fov_crop: bool) -> np.ndarray:
    """Calibrated probabilities of every image, as diagnosis computes them before its gates (same LiteRT pass)."""
    from model_zoo.preprocessing import load_image, prepare_image

    arrays = np.stack([prepare_image(load_image(p), model.input_size, fov_crop) for p in paths])
    return model.predict_arrays(arrays)


def score_external(model, folder: Path, manifest: pd.DataFrame, n_bootstrap: int = N_BOOTSTRAP,
                   fov_crop: Optional[bool] = None) -> dict:
    """Every figure of one model on one external set (see the module docstring)."""
    from model_zoo.diagnosis import diagnose_batch, fov_crop_default
    from model_zoo.gates import melanoma_status

    check_model(model.card)
    crop = fov_crop_default(model) if fov_crop is None else bool(fov_crop)
    paths = [folder / p for p in manifest["path"]]
    diagnoses = diagnose_batch(model, list(zip(manifest["image_id"], paths)), fov_crop=crop)
    errors = [d for d in diagnoses if not hasattr(d, "refusal_kind")]
    if errors:
        raise ExternalError(f"{len(errors)} image(s) could not be read, e.g. {errors[0].name}: {errors[0].message}")
    labels = manifest["label"].to_numpy()
    positive = labels == POSITIVE
    mel = model.classes.index(POSITIVE)
    threshold = melanoma_status(np.eye(len(model.classes))[mel], model.classes, model.card)[2]
    everything = _probabilities_gates_aside(model, paths, crop)
    served = np.array([d.probabilities is not None for d in diagnoses])
    p_served = np.array([d.probabilities[mel] if d.probabilities is not None else np.nan for d in diagnoses])
    alerts = [bool(d.melanoma_alert) for d in diagnoses]
    result = {
        "n": int(len(manifest)),
        "counts": {str(k): int(v) for k, v in manifest["group"].value_counts().sort_index().items()},
        "score": f"calibrated probability of {POSITIVE!r} (melanoma) from the model's {len(model.classes)} classes",
        "all_images": discrimination(positive, everything[:, mel],
                                     [model.classes[i] for i in everything.argmax(axis=1)], threshold, n_bootstrap),
        "as_served": discrimination(positive[served], p_served[served], [d.top for d in diagnoses if d.probabilities is not None],
                                    threshold, n_bootstrap),
        "alert_all_melanomas_as_served": {"caught": int(sum(a for a, y in zip(alerts, positive) if y)),
                                          "melanomas": int(positive.sum())},
        "abstention": abstention(diagnoses, labels),
        "gate": gate_table(manifest["group"], [outcome(d) for d in diagnoses], alerts),
        "fov_crop": crop,
        "fov_cropped_images": int(sum(d.fov_cropped for d in diagnoses)),
        "backend": model.backend,
        "model_sha256": model.card.get("sha256", ""),
        "scored_with": "model_zoo.diagnosis.diagnose_batch (quality gate, dermoscopy check, calibration, abstention, "
                       "melanoma alert as shipped)",
        "thresholds": "the card's, chosen on validation; nothing is fitted on this set",
        "created": dt.date.today().isoformat(),
    }
    return result


def internal_reference(model, n_bootstrap: int = N_BOOTSTRAP) -> Optional[dict]:
    """The same figures on the model's own test split, melanomas and nevi only (from predictions.csv, calibrated with
    the card's temperature), so a page can set the external figures beside the internal ones."""
    import model_zoo

    rows = [r for r in model_zoo.read_predictions(model.card["id"], Path(model.folder).parent)
            if r["split"] == "test" and r["true"] in (POSITIVE, NEGATIVE)]
    if not rows:
        return None
    from model_zoo.gates import melanoma_status

    raw = np.array([[float(r[f"p_{c}"]) for c in model.classes] for r in rows], np.float32)
    probabilities = model.calibrate(raw)
    mel = model.classes.index(POSITIVE)
    threshold = melanoma_status(np.eye(len(model.classes))[mel], model.classes, model.card)[2]
    positive = np.array([r["true"] == POSITIVE for r in rows])
    figures = discrimination(positive, probabilities[:, mel], [model.classes[i] for i in probabilities.argmax(axis=1)],
                             threshold, n_bootstrap)
    return {"split": f"{model.card.get('dataset')} test, melanomas and nevi only (gates aside)", **figures}


def external_key(dataset: str, fov_crop: Optional[bool]) -> str:
    """metrics.json["external"] key: the set's name, or NAME+fov_crop for the crop measured at inference."""
    return f"{dataset}+fov_crop" if fov_crop else dataset


def external_for_model(model_id: str, dataset: str = "ph2", data_dir: Optional[str | Path] = None,
                       zoo_root: Optional[Path] = None, n_bootstrap: int = N_BOOTSTRAP,
                       fov_crop: Optional[bool] = None) -> dict:
    """Score one zoo model and store the result in its metrics.json["external"] (other keys untouched)."""
    import model_zoo

    folder, manifest = read_external(dataset, data_dir)
    model = model_zoo.load(model_id, zoo_root)
    result = score_external(model, folder, manifest, n_bootstrap, fov_crop)
    result["internal_reference"] = internal_reference(model, n_bootstrap)
    result["command"] = (f"python -m trainer external {model_id} --dataset {dataset}"
                         + (" --fov-crop" if fov_crop else ""))

    def add(metrics: dict) -> None:
        metrics.setdefault("external", {})[external_key(dataset, fov_crop)] = result

    store.edit_model_json(Path(model.folder), store.METRICS_FILE, add)
    return result


def summary_line(model_id: str, result: dict) -> str:
    """One line per model for the command's output."""
    every, gate = result["all_images"], result["gate"]
    alert = every.get("alert") or {}
    mel = gate["by_group"].get("melanoma", {})
    ci = every["melanoma_auroc_ci95"] or [float("nan")] * 2
    return (f"{model_id}: AUROC {every['melanoma_auroc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]; alert "
            f"{alert.get('caught', 0)}/{every['melanomas']} melanomas, specificity {alert.get('specificity', 0):.2f}; "
            f"argmax recall mel {every['recall'][POSITIVE]:.3f} nv {every['recall'][NEGATIVE]:.3f}; gate refused "
            f"{gate['refused_not_dermoscopy']:.1%} as not dermoscopy, warned {gate['warned_unlike_training']:.1%}; "
            f"melanomas: {mel.get(IN_DISTRIBUTION, 0)} plain, {mel.get(UNLIKE_TRAINING, 0)} warned "
            f"({mel.get('alert_when_unlike', 0)} with alert), {mel.get(NOT_DERMOSCOPY, 0)} refused, "
            f"{mel.get('quality', 0)} refused for quality")
