"""A zip with one folder per class, read in memory for a quick custom model (never extracted to disk).

The same checks as `python -m trainer prepare --format folders`, in the app: entries that climb out of their
folder ('..', absolute paths, drive letters) refuse the whole zip; images that cannot be opened refuse it too
(or are left out and listed, if asked); byte-identical copies are removed and listed; empty and one-image
classes are refused. Reading is bounded as for any upload (model_zoo.uploads: size checked before reading).
"""
from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import PurePosixPath

from .preprocessing import ImageError, load_image
from .uploads import iter_zip

MAX_IMAGES = 1000              # a quick model is for a few hundred images; larger sets: trainer prepare + train
MIN_PER_CLASS = 2              # one image to learn from, one to test on
LISTED = 5


class ZipError(ValueError):
    """A zip that cannot make a dataset; the message says why and what to change."""


@dataclass
class ClassImage:
    name: str                  # the zip entry
    label: str                 # the folder directly holding it
    data: bytes = field(repr=False)
    sha256: str


@dataclass
class ClassImages:
    """The usable images, and what was left out: (entry, reason) and (removed entry, kept entry) pairs."""

    images: list[ClassImage]
    skipped: list[tuple[str, str]]
    duplicates: list[tuple[str, str]]

    @property
    def classes(self) -> list[str]:
        return sorted({image.label for image in self.images})

    def counts(self) -> dict[str, int]:
        return {label: sum(i.label == label for i in self.images) for label in self.classes}


def _listed(items: list[str]) -> str:
    return ", ".join(items[:LISTED]) + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


def climbs_out(name: str) -> bool:
    """Whether a zip entry name leaves the folder it is unpacked into ('..', an absolute path, a drive)."""
    path = PurePosixPath(name.replace("\\", "/"))
    return (name.startswith(("/", "\\")) or ".." in path.parts
            or bool(path.parts) and ":" in path.parts[0])


def read_class_zip(data: bytes, skip_bad: bool = False, limit: int = MAX_IMAGES) -> ClassImages:
    """The labelled images of a zip of class folders (`class/x.jpg`, or `top/class/x.jpg`), checked."""
    try:
        entries = zipfile.ZipFile(BytesIO(data)).infolist()
    except zipfile.BadZipFile as exc:
        raise ZipError("This file is damaged or not a zip file.") from exc
    outside = [e.filename for e in entries if climbs_out(e.filename)]
    if outside:
        raise ZipError(f"Refused: {len(outside)} zip entr{'y climbs' if len(outside) == 1 else 'ies climb'} out of "
                       f"its folder ('..' or an absolute path): {_listed(outside)}.")
    images, skipped, seen, duplicates, bad = [], [], {}, [], []
    for name, content, problem in iter_zip(data, limit):
        if content is None:
            if "only the first" in problem:
                raise ZipError(f"The zip holds more than {limit} images; a quick model is for a few hundred. Prepare a "
                               "larger set with `python -m trainer prepare` and train a full model.")
            skipped.append((name, problem))
            continue
        parts = PurePosixPath(name).parts
        if len(parts) < 2:
            skipped.append((name, "Skipped: not inside a class folder."))
            continue
        try:
            load_image(content)
        except ImageError as exc:
            bad.append(f"{name} ({exc})")
            skipped.append((name, str(exc)))
            continue
        digest = hashlib.sha256(content).hexdigest()
        if digest in seen:
            duplicates.append((name, seen[digest]))
            continue
        seen[digest] = name
        images.append(ClassImage(name, parts[-2], content, digest))
    if bad and not skip_bad:
        raise ZipError(f"{len(bad)} image(s) cannot be opened (damaged, truncated or not an image): {_listed(bad)}. "
                       "Replace or remove them, or choose to leave them out.")
    found = ClassImages(images, skipped, duplicates)
    _check_classes(found, _folders(entries, images))
    return found


def _folders(entries: list[zipfile.ZipInfo], images: list[ClassImage]) -> set[str]:
    """Every folder at the class level (beside those holding images): an empty class folder is a mistake."""
    depths = {len(PurePosixPath(i.name).parts) - 1 for i in images}
    folders = set()
    for entry in entries:
        parts = PurePosixPath(entry.filename).parts
        if any(p.startswith((".", "__MACOSX")) for p in parts):
            continue
        folder = parts if entry.is_dir() else parts[:-1]
        if len(folder) in depths:
            folders.add(folder[-1])
    return folders


def _check_classes(found: ClassImages, folders: set[str]) -> None:
    counts = found.counts()
    empty = sorted(folders - set(counts))
    if empty:
        raise ZipError(f"Class folder(s) without usable images: {_listed(empty)}. Add images or remove the folder.")
    few = [f"'{label}' ({n})" for label, n in counts.items() if n < MIN_PER_CLASS]
    if few:
        raise ZipError(f"Class folder(s) with fewer than {MIN_PER_CLASS} usable images: {_listed(few)}. Every class "
                       "needs at least two (one to learn from, one to test on).")
    if len(counts) < 2:
        raise ZipError(f"The zip needs one folder per class and at least two classes; found "
                       f"{len(counts)} ({_listed(list(counts)) or 'no images in folders'}).")
