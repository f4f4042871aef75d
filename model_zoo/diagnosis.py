"""One diagnosis path for every page: an image (and optional patient details) -> a `Diagnosis`.

Classify, Batch, Compare and the case report all go through here, so they apply the same safety gates
in the same order and say the same things:

1. the image-quality gate (model_zoo.quality: blurred, under- or over-exposed, tiny);
2. the dermoscopy check (model_zoo.ood) on the features of the same forward pass that gives the
   probabilities: "not a dermoscopy image" refuses; "a dermoscopy image unlike this model's training
   images" (another dermatoscope or clinic?) is classified, carries a prominent warning (`ood_warning`)
   and always the advice to refer (`refer`), and the melanoma alert still applies (why: docs/experiments.md,
   measured on HAM10000 validation and reported on PH²);
3. only for an image that is not refused: calibrated probabilities, fused with the patient details
   when given and the model has a fitted details model (model_zoo.metadata), the abstention verdict
   (card threshold), the melanoma alert (card operating point) and, when model_zoo.conformal exists,
   a conformal prediction set.

A refused image carries no classification at all. No Streamlit and no TensorFlow here (heatmaps other
than LiteRT Grad-CAM build a Keras explainer, as before).
"""
from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np
from PIL import Image

from . import quality
from .classes import concerning_probability, display_name
from .inference import LOW_CONFIDENCE, Reading, abstains, read
from .metadata import PatientDetails
from .ood import IN_DISTRIBUTION, NOT_DERMOSCOPY as NOT_DERMOSCOPY_KIND, UNLIKE_TRAINING
from .preprocessing import ImageError, ImageSource, crop_to_field_of_view, load_image, prepare_image

log = logging.getLogger(__name__)

MELANOMA_LABELS = ("melanoma", "mel")
BATCH_CHUNK = 32            # images decoded and held at once by diagnose_batch (forward passes chunk further)
NOT_DERMOSCOPY = ("This does not look like a dermoscopy image, so the model will not classify it. It was trained "
                  "only on close-up images taken through a dermatoscope; on photos, documents, screenshots or plain "
                  "colours its answer would be meaningless. Please upload a dermoscopy image of a skin lesion.")
UNLIKE_TRAINING_MESSAGE = (
    "This looks like a dermoscopy image, but unlike the images this model was trained on: perhaps another "
    "dermatoscope or clinic, unusual lighting or a rare kind of lesion. The model's answer below is less reliable "
    "for such images, so do not take a harmless-looking answer as reassurance: have the lesion assessed by a "
    "clinician. The melanoma alert still applies.")
EXPLAINER_LABELS = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM"}  # as explainers.LABELS


@dataclass(frozen=True)
class OodVerdict:
    """This model's dermoscopy check: run or not (and why), its kind (refused as not dermoscopy, unlike the
    training images, or neither) and how it decides."""

    checked: bool
    rejected: bool = False       # kind == "not_dermoscopy": refused
    score: Optional[float] = None
    threshold: Optional[float] = None
    status: str = ""             # why it was not checked ("" when it was)
    how_decided: str = ""        # the method and its test figures, from the card
    kind: str = ""               # "in_distribution" | "unlike_training" | "not_dermoscopy" ("" when not checked)
    relative_score: Optional[float] = None      # residual share of the features (the refusal score)
    refuse_threshold: Optional[float] = None    # refused above this relative score (None: an old detector)

    @property
    def note(self) -> str:
        """What a page shows under a result when no detector could check the image."""
        return "" if self.checked else f"Note: {self.status}, so non-dermoscopy images are not refused."

    @property
    def unlike_training(self) -> bool:
        """A dermoscopy image unlike the training images: classified, with a warning."""
        return self.kind == UNLIKE_TRAINING

    @property
    def message(self) -> str:
        """The plain-language message of this verdict ("" when there is nothing to say)."""
        if self.rejected:
            return NOT_DERMOSCOPY
        return UNLIKE_TRAINING_MESSAGE if self.unlike_training else ""


