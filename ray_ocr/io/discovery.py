"""Finding the input files of a run: lazily, folder by folder, in a deterministic order.

A run over millions of files must not list them all before the first one is sent: the
tree is walked one folder at a time (entries sorted by name, a folder's files before its
sub-folders), and each folder's matching files come out as one group (output names are
decided per folder, see io/outputs.py).
"""

from __future__ import annotations

import itertools
import logging
import os
from pathlib import PurePosixPath
from typing import Iterable, Iterator

from ray_ocr.io.storage import glob_regex, normalize_glob

logger = logging.getLogger(__name__)


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


def iter_input_folders(
    input_dir: str,
    pattern: str = "*",
    *,
    exclude_dir: str | None = None,
    follow_symlinks: bool = False,
) -> Iterator[list[str]]:
    """Yield, folder by folder, the sorted keys (paths relative to `input_dir`, POSIX
    separators) of the files matching `pattern` (``*`` and ``?`` within one folder,
    ``**/`` any depth).

    Hidden files and folders are skipped. `exclude_dir` (the output folder, when it
    lies inside the input folder) is never read back as input. A file that resolves
    outside the input tree is skipped, and symlinked folders are not entered (as
    pathlib's ``**`` did), unless `follow_symlinks`; then each real folder is walked once.
    """
    root = os.path.realpath(input_dir)
    excluded = os.path.realpath(exclude_dir) if exclude_dir else None
    pattern = normalize_glob(pattern)
    regex = glob_regex(pattern)
    start, max_depth = _walk_plan(pattern)
    if start and not os.path.isdir(os.path.join(root, start)):
        return
    stack = [start]  # folders to visit, relative keys; popped last-first, pushed reversed
    seen_dirs: set[str] = {os.path.realpath(os.path.join(root, start))}
    while stack:
        rel_dir = stack.pop()
        folder = os.path.join(root, rel_dir) if rel_dir else root
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            logger.warning("cannot list %s: %s", folder, exc)
            continue
        files, subdirs = [], []
        for entry in entries:
            if entry.name.startswith("."):
                continue  # .DS_Store, .git: not documents
            key = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                if entry.is_dir():
                    subdirs.append((entry, key))
                elif entry.is_file() and regex.match(key):
                    files.append((entry, key))
            except OSError:
                continue
        group = []
        for entry, key in files:
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if not follow_symlinks and not _is_within(target, root):
                    logger.warning("skipping %s: it links outside the input folder (--follow_symlinks)", entry.path)
                    continue
                if excluded is not None and _is_within(target, excluded):
                    continue
            group.append(key)
        if group and not (excluded is not None and _is_within(folder, excluded)):
            yield group
        if max_depth is not None and (rel_dir.count("/") + 1 if rel_dir else 0) >= max_depth:
            continue
        entered = []
        # Real folders first: a folder also reachable through a link keeps its own name.
        for entry, key in sorted(subdirs, key=lambda pair: pair[0].is_symlink()):
            if entry.is_symlink() and not follow_symlinks:
                continue
            path = os.path.realpath(entry.path)
            if excluded is not None and _is_within(path, excluded):
                continue  # the output folder inside the input folder
            if path in seen_dirs or (not follow_symlinks and not _is_within(path, root)):
                continue  # a link loop, or out of the tree
            seen_dirs.add(path)
            entered.append(key)
        stack.extend(sorted(entered, reverse=True))


def group_by_folder(keys: Iterable[str]) -> Iterator[list[str]]:
    """Keys (a URI listing) as per-folder groups of sorted keys, like iter_input_folders."""
    def folder(key: str) -> str:
        return str(PurePosixPath(key).parent)

    for _, group in itertools.groupby(sorted(keys, key=lambda k: (folder(k), k)), key=folder):
        yield list(group)


def iter_inputs(input_dir: str, pattern: str = "*", **kwargs) -> Iterator[str]:
    for group in iter_input_folders(input_dir, pattern, **kwargs):
        yield from group


def list_inputs(input_dir: str, pattern: str = "*", **kwargs) -> list[str]:
    return list(iter_inputs(input_dir, pattern, **kwargs))
