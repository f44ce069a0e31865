"""Input and output folders: a local path, or a URI every node can read.

One interface for both (``LocalFolder``, ``UriFolder``; ``open_folder`` picks): list
the inputs folder by folder (``groups``), ``read`` and ``write`` (atomic either way),
``exists_all`` for the resume check, whether an actor should read an input itself
(``actor_reads``), and where the run's own state lives while it runs (``state_dir``,
``pull_state``, ``push_state``): the output folder itself, or a local cache mirrored
to the URI.

URIs (``s3://``, ``gs://``, ``hdfs://``, ``file://``) go through ``pyarrow.fs``: one
well-kept library that has S3, GCS and HDFS built into one wheel, that Ray itself uses
for storage (Ray Data, Ray Train), and whose filesystems resolve credentials on each
node the standard way (environment, instance roles). S3 options ride in the URI's
query, as pyarrow reads them: ``s3://bucket/scans?region=eu-west-1`` or, for an
S3-compatible server, ``?endpoint_override=host:9000&scheme=http``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

from ray_ocr.errors import SetupError, first_line
from ray_ocr.io.outputs import atomic_write_bytes, safe_join
from ray_ocr.io.state_mirror import StateMirror

logger = logging.getLogger(__name__)


def is_uri(location: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", location))


def normalize_glob(pattern: str) -> str:
    """The pattern without leading ``./``; ValueError for one that could leave the input
    folder (absolute, or a ``..`` part)."""
    if pattern.startswith("/") or ".." in pattern.replace("\\", "/").split("/"):
        raise ValueError("must stay inside the input folder (relative, no '..')")
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
        # Object stores have no folders to make (a "folder" would be an extra marker
        # object per write); a filesystem such as HDFS does, once per folder.
        self._makes_folders = parts.scheme not in ("s3", "gs", "gcs")
        self._made: set[str] = set()
        self._listings: dict[str, set[str]] = {}  # output folder -> names, for the resume check
        self.bad_names: set[str] = set()  # none: object keys are UTF-8 text
        self._state: StateMirror | None = None  # the driver's, once it pulls the state

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

    def read(self, key: str) -> bytes:
        fs, _ = self._fs_root
        with fs.open_input_stream(self._path(key)) as stream:
            return stream.read()

    def write(self, rel: str, data: bytes) -> None:
        """One PUT: object stores make it visible whole or not at all."""
        fs, _ = self._fs_root
        path = self._path(rel)
        parent = path.rsplit("/", 1)[0]
        if self._makes_folders and parent not in self._made:
            fs.create_dir(parent, recursive=True)
            self._made.add(parent)
        with fs.open_output_stream(path) as stream:
            stream.write(data)

    def exists_all(self, rels: Iterable[str]) -> set[str]:
        """Which of `rels` exist: one listing per folder they are in, kept for the run
        (an --input_list may ask about one folder many times)."""
        by_folder: dict[str, list[str]] = {}
        for rel in rels:
            by_folder.setdefault(rel.rpartition("/")[0], []).append(rel)
        present = set()
        for folder, wanted in by_folder.items():
            if folder not in self._listings:
                listing = self._list_dir(folder, lambda key: True)
                self._listings[folder] = set(listing[0] if listing else ())
            present.update(set(wanted) & self._listings[folder])
        return present

    def groups(self, pattern: str, exclude_dir: str | None = None,
               follow_symlinks: bool = False) -> Iterator[list[str]]:
        """Folder by folder, as a local walk: one delimiter listing per folder (a
        zero-byte ``name/`` marker is a folder), so the first inputs are known after
        one request, whatever the size of the bucket."""
        from ray_ocr.io.discovery import walk

        return walk(pattern, self._list_dir)

    def _list_dir(self, rel_dir: str, matches) -> tuple[list[str], list[str]] | None:
        import pyarrow.fs

        fs, root = self._fs_root
        root = root.rstrip("/")
        folder = f"{root}/{rel_dir}" if rel_dir else root
        try:
            infos = fs.get_file_info(pyarrow.fs.FileSelector(folder, recursive=False, allow_not_found=True))
        except OSError:
            return None
        files, subdirs = [], []
        for info in sorted(infos, key=lambda i: i.path):
            name = info.path.rstrip("/").rsplit("/", 1)[-1]
            if not name or name.startswith("."):
                continue
            key = f"{rel_dir}/{name}" if rel_dir else name
            if info.type == pyarrow.fs.FileType.Directory:
                subdirs.append(key)
            elif info.type == pyarrow.fs.FileType.File and matches(key):
                files.append(key)
        return files, subdirs

    # Every node can read the store: the actor reads an input itself.
    actor_reads = True
    local_root = None

    @property
    def state_dir(self) -> str:
        """A local folder per output URI, mirrored to the URI (the manifest is
        append-only; objects are not)."""
        digest = hashlib.sha256(self.uri.encode()).hexdigest()[:16]
        return os.path.join(os.path.expanduser("~"), ".cache", "ray_ocr", "runs", digest)

    def pull_state(self, appended: Iterable[str], replaced: Iterable[str]) -> None:
        """Resume from the state stored beside the outputs (io/state_mirror.py), once the
        URI is known to take writes. `appended`: the files only appended to."""
        self._check_writable()
        self._state = StateMirror(self, self.state_dir, appended, replaced)
        self._state.pull()

    def _check_writable(self) -> None:
        """One empty object written and removed, before Ray starts: a missing bucket, a
        wrong endpoint or missing rights show now, not after every file's OCR. (A run
        needs no right to delete: if that is refused, the object stays.)"""
        probe = "ray_ocr_write_check"
        try:
            self.write(probe, b"")
        except OSError as exc:
            raise SetupError(f"--output_dir {self.display_root}: cannot write there ({first_line(exc)})") from None
        try:
            self.delete(probe)
        except FileNotFoundError:
            pass  # another run on this folder removed it first
        except OSError as exc:
            logger.warning("could not remove %s: %s", self.display(probe), first_line(exc))

    def push_state(self, final: bool = False) -> None:
        """Mirror the state: what was appended since the last push; `final`: every file
        whole (the end of the run)."""
        if self._state is None:
            return
        if final:
            self._state.push_all()
        else:
            self._state.push_new()

    def list_files(self, rel_dir: str) -> list[str]:
        """The keys of the files directly in a folder (none if it is not there); other
        errors raise, unlike an input listing's."""
        import pyarrow.fs

        fs, _ = self._fs_root
        infos = fs.get_file_info(pyarrow.fs.FileSelector(self._path(rel_dir), allow_not_found=True))
        return [f"{rel_dir}/{info.path.rsplit('/', 1)[-1]}" for info in infos if info.type == pyarrow.fs.FileType.File]

    def write_from(self, rel: str, local_path: str) -> None:
        """A local file, streamed (a run's manifest can be hundreds of megabytes)."""
        fs, _ = self._fs_root
        with open(local_path, "rb") as source, fs.open_output_stream(self._path(rel)) as stream:
            shutil.copyfileobj(source, stream, 8 << 20)

    def delete(self, rel: str) -> None:
        fs, _ = self._fs_root
        fs.delete_file(self._path(rel))