@dataclass(frozen=True)
class Heatmap:
    """Where the model looked for one class: (h, w) values in [0, 1] at the model's input size."""

    values: np.ndarray
    method: str                  # registry name, e.g. "gradcam"
    target: str                  # class label explained

    @property
    def label(self) -> str:
        return EXPLAINER_LABELS.get(self.method, self.method)


@dataclass(frozen=True)
class ItemError:
    """A batch item that could not be read as an image."""

    name: str
    message: str
    model_id: str = ""
    model_sha256: str = ""


@dataclass
class Diagnosis:
    """Everything a page, a CSV row or a case report needs about one image and one model."""

    name: str
    model_id: str
    model_sha256: str
    classes: list[str]
    not_dermoscopy: OodVerdict
    quality: Optional[quality.QualityVerdict]     # None: no gate (see quality_status)
    quality_status: str = ""
    refused_elsewhere: tuple[str, ...] = ()       # other models whose detector refused this image (compare)
    card: dict = field(default_factory=dict, repr=False)       # the card as it applies (details variant merged)
    metrics: dict = field(default_factory=dict, repr=False)    # metrics.json as it applies (details: fusion)
    probabilities: Optional[np.ndarray] = None    # calibrated; fused with the details when they were used
    image_probabilities: Optional[np.ndarray] = None   # calibrated, image alone
    details: Optional[PatientDetails] = None
    details_variant: Optional[str] = None         # e.g. "age+sex+site" when the details were used
    details_note: Optional[str] = None
    abstention_threshold: float = LOW_CONFIDENCE
    abstains: Optional[bool] = None
    melanoma_label: Optional[str] = None
    melanoma_probability: Optional[float] = None
    melanoma_threshold: Optional[float] = None
    melanoma_alert: Optional[bool] = None
    prediction_set: Optional[list[str]] = None    # conformal set (model_zoo.conformal), when available
    prediction_set_note: str = ""
    tta: bool = False
    hair_removed: bool = False
    fov_cropped: bool = False                     # cut to the dermatoscope's round field before the model
    backend: str = ""
    image: Optional[Image.Image] = field(default=None, repr=False)    # upright RGB upload (single images)
    array: Optional[np.ndarray] = field(default=None, repr=False)     # what the model saw (heatmaps)

    @property
    def refused(self) -> bool:
        return bool(self.refusal_reasons)

    @property
    def refusal_reasons(self) -> tuple[str, ...]:
        """The gates that refused the image, in the order they run: "quality", then "not_dermoscopy"."""
        reasons = ("quality",) if self.quality is not None and not self.quality.usable else ()
        if self.not_dermoscopy.rejected or self.refused_elsewhere:
            reasons += ("not_dermoscopy",)
        return reasons

    @property
    def refusal_kind(self) -> Optional[str]:
        """The first refusing gate, or None (classified). A poor image is told so first: blur or glare can
        also make a real dermoscopy image look foreign to the detector, and retaking it is the remedy."""
        return self.refusal_reasons[0] if self.refusal_reasons else None

    @property
    def refusal(self) -> str:
        """Why the image was not classified, in plain language ("" when it was)."""
        reasons = self.refusal_reasons
        elsewhere = (f" (refused by the detector of {', '.join(self.refused_elsewhere)}; one model's refusal "
                     "refuses the image for every model)") if self.refused_elsewhere else ""
        if reasons == ("not_dermoscopy",):
            return NOT_DERMOSCOPY + elsewhere
        if reasons == ("quality", "not_dermoscopy"):
            return (f"{self.quality.message} It also does not look like a dermoscopy image to the model{elsewhere}; "
                    "if it is not one, please upload a dermoscopy image of a skin lesion.")
        return self.quality.message if reasons else ""

    @property
    def unlike_training(self) -> bool:
        """Classified, but the image is unlike this model's training images: show `ood_warning` prominently."""
        return not self.refused and self.not_dermoscopy.unlike_training

    @property
    def ood_warning(self) -> str:
        """The warning a page shows above the answer of an image unlike the training images ("" otherwise)."""
        return self.not_dermoscopy.message if self.unlike_training else ""

    @property
    def refer(self) -> Optional[bool]:
        """The advice to have the lesion assessed by a clinician: the model abstains (low confidence) or the
        image is unlike its training images; None when nothing was classified."""
        if self.probabilities is None:
            return None
        return bool(self.abstains) or self.unlike_training

    @property
    def reading(self) -> Optional[Reading]:
        return None if self.probabilities is None else read(self.probabilities, self.classes)

    @property
    def top(self) -> Optional[str]:
        return None if self.probabilities is None else self.classes[int(np.argmax(self.probabilities))]

    @property
    def top_probability(self) -> Optional[float]:
        return None if self.probabilities is None else float(np.max(self.probabilities))

    @property
    def runner_up(self) -> Optional[str]:
        reading = self.reading
        return None if reading is None else reading.runner_up

    @property
    def runner_up_probability(self) -> Optional[float]:
        reading = self.reading
        return None if reading is None else reading.runner_up_probability

    @property
    def concerning_probability(self) -> Optional[float]:
        return None if self.probabilities is None else concerning_probability(self.probabilities, self.classes)

    def ranked(self) -> list[tuple[str, float]]:
        reading = self.reading
        return [] if reading is None else reading.ranked()


