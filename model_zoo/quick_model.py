"""Quick custom models: a new linear head on a HAM10000 zoo model's frozen features, fitted in the app.

No TensorFlow and no trainer: the backbone's LiteRT export gives each image's penultimate `features`, and a
scikit-learn logistic regression (standardised features, balanced class weights, its strength C chosen on the
validation split) learns the new classes. A few hundred images take about a minute on 2 cores, almost all of
it in the backbone's forward passes. The result is scored on the held-out test split with the trainer's own
metrics (model_zoo.metrics), calibrated on validation (model_zoo.calibration), given a "not like these images"
detector fitted on its training features, and published to the zoo atomically as a `linear_head` model
(model_zoo/linear_head.py) whose card says exactly how it was made.

    >>> data = quick_model.from_zip(zip_bytes, "my_clinic")           # or from_prepared(data_dir, "my_set")
    >>> folder = quick_model.fit(data, model_zoo.load(quick_model.default_backbone(cards)["id"]), "my_model")
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd

from . import class_zip, datadir, linear_head, splits, store

C_GRID = (0.01, 0.1, 1.0)          # inverse regularisation strengths tried; the best on validation is kept
MAX_ITER = 2000
BOOTSTRAP = 200                    # resamples for the CIs (the trainer's 1000 would double the time)
MAX_PER_CLASS = 150                # images per class and split taken from a prepared dataset (time)
FEATURE_CHUNK = 16                 # images per forward pass batch
OOD_DIMS, OOD_ACCEPT, OOD_REFUSE = 64, 0.95, 0.995   # as trainer/ood.py: 64 principal dims; validation shares passed
PREPARED = "prepared dataset"
UPLOAD = "uploaded zip"
Progress = Callable[[str, float], None]       # (what is happening, share done 0..1)


class QuickModelError(ValueError):
    """The data or the names cannot make a model; the message says why."""


@dataclass
class Example:
    """One labelled image and the split it belongs to; bytes in memory (a zip) or a file (a prepared dataset)."""

    image_id: str
    label: str
    split: str
    path: str                                    # dataset-relative path, or the zip entry
    data: Optional[bytes] = field(default=None, repr=False)
    file: Optional[Path] = None

    def read(self) -> bytes:
        return self.data if self.data is not None else Path(self.file).read_bytes()


@dataclass
class QuickData:
    """The images of one quick model and where they came from (recorded on the card)."""

    dataset: str
    examples: list[Example]
    source: dict

    @property
    def classes(self) -> list[str]:
        return sorted({e.label for e in self.examples})

    def split(self, name: str) -> list[Example]:
        return [e for e in self.examples if e.split == name]

    def counts(self) -> dict[str, int]:
        return {name: len(self.split(name)) for name in (splits.TRAIN, splits.VAL, splits.TEST)}


# ---------------------------------------------------------------- the data
def from_prepared(data_dir: Path, dataset: str, max_per_class: Optional[int] = MAX_PER_CLASS,
                  seed: int = splits.SEED) -> QuickData:
    """A prepared dataset's images on its saved split (label conflicts and leaking images left out, as the trainer
    does); at most `max_per_class` per class and split, drawn at random (seeded)."""
    if not datadir.is_prepared(data_dir, dataset):
        raise QuickModelError(f"No prepared dataset {dataset!r} in {data_dir}.")
    try:
        table = pd.read_csv(Path(data_dir) / dataset / datadir.PREPARED_SPLIT, dtype={"image_id": str})
        info = store.read_json(Path(data_dir) / dataset / datadir.PREPARED_FILE)
    except (OSError, ValueError) as exc:
        raise QuickModelError(f"The prepared dataset {dataset!r} is incomplete ({type(exc).__name__}: {exc}); "
                              "prepare it again.") from exc
    table = table[table["split"].isin([splits.TRAIN, splits.VAL, splits.TEST])]
    table = table[(table["split"] == splits.TEST) | (table["label_conflict"] == 0)]
    if max_per_class:
        table = table.sample(frac=1.0, random_state=seed).groupby(["split", "label"]).head(max_per_class)
    table = table.sort_values(["split", "label", "image_id"])
    root = Path(data_dir) / dataset
    examples = [Example(r.image_id, r.label, r.split, r.path, file=root / r.path) for r in table.itertuples()]
    source = {"kind": PREPARED, "name": dataset, "split": f"{datadir.PREPARED_SPLIT} of the prepared dataset "
              f"({info.get('split_rule', '')}; grouped by {info.get('grouped_by', 'image')})",
              "max_per_class": max_per_class, "prepared_with": info.get("command", "")}
    return _checked(QuickData(dataset, examples, source))


def from_zip(data: bytes, dataset: str, skip_bad: bool = False, seed: int = splits.SEED) -> QuickData:
    """The images of a zip of class folders, checked (model_zoo.class_zip) and split stratified by label (no
    lesion ids in a zip): 70/15/15, or about 72/14/14 for a small set (model_zoo.splits)."""
    problem = datadir.name_problem(dataset)
    if problem:
        raise QuickModelError(problem)
    try:
        found = class_zip.read_class_zip(data, skip_bad)
    except class_zip.ZipError as exc:
        raise QuickModelError(str(exc)) from exc
    labels = [image.label for image in found.images]
    names = [image.name for image in found.images]
    plan = splits.fold_plan(labels)
    try:
        assigned = splits.grouped_split(labels, names, seed, *plan)
    except splits.SplitError as exc:
        raise QuickModelError(f"Too few images to split: {exc}") from exc
    examples = [Example(_entry_id(image.name), image.label, str(split), image.name, data=image.data)
                for image, split in zip(found.images, assigned)]
    source = {"kind": UPLOAD, "name": dataset, "zip_sha256": hashlib.sha256(data).hexdigest(),
              "zip_bytes": len(data), "split": f"{splits.describe_plan(*plan)} train/validation/test, stratified by "
              f"class ({plan[0]} folds, seed {seed}; model_zoo.splits; a zip has no lesion ids)",
              "duplicates_removed": [f"{a} (= {b})" for a, b in found.duplicates],
              "left_out": [f"{name}: {why}" for name, why in found.skipped]}
    return _checked(QuickData(dataset, examples, source))


def _entry_id(name: str) -> str:
    """A zip entry as an image id: its path without the extension (unique within the zip)."""
    return str(Path(name).with_suffix(""))


def _checked(data: QuickData) -> QuickData:
    counts = data.counts()
    if not counts[splits.TRAIN] or not counts[splits.VAL] or not counts[splits.TEST]:
        raise QuickModelError(f"Each of train, validation and test needs images; got {counts}.")
    missing = set(data.classes) - {e.label for e in data.split(splits.TRAIN)}
    if missing:
        raise QuickModelError(f"No training image for class(es) {', '.join(sorted(missing))}.")
    return data


# ---------------------------------------------------------------- the backbone
def default_backbone(cards: Sequence[dict], default_id: Optional[str] = None) -> Optional[dict]:
    """The HAM10000 zoo model whose LiteRT features a quick model uses: the zoo's default model if it is one,
    else the HAM10000 model with the best test balanced accuracy; None when the zoo has none with an export."""
    usable = [c for c in cards if c.get("status", "ok") == "ok" and c.get("dataset") == "ham10000"
              and c.get("litert") and not linear_head.is_linear_head(c)]
    chosen = next((c for c in usable if c["id"] == default_id), None)
    return chosen or max(usable, key=lambda c: c.get("headline", {}).get("test_balanced_accuracy") or 0.0,
                         default=None)


def features(backbone, examples: Sequence[Example], progress: Optional[Progress] = None, start: float = 0.0,
             share: float = 1.0) -> np.ndarray:
    """(n, K) penultimate features of `examples` from the backbone's forward pass (the app's preprocessing)."""
    from .preprocessing import prepare_batch

    chunks = []
    for i in range(0, len(examples), FEATURE_CHUNK):
        batch = prepare_batch([e.read() for e in examples[i:i + FEATURE_CHUNK]], backbone.input_size)
        chunks.append(backbone.predict_with_features(batch, calibrated=False)[1])
        if progress:
            done = min(i + FEATURE_CHUNK, len(examples))
            progress(f"Backbone features: {done} of {len(examples)} images", start + share * done / len(examples))
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


# ---------------------------------------------------------------- the head
def fit_head(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], n_classes: int,
             seed: int = splits.SEED) -> tuple[np.ndarray, np.ndarray, float, dict]:
    """(kernel (K, C), bias (C,), chosen C, validation balanced accuracy per C): standardised features ->
    multinomial logistic regression with balanced class weights, the scaling folded into the kernel."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train[0])
    x_train, x_val = scaler.transform(train[0]), scaler.transform(val[0])
    scores, fitted = {}, {}
    for c in C_GRID:
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=MAX_ITER, random_state=seed)
        fitted[c] = model.fit(x_train, train[1])
        scores[c] = float(balanced_accuracy_score(val[1], model.predict(x_val)))
    best = max(C_GRID, key=lambda c: (scores[c], -c))              # ties: the stronger regularisation
    kernel, bias = _dense(fitted[best], n_classes)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    return kernel / scale[:, None], bias - (scaler.mean_ / scale) @ kernel, best, scores


