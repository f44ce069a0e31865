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

    Directories are skipped. `exclude_dir` (the output folder, when it lies inside
    the input folder) is never read back as input. Symlinks are skipped unless
    `follow_symlinks`, so a link cannot pull files from outside the input tree.
    """
    root = Path(input_dir).resolve()
    excluded = Path(exclude_dir).resolve() if exclude_dir else None
    for path in sorted(Path(input_dir).glob(pattern)):
        try:
            if path.is_symlink() and not follow_symlinks:
                logger.debug("skipping symlink %s", path)
                continue
            if not path.is_file():
                continue
        except OSError:
            continue
        absolute = path.resolve() if follow_symlinks else path.absolute()
        if excluded is not None and _is_within(absolute, excluded):
            continue
        rel = path.relative_to(input_dir)
        key = PurePosixPath(*rel.parts).as_posix()
        if key.startswith("../") or os.path.isabs(key):
            continue
        yield key


def list_inputs(input_dir: str, pattern: str = "*", **kwargs) -> list[str]:
    return list(iter_inputs(input_dir, pattern, **kwargs))