# ------------------------------------------------------------------------------------------------ the gates


def ood_verdicts(model, features: np.ndarray) -> list[OodVerdict]:
    """One verdict per feature row; unchecked (with the reason) when the model has no usable detector."""
    detector = model.ood_detector
    if detector is None:
        return [OodVerdict(False, status=model.ood_status)] * len(features)
    scores, kinds = detector.scores(features), detector.kinds(features)
    relative = detector.relative_scores(features) if detector.refuse_threshold is not None else [None] * len(kinds)
    how = _how_decided(model.card.get("ood", {}))
    refuse = None if detector.refuse_threshold is None else float(detector.refuse_threshold)
    return [OodVerdict(True, kind == NOT_DERMOSCOPY_KIND, float(s), float(detector.threshold), "", how, kind,
                       None if r is None else float(r), refuse)
            for s, kind, r in zip(scores, kinds, relative)]


def _how_decided(ood: dict) -> str:
    if not ood or "ood_rejected" not in ood:
        return ""
    text = (f"How this is decided: the image's features are compared with those of the training images "
            f"({ood.get('method', '')}). On test, this check refused {ood['ood_rejected']:.0%} of a set of "
            f"non-dermoscopy images and {ood['dermoscopy_wrongly_rejected']:.1%} of real dermoscopy images")
    if ood.get("dermoscopy_unlike") is None:
        return text + "."
    return (text + f"; it flagged a further {ood['dermoscopy_unlike']:.0%} of real dermoscopy images as unlike the "
            "training images, which are classified with a warning.")


def quality_verdict(image: Image.Image, check: bool = True) -> tuple[Optional[quality.QualityVerdict], str]:
    """(verdict, "") or (None, why there is no gate)."""
    if not check:
        return None, "the image-quality check was switched off"
    limits, status = quality.thresholds()
    return (None, status) if limits is None else (quality.verdict_for(quality.measure(image), limits), "")


# ------------------------------------------------------------------------------------- probabilities and details


def with_details(model, raw: np.ndarray, details: Optional[PatientDetails], card: dict, metrics: dict
                 ) -> tuple[np.ndarray, dict, dict, Optional[str], Optional[str]]:
    """(probabilities, card view, metrics view, note, variant key) for one image's raw (1, n) output.

    Fused with the patient details when given and the model has a fitted details model; the card and
    metrics then are the fused model's (its own abstention and melanoma thresholds, fitted on validation).
    """
    image_only = model.calibrate(raw)[0]
    if details is None or not details.given:
        return image_only, card, metrics, None, None
    meta = model.metadata_model
    variant = meta.variant_for(details) if meta is not None else None
    if variant is None:
        why = model.metadata_status if meta is None else "no details model for these fields"
        return image_only, card, metrics, f"The patient details were not used: {why}.", None
    fused = meta.predict(raw, [details])[0]
    alone = read(image_only, model.classes)
    given = ", ".join(t for t in (f"age {details.age:.0f}" if details.age is not None else "", details.sex or "",
                                  details.site or "") if t)
    note = (f"Using the image and the patient details ({given}). The image alone gives "
            f"{display_name(alone.top)} {alone.top_probability:.0%}. With these details this model's "
            f"validation balanced accuracy is {variant.record['val_balanced_accuracy']:.0%} (image alone "
            f"{metrics.get('validation', {}).get('balanced_accuracy', float('nan')):.0%}).")
    fusion = metrics.get("metadata_fusion", {}) if variant is meta.full else {}
    key = "+".join(variant.fields)
    return fused, {**card, **variant.record.get("card_summary", {})}, fusion, note, key


