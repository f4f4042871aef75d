"""Reading and atomically writing model folders in the zoo: the one writer of a model's files.

A model folder is written in full under a hidden temporary name inside the zoo
and then renamed into place, so a killed trainer never leaves a half-written
model where `list_models()` would see it. Later changes to a published model's
card.json or metrics.json (calibration, OOD, clinical figures, ...) go through
`update_card` / `update_metrics` (or `edit_model_json` for nested changes): a
read-modify-write under a lock, written through a temporary file and a rename.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

try:                                   # POSIX; elsewhere updates are atomic but unlocked
    import fcntl
except ImportError:                    # pragma: no cover - Windows
    fcntl = None

PACKAGE_DIR = Path(__file__).resolve().parent
ZOO_ENV = "DERMLAB_ZOO"
MODEL_FILE = "model.keras"
CARD_FILE = "card.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
PREDICTIONS_FILE = "predictions.csv"
ZOO_INDEX = "zoo.json"


def zoo_dir() -> Path:
    """The zoo root: $DERMLAB_ZOO if set, else model_zoo/models in this package."""
    return Path(os.environ.get(ZOO_ENV) or PACKAGE_DIR / "models")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def write_model_folder(model_id: str, fill: Callable[[Path], None], root: Path | None = None) -> Path:
    """Create zoo/<model_id> atomically: `fill(tmp_dir)` writes the files, then one rename publishes them.

    An existing folder of the same id is replaced only after the new one is complete.
    """
    root = Path(root or zoo_dir())
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{model_id}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        fill(tmp)
        _fsync_tree(tmp)
        final = root / model_id
        if final.exists():
            old = root / f".old-{model_id}-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def write_card(folder: Path, card: Mapping[str, Any]) -> None:
    """Write a whole card.json, for a folder that `write_model_folder` is filling (later: `update_card`)."""
    write_json_atomic(Path(folder) / CARD_FILE, dict(card))


def write_metrics(folder: Path, metrics: Mapping[str, Any]) -> None:
    """Write a whole metrics.json, for a folder that `write_model_folder` is filling (later: `update_metrics`)."""
    write_json_atomic(Path(folder) / METRICS_FILE, dict(metrics))


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Serialise read-modify-writes of one model folder, so two trainer commands keep each other's keys.

    The lock is held on the folder itself, not on a lock file, so the folder holds only the model's files."""
    if fcntl is None:
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def edit_model_json(folder: Path, name: str, edit: Callable[[dict], None]) -> dict:
    """Read a model folder's JSON file `name` (CARD_FILE or METRICS_FILE; {} if absent), let `edit` change it
    in place, and write it back atomically under the folder's lock. Returns the new content."""
    path = Path(folder) / name
    with _folder_lock(Path(folder)):
        data = read_json(path) if path.is_file() else {}
        edit(data)
        write_json_atomic(path, data)
    return data


def update_card(folder: Path, changes: Mapping[str, Any]) -> dict:
    """Set top-level keys of a published model's card.json (a value of None removes the key)."""
    return edit_model_json(folder, CARD_FILE, lambda card: _merge(card, changes))


def update_metrics(folder: Path, changes: Mapping[str, Any]) -> dict:
    """Set top-level keys of a published model's metrics.json (a value of None removes the key)."""
    return edit_model_json(folder, METRICS_FILE, lambda metrics: _merge(metrics, changes))


def _merge(data: dict, changes: Mapping[str, Any]) -> None:
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value


def model_folders(root: Path | None = None) -> list[Path]:
    """Published model folders (hidden temporary folders are ignored)."""
    root = Path(root or zoo_dir())
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / CARD_FILE).is_file())


def read_index(root: Path | None = None) -> dict:
    """zoo.json: {"default": model_id} and any other zoo-wide settings."""
    path = Path(root or zoo_dir()) / ZOO_INDEX
    return read_json(path) if path.is_file() else {}


def set_default_model(model_id: str, root: Path | None = None) -> None:
    root = Path(root or zoo_dir())
    index = read_index(root)
    index["default"] = model_id
    write_json_atomic(root / ZOO_INDEX, index)
