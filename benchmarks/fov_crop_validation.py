"""Does cutting images to the dermatoscope's round field of view help a committed model? Chosen on validation only.

Balanced accuracy of a zoo model on the HAM10000 validation split with and without
model_zoo.preprocessing.crop_to_field_of_view, the paired bootstrap interval of the difference, and how many images
have a round field at all. The rule, fixed before any PH² figure was looked at, is the one hair removal follows
(trainer/quality.py): on by default only when the interval of the difference lies above zero. PH² is not read here;
it is scored once afterwards with `python -m trainer external MODEL_ID --fov-crop`.

    python benchmarks/fov_crop_validation.py [MODEL_ID] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BOOTSTRAP, SEED, CHUNK = 2000, 42, 128


def fov_check(model_id: str, data_dir=None) -> dict:
    """Validation balanced accuracy without and with the crop, and the paired bootstrap CI of the difference."""
    from sklearn.metrics import balanced_accuracy_score

    import model_zoo
    from model_zoo.preprocessing import find_field_of_view, load_image, prepare_image
    from trainer.data import resolve_data_dir
    from trainer.evaluate import card_selection

    folder = resolve_data_dir(data_dir)
    model = model_zoo.load(model_id)
    rows = card_selection(model.card, "val", folder)
    labels = np.array([model.classes.index(label) for label in rows["label"]])
    paths = [folder / model.card["dataset"] / p for p in rows["path"]]
    plain, cropped, found = [], [], 0
    for start in range(0, len(paths), CHUNK):
        images = [load_image(p) for p in paths[start:start + CHUNK]]
        found += sum(find_field_of_view(i) is not None for i in images)
        for out, crop in ((plain, False), (cropped, True)):
            batch = np.stack([prepare_image(i, model.input_size, crop) for i in images])
            out.append(model.predict_arrays(batch).argmax(axis=1))
    plain_pred, crop_pred = np.concatenate(plain), np.concatenate(cropped)
    rng = np.random.default_rng(SEED)
    diffs = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(labels), len(labels))
        diffs.append(balanced_accuracy_score(labels[pick], crop_pred[pick])
                     - balanced_accuracy_score(labels[pick], plain_pred[pick]))
    without, with_ = balanced_accuracy_score(labels, plain_pred), balanced_accuracy_score(labels, crop_pred)
    low, high = (float(v) for v in np.percentile(diffs, [2.5, 97.5]))
    return {"model": model_id, "split": f"{model.card['dataset']} val", "n": int(len(labels)),
            "images_with_round_field": int(found), "balanced_accuracy_without": float(without),
            "balanced_accuracy_with": float(with_), "difference": float(with_ - without),
            "difference_ci95": [low, high], "predictions_changed": int((plain_pred != crop_pred).sum()),
            "default": bool(low > 0), "rule": "on by default only if the 95% CI of the difference is above zero"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_id", nargs="?", default="ensemble_224_cc_ham10000")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    print(json.dumps(fov_check(args.model_id, args.data_dir), indent=2))


if __name__ == "__main__":
    main()