class LocalFolder:
    def __init__(self, path: str, shared: bool = False, bad_names: set[str] | None = None):
        self.root = self.uri = os.path.abspath(os.path.expanduser(path))
        # The driver reads a local input and ships its bytes (workers need no shared
        # disk), unless the folder is mounted at the same path on every node (file://).
        self.actor_reads = shared
        self._prefix = self.root.rstrip("/") + "/"  # + a relative key: os.path.join's result, a third of its cost
        self._made: set[str] = set()  # folders known to exist (one makedirs per folder)
        # keys found whose names are not UTF-8 (io/discovery.py), by its walk or the caller's
        self.bad_names: set[str] = set() if bad_names is None else bad_names

    def display(self, key: str) -> str:
        return key if key[:1] == "/" else self._prefix + key  # (ray_ocr.predict's keys are absolute)

    def read(self, key: str) -> bytes:
        with open(self.display(key), "rb") as handle:
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

    def groups(self, pattern: str, exclude_dir: str | None = None,
               follow_symlinks: bool = False) -> Iterator[list[str]]:
        from ray_ocr.io.discovery import iter_input_folders

        return iter_input_folders(self.root, pattern, exclude_dir=exclude_dir, follow_symlinks=follow_symlinks,
                                  bad_names=self.bad_names)

    @property
    def local_root(self) -> str | None:
        return self.root

    @property
    def state_dir(self) -> str:
        return self.root  # the manifest and reports live beside the outputs

    def pull_state(self, appended: Iterable[str], replaced: Iterable[str]) -> None:
        pass

    def push_state(self, final: bool = False) -> None:
        pass


def open_folder(location: str) -> LocalFolder | UriFolder:
    if location.startswith("file://"):
        return LocalFolder(urlsplit(location).path, shared=True)
    return UriFolder(location) if is_uri(location) else LocalFolder(location)


def read_item(root: str, key: str) -> bytes:
    """For actors: the bytes of `key` under a folder (a URI, or a local path)."""
    return open_folder(root).read(key)