def melanoma_status(probabilities: np.ndarray, classes: Sequence[str], card: dict
                    ) -> tuple[Optional[str], Optional[float], Optional[float], Optional[bool]]:
    """(label, probability, alert threshold, alert?) from the card's melanoma operating point."""
    point = card.get("melanoma_operating_point") or {}
    label = point.get("class") if point.get("class") in classes else next((c for c in classes if c in MELANOMA_LABELS), None)
    if label is None:
        return None, None, None, None
    probability = float(probabilities[list(classes).index(label)])
    threshold = point.get("test", {}).get("threshold")
    if threshold is None:
        return label, probability, None, None
    return label, probability, float(threshold), probability >= float(threshold)


def conformal_set(model, probabilities: np.ndarray, metrics: dict) -> tuple[Optional[list[str]], str]:
    """(labels, note) from model_zoo.conformal, fitted on validation and stored in metrics.json; (None, "")
    when that module or the model's fit is absent (the fit is for image-only probabilities: a details-fused
    result has other metrics, so no set)."""
    try:
        from .conformal import conformal_entry, prediction_set
    except ImportError:                                # added by another part of the project; optional here
        return None, ""
    try:
        entry = conformal_entry(metrics)
        labels = prediction_set(probabilities, entry, model.classes)
    except (KeyError, ValueError, TypeError) as exc:
        log.debug("no conformal prediction set: %s", exc)
        return None, ""
    return labels, _conformal_note(entry)


def _conformal_note(entry: dict) -> str:
    target, test = entry.get("target_coverage"), (entry.get("test") or {}).get("coverage")
    if target is None:
        return ""
    note = f"Conformal set for {target:.0%} coverage (fitted on validation"
    note += f"; it held the true diagnosis for {test:.0%} of test images)." if test is not None else ")."
    return note + (f" Caution: {entry['warning']}" if entry.get("warning") else "")


# --------------------------------------------------------------------------------------------- building


@dataclass
class _Prepared:
    """One decoded image on its way through the gates."""

    name: str
    image: Optional[Image.Image]
    array: np.ndarray
    quality: Optional[quality.QualityVerdict]
    quality_status: str
    hair_removed: bool
    fov_cropped: bool = False


def _prepare(model, name: str, image: Image.Image, hair: bool, gate: tuple[Optional[quality.QualityVerdict], str],
             keep_image: bool, fov_crop: Optional[bool] = None) -> _Prepared:
    """Model input of one upright image; `gate` is its quality verdict (measured once per image). fov_crop: cut
    to the dermatoscope's round field first (None: as the model was trained, see `fov_crop_default`)."""
    crop = fov_crop_default(model) if fov_crop is None else bool(fov_crop)
    seen = crop_to_field_of_view(image) if crop else image
    cropped = seen is not image
    seen = quality.remove_hair(seen) if hair else seen
    return _Prepared(name, image if keep_image else None, prepare_image(seen, model.input_size), gate[0], gate[1], hair,
                     cropped)


def fov_crop_default(model) -> bool:
    """Whether the model was trained on images cut to the field of view (its card records it); the committed
    models were not, and the crop did not help them on HAM10000 validation (docs/experiments.md)."""
    return bool((model.card.get("preprocessing") or {}).get("field_of_view_crop"))


