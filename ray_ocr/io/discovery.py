"""Listing the input files of a run, in a deterministic order."""

from __future__ import annotations

import logging
import os
from pathlib import Path, PurePosixPath
from typing import Iterator

logger = logging.getLogger(__name__)


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def iter_inputs(
    input_dir: str,
    pattern: str = "*",
    *,
    exclude_dir: str | None = None,
    follow_symlinks: bool = False,
) -> Iterator[str]:
    """Yield input keys (paths relative to `input_dir`, POSIX separators), sorted.

    Directories and hidden files are skipped. `exclude_dir` (the output folder, when
    it lies inside the input folder) is never read back as input. A file that resolves
    outside the input tree (through a symlink) is skipped unless `follow_symlinks`.
    """
    root = Path(input_dir).resolve()
    excluded = Path(exclude_dir).resolve() if exclude_dir else None
    for path in sorted(Path(input_dir).glob(pattern)):
        try:
            if not path.is_file():
                continue
            if any(part.startswith(".") for part in path.relative_to(input_dir).parts):
                continue  # hidden files and folders (.DS_Store, .git) are not documents
            resolved = path.resolve()
        except OSError:
            continue
        if not follow_symlinks and not _is_within(resolved, root):
            logger.warning("skipping %s: it links outside the input folder (--follow_symlinks)", path)
            continue
        if excluded is not None and (_is_within(resolved, excluded) or _is_within(path.absolute(), excluded)):
            continue
        rel = path.relative_to(input_dir)
        key = PurePosixPath(*rel.parts).as_posix()
        if key.startswith("../") or os.path.isabs(key):
            continue
        yield key


def list_inputs(input_dir: str, pattern: str = "*", **kwargs) -> list[str]:
    return list(iter_inputs(input_dir, pattern, **kwargs))
