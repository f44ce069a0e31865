"""``--input_list``: the inputs a file names, for users who already have their list.

The list is a text file (one path or URI per line; blank lines and ``#`` comments are
skipped), a CSV (the column ``path``, else the first) or a Parquet file (likewise); the
list itself is local or a URI. Relative entries are relative to the list's folder.
Every entry must live on one filesystem (local, or one bucket).

The list is streamed twice: once for the folder all entries share (their common root:
output names are relative to it, as they are to ``--input_dir``), then for the inputs,
grouped as they come: consecutive entries of one folder form a group, named together
(io/outputs.py). An entry listed again is processed once; an output name an earlier
group already took goes to the later input by its full file name (``x.png`` ->
``x.png.json``), so no two inputs share an output base. Both need the keys seen so far:
about 100 bytes of driver memory per entry. A listed file that does not exist becomes a
failure record when it is read.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
from typing import Iterator
from urllib.parse import urlsplit

from ray_ocr.errors import UsageError
from ray_ocr.io.storage import is_uri, open_folder

GROUP_LIMIT = 1000  # entries per naming group at most (bounds memory on a flat list)


def _open_text(location: str):
    if is_uri(location) and not location.startswith("file://"):
        import pyarrow.fs

        fs, path = pyarrow.fs.FileSystem.from_uri(location)
        return io.TextIOWrapper(fs.open_input_stream(path), encoding="utf-8")
    path = urlsplit(location).path if location.startswith("file://") else os.path.expanduser(location)
    return open(path, encoding="utf-8")


def _parquet_column(location: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    if is_uri(location) and not location.startswith("file://"):
        import pyarrow.fs

        fs, path = pyarrow.fs.FileSystem.from_uri(location)
        source = pq.ParquetFile(fs.open_input_file(path))
    else:
        source = pq.ParquetFile(os.path.expanduser(location.removeprefix("file://")))
    names = source.schema_arrow.names
    column = "path" if "path" in names else names[0]
    for batch in source.iter_batches(columns=[column], batch_size=4096):
        yield from (str(value) for value in batch.column(0).to_pylist() if value is not None)


def _entries(location: str) -> Iterator[str]:
    """The raw entries of the list, in order."""
    lowered = location.lower().split("?", 1)[0]
    if lowered.endswith(".parquet"):
        yield from _parquet_column(location)
        return
    with _open_text(location) as handle:
        if lowered.endswith(".csv"):
            rows = csv.reader(handle)
            header = next(rows, [])
            column = header.index("path") if "path" in header else 0
            if "path" not in header and header:
                yield header[0]  # no header row: the first line is an entry
            yield from (row[column] for row in rows if len(row) > column)
            return
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#"):
                yield line


class InputList:
    """An input source with the interface of io/storage.py's folders (``groups``,
    ``read``, ``display``, ``actor_reads``, ``bad_names``), over the files a list names."""

    def __init__(self, location: str):
        self.location = location
        self._folder = None  # the common root's folder, once known
        self.root: str | None = None
        self._query = urlsplit(location).query or None if is_uri(location) else None
        self.bad_names: set[str] = set()  # none: the list is read as UTF-8 text
        self._mounted = False  # every entry a file:// path (see _find_root)

    def _absolute(self, entry: str) -> str:
        if is_uri(entry):
            if entry.startswith("file://"):
                return entry.removeprefix("file://")
            parts = urlsplit(entry)
            if parts.query and self._query is None:
                self._query = parts.query  # S3 options (endpoint, region) ride on the URIs
            return entry.split("?", 1)[0]
        if os.path.isabs(entry):
            return os.path.normpath(entry)
        base = self.location.rsplit("/", 1)[0] if is_uri(self.location) else os.path.dirname(
            os.path.abspath(os.path.expanduser(self.location)))
        return f"{base}/{entry}" if is_uri(base) else os.path.normpath(os.path.join(base, entry))

    def _find_root(self) -> str:
        """The deepest folder that holds every entry (one pass, constant memory). Entries
        that are all ``file://`` name a folder mounted at that path on every node, which
        the actors then read themselves, as with ``--input_dir file://...``."""
        root, scheme, count, mounted = None, None, 0, 0
        for number, entry in enumerate(_entries(self.location), 1):
            mounted += entry.startswith("file://")
            path = self._absolute(entry)
            parts = urlsplit(path)
            where = (parts.scheme, parts.netloc) if is_uri(path) else ("", "")
            if scheme is None:
                scheme = where
            elif where != scheme:
                raise UsageError(f"--input_list {self.location}: line {number} ({entry}) is on another "
                                 "filesystem than the first entry; a list names files of one place")
            folder = posixpath.dirname(path)
            root = folder if root is None else _common_folder(root, folder)
            count += 1
        if root is None:
            raise UsageError(f"--input_list {self.location}: lists no file")
        self._mounted = mounted == count
        return root

    def groups(self, pattern: str = "*", exclude_dir: str | None = None,
               follow_symlinks: bool = False) -> Iterator[list[str]]:
        self.root = self._find_root()
        self._folder = open_folder(self.uri)
        seen: set[str] = set()
        group: list[str] = []
        for entry in _entries(self.location):
            key = self._absolute(entry)[len(self.root):].lstrip("/")
            if key in seen:
                continue  # listed again: processed once
            seen.add(key)
            if group and (posixpath.dirname(group[-1]) != posixpath.dirname(key) or len(group) >= GROUP_LIMIT):
                yield group
                group = []
            group.append(key)
        if group:
            yield group

    @property
    def uri(self) -> str:
        """The common root, as a folder to open (with the entries' S3 options; ``file://``
        when every entry was one)."""
        if self._mounted:
            return f"file://{self.root}"
        return f"{self.root}?{self._query}" if self._query and is_uri(self.root) else self.root

    def __getattr__(self, name):  # read, display, actor_reads: the root folder's
        if name.startswith("_") or self._folder is None:
            raise AttributeError(name)
        return getattr(self._folder, name)


def _common_folder(a: str, b: str) -> str:
    while not (b == a or b.startswith(a.rstrip("/") + "/")):
        parent = posixpath.dirname(a.rstrip("/"))
        if parent == a or (is_uri(a) and "/" not in a.split("://", 1)[1]):
            return a  # the bucket itself
        a = parent
    return a
