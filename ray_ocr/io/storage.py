"""Input and output folders: a local path, or a URI every node can read.

URIs (``s3://``, ``gs://``, ``hdfs://``, ``file://``) go through ``pyarrow.fs``: one
well-kept library that has S3, GCS and HDFS built into one wheel, that Ray itself uses
for storage (Ray Data, Ray Train), and whose filesystems resolve credentials on each
node the standard way (environment, instance roles). S3 options ride in the URI's
query, as pyarrow reads them: ``s3://bucket/scans?region=eu-west-1`` or, for an
S3-compatible server, ``?endpoint_override=host:9000&scheme=http``.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Iterable
from urllib.parse import urlsplit, urlunsplit

from ray_ocr.io.outputs import atomic_write_bytes, safe_join


def is_uri(location: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", location))


def normalize_glob(pattern: str) -> str:
    """The pattern without leading ``./``; ValueError for one that could leave the input
    folder (absolute, or a ``..`` part)."""
    if pattern.startswith("/") or ".." in pattern.replace("\\", "/").split("/"):
        raise ValueError(f"{pattern!r} must stay inside the input folder (relative, no '..')")
    while pattern.startswith("./"):
        pattern = pattern[2:]
    return pattern


def glob_regex(pattern: str) -> re.Pattern:
    """Pathlib-style glob for relative POSIX keys: ``*`` and ``?`` stay within one folder,
    ``[...]`` / ``[!...]`` match one character of a set, ``**/`` spans any number of
    folders; a leading ``./`` is dropped."""
    pattern = normalize_glob(pattern)
    out, i = "", 0
    while i < len(pattern):
        close = pattern.find("]", i + 2) if pattern[i] == "[" else -1
        if close > 0 and "/" not in pattern[i:close]:
            body = pattern[i + 1:close]
            if body.startswith("!"):
                body = "^" + body[1:]
            out, i = out + "(?!/)[" + body.replace("\\", "\\\\") + "]", close + 1
        elif pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


@lru_cache(maxsize=16)
def _filesystem(uri_root: str):
    """(filesystem, path) for a folder URI; cached per process (one per actor)."""
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(uri_root)


class UriFolder:
    """A folder behind a URI. Picklable: it holds strings, and each process opens its
    own filesystem."""

    def __init__(self, uri: str):
        parts = urlsplit(uri)
        self.uri = uri
        self.query = parts.query
        self.display_root = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self._listed: set[str] | None = None

    @property
    def _fs_root(self):
        return _filesystem(self.uri)

    def _path(self, rel: str) -> str:
        fs, root = self._fs_root
        rel = PurePosixPath(rel).as_posix()
        if rel.startswith("/") or ".." in PurePosixPath(rel).parts:
            raise ValueError(f"output path {rel!r} escapes the output folder")
        return f"{root.rstrip('/')}/{rel}"

    def display(self, key: str) -> str:
        return f"{self.display_root}/{key}"

    def list_files(self) -> list[str]:
        import pyarrow.fs

        fs, root = self._fs_root
        root = root.rstrip("/")
        try:
            infos = fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True, allow_not_found=True))
        except OSError:
            return []
        return sorted(
            info.path[len(root) + 1:] for info in infos if info.type == pyarrow.fs.FileType.File
        )

    def list(self, pattern: str) -> list[str]:
        regex = glob_regex(pattern)
        return [k for k in self.list_files()
                if regex.match(k) and not any(p.startswith(".") for p in k.split("/"))]

    def read(self, key: str) -> bytes:
        fs, _ = self._fs_root
        with fs.open_input_stream(self._path(key)) as stream:
            return stream.read()

    def write(self, rel: str, data: bytes) -> None:
        """One PUT: object stores make it visible whole or not at all."""
        fs, _ = self._fs_root
        path = self._path(rel)
        parent = path.rsplit("/", 1)[0]
        fs.create_dir(parent, recursive=True)
        with fs.open_output_stream(path) as stream:
            stream.write(data)

    def exists_all(self, rels: Iterable[str]) -> set[str]:
        """Which of `rels` existed when first asked: one listing per run (this is for
        the resume check, which asks folder by folder)."""
        if self._listed is None:
            self._listed = set(self.list_files())
        return {r for r in rels if r in self._listed}


class LocalFolder:
    def __init__(self, path: str):
        self.root = os.path.abspath(os.path.expanduser(path))
        self._made: set[str] = set()  # folders known to exist (one makedirs per folder)

    def display(self, key: str) -> str:
        return os.path.join(self.root, key)

    def read(self, key: str) -> bytes:
        with open(os.path.join(self.root, key), "rb") as handle:
            return handle.read()

    def write(self, rel: str, data: bytes) -> None:
        path = safe_join(self.root, rel)
        folder = os.path.dirname(path)
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        atomic_write_bytes(path, data, make_folder=False)

    def exists_all(self, rels: Iterable[str]) -> set[str]:
        return {r for r in rels if os.path.isfile(os.path.join(self.root, r))}


def open_folder(location: str) -> LocalFolder | UriFolder:
    if location.startswith("file://"):
        return LocalFolder(urlsplit(location).path)
    return UriFolder(location) if is_uri(location) else LocalFolder(location)


def read_uri_item(uri_root: str, key: str) -> bytes:
    """For actors: the bytes of `key` under a folder URI."""
    return UriFolder(uri_root).read(key)
