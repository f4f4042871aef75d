"""Publishing a trained model to the zoo: model file, card, metrics, history, predictions."""
from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Optional

import numpy as np

from model_zoo import store

from .architectures import create_model, get_spec
from .config import TrainConfig


def float32_copy(model, config: TrainConfig, num_classes: int, input_size: int):
    """Rebuild the architecture in float32 and copy the weights: the zoo file never carries
    mixed-precision policies, optimizer state or distribution wrappers."""
    from .distribute import set_mixed_precision

    set_mixed_precision(False)
    clean = create_model(config.architecture, num_classes, input_size=input_size, weights=None,
                         dropout=config.dropout, dense_units=config.dense_units, color_constancy=config.color_constancy)
    clean.set_weights(model.get_weights())
    return clean


def write_predictions_csv(path: Path, rows: list[dict], classes: list[str]) -> None:
    """One row per image: split, image_id, path, true, predicted, then p_<class> columns."""
    fields = ["split", "image_id", "path", "true", "predicted"] + [f"p_{name}" for name in classes]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def prediction_rows(split: str, image_ids: list[str], paths: list[str], labels: np.ndarray, proba: np.ndarray,
                    classes: list[str]) -> list[dict]:
    rows = []
    for image_id, path, label, p in zip(image_ids, paths, labels, proba):
        row = {"split": split, "image_id": image_id, "path": path, "true": classes[int(label)],
               "predicted": classes[int(np.argmax(p))]}
        row.update({f"p_{name}": f"{float(v):.6f}" for name, v in zip(classes, p)})
        rows.append(row)
    return rows


def build_card(config: TrainConfig, classes: list[str], input_size: int, pretrained: str, strategy: dict,
               timing: dict, metrics: dict, counts: dict, split_path: str) -> dict:
    """The model card as JSON: what, on which data, how trained, how good (headline on test)."""
    spec = get_spec(config.architecture)
    test = metrics.get("test", {})
    val = metrics.get("validation", {})
    return {
        "id": config.resolved_model_id(),
        "display_name": config.display_name or f"{config.architecture} on {config.dataset}",
        "architecture": config.architecture,
        "architecture_description": spec.description,
        "dataset": config.dataset,
        "classes": list(classes),
        "input_size": [input_size, input_size],
        "preprocessing": {
            "shared_function": "model_zoo.preprocessing.prepare_image (RGB, EXIF-upright, bilinear resize)",
            "input": "float32 RGB pixels 0..255",
            "inside_model": (("shades-of-grey colour constancy (p=6), then " if config.color_constancy else "")
                             + spec.preprocessing),
            **({"field_of_view_crop": True} if config.fov_crop else {}),
        },
        "cam_layer": spec.cam_layer,
        "pretrained": pretrained,
        "trained_on": {
            "split_file": split_path,
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
            "counts": counts,
            "label_conflicts_in_training": config.include_label_conflicts,
        },
        "training": {
            "seconds": round(timing.get("total", 0.0), 1),
            "phases": timing.get("phases", {}),
            "hardware": strategy.get("hardware"),
            **({"evaluated_on": strategy["evaluated_on"]} if strategy.get("evaluated_on") else {}),
            "backend": strategy.get("backend", "tensorflow"),
            "strategy": strategy.get("strategy"),
            "devices": strategy.get("devices"),
            "num_replicas": strategy.get("num_replicas"),
            "mixed_precision": config.mixed_precision,
            "config": {k: v for k, v in config.as_dict().items() if k not in ("data_dir", "zoo_dir", "run_dir")},
        },
        "headline": {
            "test_balanced_accuracy": test.get("balanced_accuracy"),
            "test_accuracy": test.get("accuracy"),
            "test_macro_f1": test.get("macro_f1"),
            "val_balanced_accuracy": val.get("balanced_accuracy"),
        },
        "notes": config.notes,
    }


def publish(config: TrainConfig, model, classes: list[str], input_size: int, card: dict, metrics: dict,
            history_csv: Optional[Path], prediction_table: list[dict], zoo_root: Optional[Path] = None) -> Path:
    """Write the whole model folder atomically (tmp folder + rename)."""
    clean = float32_copy(model, config, len(classes), input_size)

    def fill(folder: Path) -> None:
        model_path = folder / store.MODEL_FILE
        clean.save(model_path)
        card["sha256"] = store.sha256_file(model_path)
        card["size_bytes"] = model_path.stat().st_size
        card["parameters"] = int(clean.count_params())
        store.write_card(folder, card)
        store.write_metrics(folder, metrics)
        if history_csv and Path(history_csv).is_file():
            (folder / store.HISTORY_FILE).write_text(Path(history_csv).read_text())
        write_predictions_csv(folder / store.PREDICTIONS_FILE, prediction_table, classes)

    final = store.write_model_folder(config.resolved_model_id(), fill, zoo_root)
    if config.set_default:
        store.set_default_model(config.resolved_model_id(), zoo_root)
    return final
