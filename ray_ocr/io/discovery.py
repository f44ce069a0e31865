"""Finding the input files of a run: lazily, folder by folder, in a deterministic order.

A run over millions of files must not list them all before the first one is sent: the
tree is walked one folder at a time (entries sorted by name, a folder's files before its
sub-folders), and each folder's matching files come out as one group (output names are
decided per folder, see io/outputs.py).
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Iterable, Iterator

from ray_ocr.io.storage import glob_regex, normalize_glob

logger = logging.getLogger(__name__)


# Why a file whose name is not UTF-8 (an archive from a Latin-1 or Shift-JIS system) is
# not run: its name could not go into the manifest, PaddleOCR's JSON or an object key.
def not_utf8(what: str) -> str:
    return (f"{what} is not valid UTF-8, which the outputs and the manifest need; rename it "
            "(convmv -f <its encoding> -t utf8 -r --notest <folder> renames a whole tree)")


NOT_UTF8 = not_utf8("its file name")


def shown_path(path: str) -> str:
    """`path` as text: itself when valid UTF-8, else its bytes with the odd ones escaped
    (``caf\\xe9``), as Python keeps them from a non-UTF-8 name (surrogateescape)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def utf8_key(key: str, bad_names: set[str], taken: Callable[[str], bool]) -> str:
    """`key` itself when it is valid UTF-8; else its bytes shown as text (``\\xe9`` for a
    byte that is not UTF-8), added to `bad_names` so the run records it as a failure.
    `taken(shown)`: a real file has that name (``caf\\xe9.jpg`` can be one), which then
    keeps it; the bad one is shown with `` (not UTF-8)`` after it."""
    if key.isascii():
        return key
    try:
        key.encode("utf-8")
        return key
    except UnicodeEncodeError:  # os gave the undecodable bytes as surrogates
        shown = shown_path(key)
        while taken(shown) or shown in bad_names:
            shown += " (not UTF-8)"
        bad_names.add(shown)
        return shown


class _FolderNames:
    """Whether a folder has an entry named as a key's last part; the names are gathered
    once, when the first name that is not UTF-8 needs them (most folders never do)."""

    def __init__(self, entries: list[os.DirEntry]):
        self._entries = entries
        self._names: set[str] | None = None

    def __call__(self, key: str) -> bool:
        if self._names is None:
            self._names = {entry.name for entry in self._entries}
        return key.rsplit("/", 1)[-1] in self._names


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _walk_plan(pattern: str) -> tuple[str, int | None]:
    """(the folder the pattern's literal leading parts name, how many folders deep below
    the input folder a match can be; None: any depth). ``sub/*.pdf`` walks only ``sub``."""
    parts = pattern.split("/")
    literal = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        literal.append(part)
    depth = None if "**" in pattern else len(parts) - 1
    return "/".join(literal), depth


Listing = tuple[list[str], list[str]]  # (matching file keys, sub-folder keys), sorted


def walk(pattern: str, list_dir: Callable[[str, Callable[[str], bool]], Listing | None]) -> Iterator[list[str]]:
    """Folder by folder, the keys matching `pattern`: ``list_dir(folder_key, matches)``
    lists one folder (None: it is not there); sub-folders are entered in name order,
    after the folder's own files, and only as deep as the pattern can match."""
    pattern = normalize_glob(pattern)
    regex = glob_regex(pattern)
    start, max_depth = _walk_plan(pattern)
    stack = [start]  # folders to visit, relative keys; popped last-first, pushed reversed
    while stack:
        rel_dir = stack.pop()
        listing = list_dir(rel_dir, lambda key: bool(regex.match(key)))
        if listing is None:
            continue
        files, subdirs = listing
        if files:
            yield files
        if max_depth is None or (rel_dir.count("/") + 1 if rel_dir else 0) < max_depth:
            stack.extend(sorted(subdirs, reverse=True))
        elif max_depth == 0 and subdirs:  # a run that silently did a tenth of an archive
            _say_not_searched(subdirs, pattern, list_dir)


_CHECKED_SUBFOLDERS = 20  # a listing each: beyond these, a sub-folder is named unchecked


