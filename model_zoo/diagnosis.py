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

The result types live in model_zoo.diagnosis_result, the gate and alert decisions in model_zoo.gates, and
the batch table and its CSV in model_zoo.batch_export; this module runs them in order.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np
from PIL import Image

from . import quality
from .classes import display_name
from .diagnosis_result import Diagnosis, Heatmap, ItemError, OodVerdict
from .gates import conformal_set, melanoma_status, ood_verdicts, quality_verdict
from .inference import LOW_CONFIDENCE, abstains, read
from .metadata import PatientDetails
from .preprocessing import ImageError, ImageSource, crop_to_field_of_view, load_image, prepare_image

BATCH_CHUNK = 32            # images decoded and held at once by diagnose_batch (forward passes chunk further)


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
