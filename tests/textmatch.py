"""Fuzzy text comparison for OCR output against the expected texts in realdocs.

The expected texts are model outputs or embedded text layers printed in the source
repositories, not ground truth, so tests compare by similarity: difflib's ratio on
the texts with all white space removed.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def similarity(expected: str, actual: str) -> float:
    return difflib.SequenceMatcher(None, squash(expected), squash(actual)).ratio()


def rec_text(json_path: Path) -> str:
    return "".join(json.loads(Path(json_path).read_text(encoding="utf-8"))["rec_texts"])


def textlayer_pages(path: Path) -> dict[int, str]:
    """Page index (0-based) -> text of a ``*.textlayer.txt`` sidecar."""
    parts = re.split(r"===== page (\d+) =====", Path(path).read_text(encoding="utf-8"))[1:]
    return {int(parts[i]) - 1: parts[i + 1] for i in range(0, len(parts), 2)}
