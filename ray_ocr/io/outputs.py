"""Where each result goes, and writing it so that no reader ever sees half a file.

Naming (PaddleOCR's multi-process script, with the relative folder kept):
``<rel>/<stem>.json`` for an image, ``<rel>/<stem>_<page_index>.json`` for each page of
a PDF (or multi-page TIFF). When two inputs in one folder would claim the same names
(``x.jpg`` and ``x.png``; or ``x.pdf`` and ``x_0.png``), every input of that clash is
named after its full file name instead: ``x.jpg.json``, ``x.png.json``, ``x.pdf_0.json``.
The rule depends only on the set of inputs, so reruns over the same set name alike.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import defaultdict
from pathlib import PurePosixPath
from typing import Iterable

_PAGED_SUFFIXES = {".pdf", ".tif", ".tiff"}


def _claims(key: str) -> tuple[str, str]:
    """(folder, stem) that an input's output names start from."""
    p = PurePosixPath(key)
    return str(p.parent), p.stem


def assign_output_bases(keys: Iterable[str]) -> dict[str, str]:
    """Map each input key to its output base (relative path, no ``.json``)."""
    keys = list(keys)
    by_folder: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        by_folder[_claims(key)[0]].append(key)
    bases: dict[str, str] = {}
    for folder, members in by_folder.items():
        stems = defaultdict(list)
        for key in members:
            stems[_claims(key)[1]].append(key)
        clashing: set[str] = {k for group in stems.values() if len(group) > 1 for k in group}
        paged = [k for k in members if PurePosixPath(k).suffix.lower() in _PAGED_SUFFIXES]
        for doc in paged:
            page_names = re.compile(re.escape(_claims(doc)[1]) + r"_\d+")
            for key in members:
                if key != doc and page_names.fullmatch(_claims(key)[1]):
                    clashing.update((key, doc))
        for key in members:
            p = PurePosixPath(key)
            name = p.name if key in clashing else p.stem
            bases[key] = (p.parent / name).as_posix() if folder != "." else name
    return bases


def output_relpath(base: str, page_index: int | None) -> str:
    return f"{base}.json" if page_index is None else f"{base}_{page_index}.json"


def extra_output_relpath(base: str, page_index: int | None, input_key: str, produced: str) -> str:
    """Name for a file a result saver produced (``x_ocr_res_img.png``, ``x.md``,
    ``imgs/...``): the input's stem is replaced by this output's base, so images and
    markdown follow the JSON naming; files in sub-folders keep their relative path."""
    stem = PurePosixPath(input_key).stem
    folder = PurePosixPath(base).parent
    if "/" not in produced and produced.startswith(stem):
        rest = produced[len(stem):]
        page = "" if page_index is None else f"_{page_index}"
        if page and rest.startswith(page) and rest[len(page):][:1] in ("_", "."):
            rest = rest[len(page):]  # PaddleX names some page outputs <stem>_<page>_...
        return f"{base}{page}{rest}"
    return (folder / produced).as_posix() if str(folder) != "." else produced


def safe_join(root: str, relpath: str) -> str:
    """Join and refuse anything that would land outside `root`."""
    root_abs = os.path.abspath(root)
    target = os.path.abspath(os.path.join(root_abs, relpath))
    if os.path.commonpath([root_abs, target]) != root_abs:
        raise ValueError(f"output path {relpath!r} escapes the output folder")
    return target


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then os.replace()."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
