"""Safe reading of uploaded batches: several files or one zip (bounded in count and size)."""
from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import PurePosixPath
from typing import Iterator, Sequence

from .constants import IMAGE_SUFFIXES

MAX_BATCH_FILES = 200                    # images read from one batch, and from one zip
MAX_ZIP_TOTAL = 200 * 1024 * 1024        # uncompressed bytes read from one zip
Item = tuple[str, "bytes | None", str]   # (name, image bytes or None, problem)


def _listed(info: zipfile.ZipInfo) -> bool:
    """Whether iter_zip yields a row for this entry (folders, hidden files and macOS metadata are skipped)."""
    path = PurePosixPath(info.filename)
    return not info.is_dir() and not any(part.startswith((".", "__MACOSX")) for part in path.parts)


def iter_zip(data: bytes, limit: int = MAX_BATCH_FILES) -> Iterator[tuple[str, bytes | None, str]]:
    """Yield (name, bytes or None, problem) for each image-like entry; never extracts to disk.

    Entries are read with a size check first (zip bombs), hidden files and
    folders are skipped, and at most `limit` images are returned.
    """
    try:
        archive = zipfile.ZipFile(BytesIO(data))
    except zipfile.BadZipFile:
        yield "(zip)", None, "This zip file is damaged or not a zip file."
        return
    total, count = 0, 0
    for info in archive.infolist():
        name = info.filename
        path = PurePosixPath(name)
        if not _listed(info):
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            yield name, None, "Skipped: not an image file name."
            continue
        if count >= limit:
            yield name, None, f"Skipped: only the first {limit} images of a zip are read."
            continue
        total += info.file_size
        if total > MAX_ZIP_TOTAL:
            yield name, None, "Skipped: the zip holds more data than the app reads at once."
            continue
        try:
            yield name, archive.read(info), ""
            count += 1
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
            yield name, None, f"Could not read this entry of the zip ({type(exc).__name__})."


def is_zip_name(name: str) -> bool:
    return name.lower().endswith(".zip")


def count_items(files: Sequence[tuple[str, bytes]]) -> int:
    """How many rows batch_items yields for these uploads, without reading any image (for a progress bar)."""
    total = 0
    for name, data in files:
        if not is_zip_name(name):
            total += 1
            continue
        try:
            total += sum(_listed(info) for info in zipfile.ZipFile(BytesIO(data)).infolist())
        except zipfile.BadZipFile:
            total += 1
    return total


def batch_items(files: Sequence[tuple[str, bytes]], limit: int = MAX_BATCH_FILES) -> Iterator[Item]:
    """(name, bytes or None, problem) for every image of several uploads, zips opened in memory, read lazily.

    At most `limit` images are read from the whole batch (as from one zip): a batch of many small zips must
    not get round the bound on what one batch holds in memory and time. Entries of a zip are named zip/entry.
    """
    read = 0
    for name, data in files:
        rows = ((f"{name}/{n}", d, p) for n, d, p in iter_zip(data, limit)) if is_zip_name(name) else [(name, data, "")]
        for row_name, row_data, problem in rows:
            if row_data is not None and read >= limit:
                yield row_name, None, f"Skipped: only the first {limit} images of a batch are read."
                continue
            read += row_data is not None
            yield row_name, row_data, problem