def _say_not_searched(subdirs: list[str], pattern: str, list_dir) -> None:
    """One line naming the sub-folders a top-folder pattern left that hold something."""
    named = [d for d in subdirs[:_CHECKED_SUBFOLDERS] if _holds_anything(d, list_dir)]
    named += subdirs[_CHECKED_SUBFOLDERS:]
    if named:
        logger.info("%d sub-folder(s) of the input folder not searched (%s): --input_glob_pattern %r "
                    "matches files directly in it only; '**/%s' searches sub-folders too",
                    len(named), ", ".join(named[:3]) + (", ..." if len(named) > 3 else ""), pattern, pattern)


def _holds_anything(rel_dir: str, list_dir) -> bool:
    """Whether a folder holds a file or a folder (not hidden). Its files are only seen,
    never taken: the lister records nothing of them."""
    seen: list[str] = []
    listing = list_dir(rel_dir, lambda key: seen.append(key) or False)
    return bool(seen or (listing and listing[1]))


def iter_input_folders(
    input_dir: str,
    pattern: str = "*",
    *,
    exclude_dir: str | None = None,
    follow_symlinks: bool = False,
    bad_names: set[str] | None = None,
) -> Iterator[list[str]]:
    """Yield, folder by folder, the sorted keys (paths relative to `input_dir`, POSIX
    separators) of the files matching `pattern` (``*`` and ``?`` within one folder,
    ``**/`` any depth).

    Hidden files and folders are skipped. `exclude_dir` (the output folder, when it
    lies inside the input folder) is never read back as input. A file that resolves
    outside the input tree is skipped, and symlinked folders are not entered (as
    pathlib's ``**`` did), unless `follow_symlinks`; then each real folder is walked once.
    A file whose name is not UTF-8 comes out under its escaped name, which is added to
    `bad_names` (see ``utf8_key``).
    """
    lister = _LocalLister(input_dir, exclude_dir, follow_symlinks, set() if bad_names is None else bad_names)
    return walk(pattern, lister)


class _LocalLister:
    """Lists one local folder for ``walk``, with the symlink and output-folder rules."""

    def __init__(self, input_dir: str, exclude_dir: str | None, follow_symlinks: bool, bad_names: set[str]):
        self.root = os.path.realpath(input_dir)
        self.bad_names = bad_names
        self.excluded = os.path.realpath(exclude_dir) if exclude_dir else None
        self.follow_symlinks = follow_symlinks
        self.seen_dirs: set[str] = set()  # real paths entered: each once, no link loops

    def outside(self, path: str) -> bool:
        return self.excluded is not None and _is_within(path, self.excluded)

    def __call__(self, rel_dir: str, matches) -> Listing | None:
        folder = os.path.join(self.root, rel_dir) if rel_dir else self.root
        if not self.seen_dirs:
            self.seen_dirs.add(os.path.realpath(folder))
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            logger.warning("cannot list %s: %s", folder, exc)
            return None
        files, subdirs = [], []
        taken = _FolderNames(entries)
        for entry in entries:
            if entry.name.startswith("."):
                continue  # .DS_Store, .git: not documents
            key = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                if entry.is_dir():
                    subdirs.append((entry, key))
                elif entry.is_file() and matches(key) and self._admit_file(entry):
                    files.append(utf8_key(key, self.bad_names, taken))
            except OSError:
                continue
        return ([] if self.outside(folder) else files), self._enter(subdirs)

    def _admit_file(self, entry: os.DirEntry) -> bool:
        if not entry.is_symlink():
            return True
        target = os.path.realpath(entry.path)
        if not self.follow_symlinks and not _is_within(target, self.root):
            logger.warning("skipping %s: it links outside the input folder (--follow_symlinks)", entry.path)
            return False
        return not self.outside(target)

    def _enter(self, subdirs: list) -> list[str]:
        """The sub-folders to walk: not the output folder, no link loops, each real
        folder once; symlinked ones only with --follow_symlinks."""
        entered = []
        # Real folders first: a folder also reachable through a link keeps its own name.
        for entry, key in sorted(subdirs, key=lambda pair: pair[0].is_symlink()):
            if entry.is_symlink() and not self.follow_symlinks:
                continue
            path = os.path.realpath(entry.path)
            if self.outside(path):
                continue  # the output folder inside the input folder
            if path in self.seen_dirs or (not self.follow_symlinks and not _is_within(path, self.root)):
                continue  # a link loop, or out of the tree
            self.seen_dirs.add(path)
            entered.append(key)
        return entered


def iter_inputs(input_dir: str, pattern: str = "*", **kwargs) -> Iterator[str]:
    for group in iter_input_folders(input_dir, pattern, **kwargs):
        yield from group
