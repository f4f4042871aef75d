"""Safe reading of uploaded batches: several files or one zip (bounded in count and size)."""
from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import PurePosixPath
from typing import Iterator

MAX_BATCH_FILES = 200
MAX_ZIP_TOTAL = 200 * 1024 * 1024        # uncompressed bytes read from one zip
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


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
        if info.is_dir() or any(part.startswith((".", "__MACOSX")) for part in path.parts):
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