def _dense(model, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(kernel (K, C), bias (C,)) of a fitted LogisticRegression, all classes in order (a binary model's one
    score becomes the second class's logit against 0)."""
    coef, intercept = np.asarray(model.coef_, np.float64), np.asarray(model.intercept_, np.float64)
    if coef.shape[0] == 1 and n_classes == 2:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
    kernel, bias = np.zeros((coef.shape[1], n_classes)), np.full(n_classes, -1e3)
    for row, label in enumerate(model.classes_):                     # classes missing from training: never chosen
        kernel[:, int(label)], bias[int(label)] = coef[row], intercept[row]
    return kernel, bias


def fit_ood(train_features: np.ndarray, val_features: np.ndarray):
    """The out-of-distribution detector of trainer/ood.py, fitted here: residual outside the training features'
    principal subspace, its threshold at the 95th percentile of validation scores (and, where the detector has a
    refusal threshold on the relative residual, that at the 99.5th)."""
    import dataclasses

    from sklearn.decomposition import PCA

    from .ood import SubspaceResidualDetector

    dims = min(OOD_DIMS, train_features.shape[1], len(train_features) - 1)
    pca = PCA(n_components=dims, random_state=0).fit(train_features)
    detector = SubspaceResidualDetector(pca.mean_, pca.components_, threshold=np.inf)
    detector.threshold = float(np.quantile(detector.scores(val_features), OOD_ACCEPT))
    if "refuse_threshold" in {f.name for f in dataclasses.fields(detector)}:
        detector.refuse_threshold = float(np.quantile(detector.relative_scores(val_features), OOD_REFUSE))
    return detector


# ---------------------------------------------------------------- the whole fit
def fit(data: QuickData, backbone, model_id: str, display_name: Optional[str] = None,
        root: Optional[Path] = None, progress: Optional[Progress] = None, replace: bool = False,
        seed: int = splits.SEED) -> Path:
    """Fit, score and publish a quick custom model on `backbone` (a loaded ZooModel of the same zoo); returns its
    zoo folder. Refused: a model id that is not a plain name, or that another model already has (a quick model
    of that id is replaced only with replace=True)."""
    from .calibration import calibrate, card_summary
    from .metrics import compute_metrics
    from .constants import melanoma_label

    root = Path(root or store.zoo_dir())
    _check_model_id(model_id, root, replace)
    if Path(backbone.folder).parent.resolve() != root.resolve():
        raise QuickModelError(f"The backbone {backbone.card['id']!r} must be in the zoo the model is published to.")
    progress = progress or (lambda message, share: None)
    classes = data.classes
    index = {label: i for i, label in enumerate(classes)}
    parts = {name: data.split(name) for name in (splits.TRAIN, splits.VAL, splits.TEST)}
    total = sum(len(p) for p in parts.values())
    started, feats, done = time.perf_counter(), {}, 0
    for name, examples in parts.items():
        feats[name] = features(backbone, examples, progress, 0.9 * done / total, 0.9 * len(examples) / total)
        done += len(examples)
    feature_seconds = time.perf_counter() - started
    labels = {name: np.array([index[e.label] for e in examples]) for name, examples in parts.items()}
    progress("Fitting the logistic regression", 0.92)
    fit_start = time.perf_counter()
    kernel, bias, chosen_c, scores = fit_head((feats["train"], labels["train"]), (feats["val"], labels["val"]),
                                              len(classes), seed)
    probabilities = {name: linear_head.softmax(feats[name] @ kernel + bias) for name in (splits.VAL, splits.TEST)}
    progress("Scoring on the held-out splits", 0.95)
    metrics = {"validation": compute_metrics(labels["val"], probabilities["val"], classes, BOOTSTRAP),
               "test": compute_metrics(labels["test"], probabilities["test"], classes, BOOTSTRAP)}
    melanoma = melanoma_label(classes)
    if melanoma is not None and not (labels["val"] == index[melanoma]).any():
        melanoma = None                               # no validation melanoma to set an alert threshold on
    metrics["calibration"] = calibrate(probabilities["val"], labels["val"], probabilities["test"], labels["test"],
                                       classes, melanoma, n_bootstrap=BOOTSTRAP)
    detector = fit_ood(feats["train"], feats["val"])
    fit_seconds = time.perf_counter() - fit_start
    card = build_card(data, backbone, model_id, display_name, classes, metrics, chosen_c, scores,
                      {"features": feature_seconds, "fit": fit_seconds}, int(kernel.shape[0]), seed)
    card.update(card_summary(metrics["calibration"]))
    card["ood"].update(pca_dims=int(detector.components.shape[0]), threshold=float(detector.threshold),
                       **({"refuse_threshold": detector.refuse_threshold,
                           "refuse_rule": f"{OOD_REFUSE:.1%} of validation images accepted (relative residual)"}
                          if getattr(detector, "refuse_threshold", None) is not None else {}))
    table = [row for name in (splits.VAL, splits.TEST)
             for row in _prediction_rows(name, parts[name], probabilities[name], classes)]
    progress("Publishing to the zoo", 0.98)

    def fill(folder: Path) -> None:
        from .ood import OOD_FILE

        head_path = folder / linear_head.HEAD_FILE
        linear_head.save_head(head_path, kernel, bias)
        card["sha256"], card["size_bytes"] = store.sha256_file(head_path), head_path.stat().st_size
        detector.save(folder / OOD_FILE)
        card["ood"]["sha256"] = store.sha256_file(folder / OOD_FILE)
        store.write_card(folder, card)
        store.write_metrics(folder, metrics)
        pd.DataFrame(table).to_csv(folder / store.PREDICTIONS_FILE, index=False)

    final = store.write_model_folder(model_id, fill, root)
    progress("Done", 1.0)
    return final


def _check_model_id(model_id: str, root: Path, replace: bool) -> None:
    if not datadir.NAME_PATTERN.match(model_id or ""):
        raise QuickModelError(f"{model_id!r} is not a usable model id: use 1-64 lower-case letters, digits, '_' "
                              "or '-'.")
    card_path = root / model_id / store.CARD_FILE
    if card_path.is_file():
        existing = store.read_json(card_path)
        if not (replace and linear_head.is_linear_head(existing)):
            raise QuickModelError(f"The zoo already has a model called {model_id!r}; choose another id"
                                  + (" (only a quick custom model can be replaced)." if replace else "."))


def _prediction_rows(split: str, examples: Sequence[Example], probabilities: np.ndarray,
                     classes: list[str]) -> list[dict]:
    """predictions.csv rows, the trainer's format (trainer/publish.py)."""
    rows = []
    for example, p in zip(examples, probabilities):
        row = {"split": split, "image_id": example.image_id, "path": example.path, "true": example.label,
               "predicted": classes[int(np.argmax(p))]}
        row.update({f"p_{name}": f"{float(v):.6f}" for name, v in zip(classes, p)})
        rows.append(row)
    return rows


def hardware() -> str:
    """'2 CPU cores (AMD EPYC ...)', as the trainer's cards say it."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            name = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{os.cpu_count()} CPU cores ({name}), no GPU used"


def build_card(data: QuickData, backbone, model_id: str, display_name: Optional[str], classes: list[str],
               metrics: dict, chosen_c: float, scores: dict, seconds: dict, feature_dim: int, seed: int) -> dict:
    """The card: what the model is, on which images, exactly how it was fitted, and how good it is on test."""
    bcard = backbone.card
    backbone_file = Path(backbone.folder) / (bcard.get("litert") or {}).get("file", "model.tflite")
    counts = data.counts()
    how = (f"Quick custom model fitted in the app on {counts['train']} training images of "
           f"{'the prepared dataset' if data.source['kind'] == PREPARED else 'an uploaded zip named'} "
           f"{data.dataset!r} ({len(classes)} classes). Each image went through the shared preprocessing at "
           f"{bcard['input_size'][0]} px and the LiteRT export of {bcard['id']} (trained on HAM10000), whose "
           f"{feature_dim} penultimate features were kept frozen. A multinomial logistic regression on the "
           f"standardised features (scikit-learn, balanced class weights) was fitted with C = {chosen_c:g}, chosen "
           f"among {', '.join(f'{c:g}' for c in C_GRID)} by balanced accuracy on {counts['val']} validation images; "
           f"the temperature, abstention threshold and 'unlike these images' detector were fitted on validation too. "
           f"Test figures: {counts['test']} held-out images, scored once. No image was used for two of these roles.")
    test, val = metrics["test"], metrics["validation"]
    return {
        "id": model_id,
        "display_name": display_name or f"Quick model on {data.dataset}",
        "kind": linear_head.KIND,
        "model_file": linear_head.HEAD_FILE,
        "architecture": linear_head.KIND,
        "architecture_description": (f"Logistic regression on the frozen {feature_dim} features of "
                                     f"{bcard.get('display_name') or bcard['id']}"),
        "dataset": data.dataset,
        "classes": list(classes),
        "input_size": list(bcard["input_size"]),
        "preprocessing": bcard.get("preprocessing", {}),
        "cam_layer": bcard.get("cam_layer"),
        "backbone": {"model_id": bcard["id"], "display_name": bcard.get("display_name"), "dataset": bcard.get("dataset"),
                     "file": backbone_file.name, "size_bytes": backbone_file.stat().st_size,
                     "sha256": store.sha256_file(backbone_file), "output": linear_head.FEATURES_OUTPUT,
                     "feature_dim": feature_dim},
        "pretrained": f"frozen features of {bcard['id']} (HAM10000), not fine-tuned",
        "trained_on": {"split_file": data.source["split"],
                       "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
                       "counts": counts, "source": data.source, "label_conflicts_in_training": False},
        "training": {
            "seconds": round(sum(seconds.values()), 1),
            "phases": {k: round(v, 1) for k, v in seconds.items()},
            "hardware": hardware(),
            "backend": "scikit-learn on LiteRT features (no TensorFlow)",
            "config": {"architecture": linear_head.KIND, "dataset": data.dataset, "backbone": bcard["id"],
                       "classifier": "sklearn.linear_model.LogisticRegression (lbfgs, multinomial)",
                       "features": "StandardScaler on the backbone's penultimate features (folded into the kernel)",
                       "class_weight": "balanced", "C": chosen_c, "C_grid": list(C_GRID),
                       "validation_balanced_accuracy_by_C": {f"{c:g}": s for c, s in scores.items()},
                       "max_iter": MAX_ITER, "seed": seed, "bootstrap": BOOTSTRAP},
        },
        "headline": {"test_balanced_accuracy": test["balanced_accuracy"], "test_accuracy": test["accuracy"],
                     "test_macro_f1": test["macro_f1"], "val_balanced_accuracy": val["balanced_accuracy"]},
        "ood": {"method": "residual norm outside the training features' principal subspace (ViM, Wang et al. 2022)",
                "threshold_rule": f"{OOD_ACCEPT:.0%} of validation images accepted", "fitted_on": "training features"},
        "notes": how,
    }