def _gated(model, item: _Prepared, ood: OodVerdict, details: Optional[PatientDetails], metrics: dict, tta: bool,
           keep_array: bool) -> Diagnosis:
    """The Diagnosis of one image with its gate verdicts and no classification yet."""
    card = model.card
    return Diagnosis(item.name, card.get("id", model.folder.name), card.get("sha256", ""), model.classes, ood,
                     item.quality, item.quality_status, card=card, metrics=metrics, details=details, tta=tta,
                     hair_removed=item.hair_removed, fov_cropped=item.fov_cropped, backend=model.backend,
                     image=item.image,
                     array=item.array if keep_array else None,
                     abstention_threshold=float(card.get("abstention", {}).get("threshold", LOW_CONFIDENCE)))


def _build(model, item: _Prepared, raw: np.ndarray, ood: OodVerdict, details: Optional[PatientDetails],
           metrics: dict, tta: bool, keep_array: bool) -> Diagnosis:
    """Gated, then classified from its raw (uncalibrated) probabilities unless refused."""
    diagnosis = _gated(model, item, ood, details, metrics, tta, keep_array)
    return diagnosis if diagnosis.refused else classify(model, diagnosis, raw[None])


def classify(model, diagnosis: Diagnosis, raw: np.ndarray) -> Diagnosis:
    """Fill in the classification of an image that passed the gates (raw: its (1, n) network output)."""
    probabilities, card, metrics, note, variant = with_details(model, raw, diagnosis.details, diagnosis.card,
                                                               diagnosis.metrics)
    reading = read(probabilities, model.classes)
    label, p_mel, threshold, alert = melanoma_status(probabilities, model.classes, card)
    prediction_set, set_note = conformal_set(model, probabilities, metrics)
    return replace(diagnosis, card=card, metrics=metrics, probabilities=np.asarray(probabilities, np.float64),
                   image_probabilities=np.asarray(model.calibrate(raw)[0], np.float64), details_variant=variant,
                   details_note=note, abstains=abstains(reading, card),
                   abstention_threshold=float(card.get("abstention", {}).get("threshold", LOW_CONFIDENCE)),
                   melanoma_label=label, melanoma_probability=p_mel, melanoma_threshold=threshold,
                   melanoma_alert=alert, prediction_set=prediction_set, prediction_set_note=set_note)


def _forward(model, arrays: np.ndarray, tta: bool) -> tuple[np.ndarray, list[OodVerdict]]:
    """Raw probabilities and OOD verdicts from one forward pass (TTA: 8 more, for accepted images only)."""
    raw, features = model.predict_with_features(arrays, calibrated=False)
    verdicts = ood_verdicts(model, features)
    if tta:
        keep = [i for i, v in enumerate(verdicts) if not v.rejected]
        if keep:
            raw = raw.copy()
            raw[keep] = model.predict_arrays(arrays[keep], calibrated=False, tta=True)
    return raw, verdicts


_METRICS: dict[str, tuple[float, dict]] = {}


def model_metrics(model) -> dict:
    """metrics.json of a loaded model, read once per file change (it is about half a megabyte)."""
    path = Path(model.folder) / "metrics.json"
    if not path.is_file():
        return {}
    stamp = path.stat().st_mtime
    key = str(path)
    if key not in _METRICS or _METRICS[key][0] != stamp:
        from .store import read_json

        _METRICS[key] = (stamp, read_json(path))
    return _METRICS[key][1]


def _hair(hair: Optional[bool]) -> bool:
    return quality.hair_removal_default() if hair is None else bool(hair)


# -------------------------------------------------------------------------------------------------- public API


def diagnose(model, image: Union[ImageSource, Image.Image], details: Optional[PatientDetails] = None, *,
             name: str = "", metrics: Optional[dict] = None, tta: bool = False, hair: Optional[bool] = None,
             check_quality: bool = True, fov_crop: Optional[bool] = None) -> Diagnosis:
    """One image through the gates and, if it passes, the model. ImageError if the file is not a usable image.

    metrics: the model's metrics.json (read from its folder when not given); hair: DullRazor hair removal
    before the model (None: the committed default, off); check_quality=False skips the quality gate;
    fov_crop: cut to the dermatoscope's round field of view first (None: as the model was trained).
    """
    picture = load_image(image)
    item = _prepare(model, name, picture, _hair(hair), quality_verdict(picture, check_quality), keep_image=True,
                    fov_crop=fov_crop)
    raw, verdicts = _forward(model, item.array[None], tta)
    return _build(model, item, raw[0], verdicts[0], details, metrics if metrics is not None else model_metrics(model),
                  tta, keep_array=True)


