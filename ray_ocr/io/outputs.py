"""Where each result goes, and writing it so that no reader ever sees half a file.

Naming (PaddleOCR's multi-process script, with the relative folder kept):
``<rel>/<stem>.json`` for an image, ``<rel>/<stem>_<page_index>.json`` for each page of
a PDF (or multi-page TIFF). When two inputs in one folder would claim the same names
(``x.jpg`` and ``x.png``; or ``x.pdf`` and ``x_0.png``), every input of that clash is
named after its full file name instead: ``x.jpg.json``, ``x.png.json``, ``x.pdf_0.json``.
So is an input at the top whose JSON would be the run's own ``summary.json``
(``summary.png`` -> ``summary.png.json``). The rule depends only on the set of inputs,
so reruns over the same set name alike.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections import defaultdict
from pathlib import PurePosixPath
from typing import Iterable

_PAGED_SUFFIXES = {".pdf", ".tif", ".tiff"}
SUMMARY_NAME = "summary.json"  # the run's summary, at the top of the output folder
_RESERVED_STEMS = {SUMMARY_NAME[:-len(".json")]}  # no input's JSON may take its name


def _split_key(key: str) -> tuple[str, str, str]:
    """(folder, file name, stem) of a POSIX key; folder "" at the top. String operations:
    this runs once per input, millions of times on large runs."""
    folder, _, name = key.rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    return folder, name, (stem if dot and stem and suffix else name)  # as PurePosixPath.stem


_PAGE_NAME = re.compile(r"(.+)_\d+")


def assign_output_bases(keys: Iterable[str]) -> dict[str, str]:
    """Map each input key to its output base (relative path, no ``.json``)."""
    by_folder: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for key in keys:
        folder, name, stem = _split_key(key)
        by_folder[folder].append((key, name, stem))
    bases: dict[str, str] = {}
    for folder, members in by_folder.items():
        stems: dict[str, list[str]] = defaultdict(list)
        for key, _, stem in members:
            stems[stem].append(key)
        clashing: set[str] = {k for group in stems.values() if len(group) > 1 for k in group}
        paged = defaultdict(list)  # stem -> the PDFs/TIFFs whose page outputs are <stem>_<n>
        for key, name, stem in members:
            if name[len(stem):].lower() in _PAGED_SUFFIXES:  # the suffix, as PurePosixPath's
                paged[stem].append(key)
        if paged:
            for key, _, stem in members:
                match = _PAGE_NAME.fullmatch(stem)
                if match and match.group(1) in paged:
                    clashing.add(key)
                    clashing.update(paged[match.group(1)])
        if not folder:
            clashing.update(key for key, _, stem in members if stem in _RESERVED_STEMS)
        prefix = f"{folder}/" if folder else ""
        for key, name, stem in members:
            base = name if key in clashing else stem
            if not folder and base in _RESERVED_STEMS:  # a file named just "summary"
                base += "_input"
            bases[key] = prefix + base
    return bases


class BaseClaims:
    """Output bases already given out, for inputs named group by group in an order that
    is not the folder's (``--input_list``): a later input whose base, or whose pages'
    names, would meet an earlier one's goes by its full file name, as a clash within
    one folder does. Keeps every base given out (the caller's run already keeps keys)."""

    def __init__(self):
        self.bases: set[str] = set()
        self.paged: set[str] = set()  # bases of PDFs/TIFFs: their pages are <base>_<n>
        self.page_like: set[str] = set()  # X of every base of the form X_<n>

    def settle(self, key: str, base: str) -> str:
        paged = os.path.splitext(key)[1].lower() in _PAGED_SUFFIXES
        match = _PAGE_NAME.fullmatch(base)
        if base in self.bases or (paged and base in self.page_like) or (match and match.group(1) in self.paged):
            base = key  # the full file name, folder included
            match = _PAGE_NAME.fullmatch(base)
        self.bases.add(base)
        if paged:
            self.paged.add(base)
        if match:
            self.page_like.add(match.group(1))
        return base


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


@functools.cache
def _file_mode() -> int:
    """What open() would give a new file (0o666 less the umask): mkstemp makes its
    temp files 0o600, which would hide results from the other users of a shared folder.
    Read from /proc where it can be: os.umask() can only be read by setting it, which
    races with the writer threads."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str, data: bytes, make_folder: bool = True) -> None:
    """Write to a temp file in the same folder, fsync, then os.replace()."""
    atomic_write_chunks(path, (data,), make_folder)


def atomic_write_chunks(path: str, chunks: Iterable[bytes], make_folder: bool = True) -> None:
    """``atomic_write_bytes`` of the chunks' concatenation, taken one at a time (a file
    of hundreds of megabytes is never whole in memory)."""
    folder = os.path.dirname(path)
    if make_folder:
        os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            try:
                os.fchmod(handle.fileno(), _file_mode())
            except OSError:
                pass  # a filesystem without modes (vfat, some SMB mounts): its own rules apply
            for chunk in chunks:
                handle.write(chunk)
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


# Each local output is fsync'ed before it is renamed into place, and each URI output is
# a PUT: many small files are bound by those waits, which overlap across threads (the
# driver's or each actor's).
WRITE_THREADS = 8

# Transient storage errors (a throttled PUT, a dropped connection, NFS hiccups) are
# retried after 0.2, 0.4, 0.8, 1.6 s; a write that still fails is a failure record.
WRITE_ATTEMPTS = 5
WRITE_BACKOFF_SECONDS = 0.2


def write_with_retries(folder, rel: str, data: bytes, attempts: int = WRITE_ATTEMPTS) -> None:
    import time

    for attempt in range(attempts):
        try:
            folder.write(rel, data)
            return
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(WRITE_BACKOFF_SECONDS * 2 ** attempt)


def write_result(folder, result, base: str) -> tuple[object, list[str]]:
    """Write one result's page JSONs (and --save files) into `folder` (io/storage.py),
    named after `base`; return (result, the outputs written). A result whose write
    fails comes back as a failure record (stage "write") with no outputs."""
    from ray_ocr.errors import first_line
    from ray_ocr.records import Failure, FileResult

    outputs: list[str] = []
    if not result.ok:
        return result, outputs
    try:
        for page in result.pages:
            for produced, data in page.extras:
                rel = extra_output_relpath(base, page.page_index, result.key, produced)
                write_with_retries(folder, rel, data)
                outputs.append(rel)
            rel = output_relpath(base, page.page_index)
            write_with_retries(folder, rel, page.json_text.encode("utf-8"))
            outputs.append(rel)
    except (OSError, ValueError) as exc:
        failure = Failure(key=result.key, stage="write", error_type=type(exc).__name__, message=first_line(exc))
        return FileResult(key=result.key, failure=failure, page_range=result.page_range), []
    return result, outputs