def diagnose_models(models: Sequence, image: Union[ImageSource, Image.Image], details: Optional[PatientDetails] = None,
                    *, name: str = "", metrics: Optional[Mapping[str, dict]] = None, tta: bool = False,
                    hair: Optional[bool] = None, fov_crop: Optional[bool] = None) -> list[Diagnosis]:
    """The same image through several models (Compare), in order. The gates judge the image, not a model:
    the quality gate runs once, and when any model's detector refuses the image every model's result is
    refused, naming that model (refused_elsewhere). Nothing is classified unless every gate passes."""
    picture = load_image(image)
    gate, hair = quality_verdict(picture), _hair(hair)
    gated, raws = [], []
    for model in models:
        item = _prepare(model, name, picture, hair, gate, keep_image=True, fov_crop=fov_crop)
        raw, verdicts = _forward(model, item.array[None], False)
        chosen = (metrics or {}).get(model.card.get("id", ""))
        gated.append(_gated(model, item, verdicts[0], details, chosen if chosen is not None else model_metrics(model),
                            tta, keep_array=True))
        raws.append(raw)
    refusing = tuple(d.model_id for d in gated if d.not_dermoscopy.rejected)
    if refusing:
        return [replace(d, refused_elsewhere=tuple(m for m in refusing if m != d.model_id)) for d in gated]
    if any(d.refused for d in gated):
        return gated
    return [classify(m, d, m.predict_arrays(d.array[None], calibrated=False, tta=True) if tta else raw)
            for m, d, raw in zip(models, gated, raws)]


BatchItem = Union[tuple[str, Optional[ImageSource]], tuple[str, Optional[ImageSource], str]]


def diagnose_batch(model, items: Iterable[BatchItem],
                   details: Union[None, PatientDetails, Sequence[Optional[PatientDetails]]] = None, *,
                   metrics: Optional[dict] = None, tta: bool = False, hair: Optional[bool] = None,
                   chunk: int = BATCH_CHUNK, keep_images: bool = False, fov_crop: Optional[bool] = None
                   ) -> list[Union[Diagnosis, ItemError]]:
    """One Diagnosis or ItemError per item, in order. items: (name, source) or (name, source or None, problem),
    as model_zoo.uploads.iter_zip yields them. Images are decoded `chunk` at a time and classified in one
    forward pass per chunk, so memory stays bounded for a zip of hundreds of large photos."""
    metrics = metrics if metrics is not None else model_metrics(model)
    hair = _hair(hair)
    results: list[Union[Diagnosis, ItemError, None]] = []
    pending: list[tuple[int, _Prepared, Optional[PatientDetails]]] = []
    for index, item in enumerate(items):
        name, source, problem = (tuple(item) + ("",))[:3]
        results.append(None)
        try:
            if source is None:
                raise ImageError(problem or "No image data.")
            picture = load_image(source)
            prepared = _prepare(model, name, picture, hair, quality_verdict(picture), keep_images, fov_crop)
        except ImageError as exc:
            results[index] = ItemError(name, str(exc), model.card.get("id", ""), model.card.get("sha256", ""))
            continue
        pending.append((index, prepared, _details_at(details, index)))
        if len(pending) >= chunk:
            _flush(model, pending, results, metrics, tta)
    _flush(model, pending, results, metrics, tta)
    return results  # type: ignore[return-value]


def _details_at(details, index: int) -> Optional[PatientDetails]:
    if details is None or isinstance(details, PatientDetails):
        return details
    return details[index] if index < len(details) else None


def _flush(model, pending: list, results: list, metrics: dict, tta: bool) -> None:
    if not pending:
        return
    raw, verdicts = _forward(model, np.stack([p.array for _, p, _ in pending]), tta)
    for (index, prepared, details), row, verdict in zip(pending, raw, verdicts):
        results[index] = _build(model, prepared, row, verdict, details, metrics, tta, keep_array=False)
    pending.clear()


def heatmap(model, image: Union[Diagnosis, ImageSource, Image.Image, np.ndarray], target: Union[str, int, None] = None,
            method: str = "gradcam", explainer=None) -> Heatmap:
    """The heatmap of `target` (label or index; default: the top class) via model.explainer(method).

    image: a Diagnosis (what its model saw), an image, or prepared (h, w, 3) pixels. Pass a cached
    `explainer` (the app's) to avoid building one per call.
    """
    if isinstance(image, Diagnosis):
        target = image.top if target is None else target
        array = image.array if image.array is not None else prepare_image(image.image, model.input_size)
    elif isinstance(image, np.ndarray):
        array = image
    else:
        array = prepare_image(load_image(image), model.input_size)
    array = np.asarray(array, np.float32)
    if target is None:
        target = int(np.argmax(model.predict_arrays(array[None])[0]))
    index = target if isinstance(target, (int, np.integer)) else model.classes.index(target)
    values = (explainer or model.explainer(method))(array[None], int(index))[0]
    return Heatmap(np.asarray(values, np.float32), method, model.classes[int(index)])


# ---------------------------------------------------------------------------------------------- batch table


def batch_row(result: Union[Diagnosis, ItemError], classes: Sequence[str] = ()) -> dict:
    """One row of the batch table / CSV: the verdicts, the answer, every class probability, the model."""
    row = {"file": result.name, "status": "error", "prediction": "", "probability": None, "second": "",
           "second_probability": None, "malignant_or_premalignant": None, "uncertain_refer": None,
           "melanoma_probability": None, "melanoma_alert": None, "not_dermoscopy": None, "unlike_training": None,
           "refer": None, "warning": "", "ood_score": None, "quality_ok": None, "quality_flags": "", "prediction_set": "",
           "patient_details": "", "reason": ""}
    row.update({f"p_{c}": None for c in classes})
    if isinstance(result, ItemError):
        row.update(reason=result.message)
        return {**row, "model_id": result.model_id, "model_sha256": result.model_sha256}
    d = result
    row.update(status="refused" if d.refused else "classified", reason=d.refusal,
               not_dermoscopy=_not_dermoscopy_flag(d), ood_score=_round(d.not_dermoscopy.score),
               unlike_training=d.unlike_training if d.not_dermoscopy.checked and not d.refused else None,
               refer=d.refer, warning=d.ood_warning,
               quality_ok=None if d.quality is None else d.quality.usable,
               quality_flags=" ".join(d.quality.flags) if d.quality is not None else "")
    if d.probabilities is not None:
        row.update(prediction=display_name(d.top), probability=_round(d.top_probability),
                   second=display_name(d.runner_up), second_probability=_round(d.runner_up_probability),
                   malignant_or_premalignant=_round(d.concerning_probability), uncertain_refer=d.abstains,
                   melanoma_probability=_round(d.melanoma_probability), melanoma_alert=d.melanoma_alert,
                   prediction_set=" | ".join(display_name(c) for c in d.prediction_set or []),
                   patient_details=d.details_variant or "")
        row.update({f"p_{c}": _round(float(p)) for c, p in zip(d.classes, d.probabilities)})
    return {**row, "model_id": d.model_id, "model_sha256": d.model_sha256}


def _not_dermoscopy_flag(d: Diagnosis) -> Optional[bool]:
    """True / False, or None when no detector looked at the image."""
    if d.refused_elsewhere or d.not_dermoscopy.rejected:
        return True
    return False if d.not_dermoscopy.checked else None


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(float(value), 4)


def batch_table(results: Sequence[Union[Diagnosis, ItemError]]) -> list[dict]:
    """Rows for every result, all with the same columns (one per class of the model, p_<label>)."""
    classes = next((r.classes for r in results if isinstance(r, Diagnosis)), [])
    return [batch_row(r, classes) for r in results]


def batch_csv(results: Sequence[Union[Diagnosis, ItemError]]) -> str:
    """The batch table as CSV text (empty cells for what does not apply)."""
    rows = batch_table(results)
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()
