"""Splitting a long PDF into page-range tasks, and putting its parts back together.

One 300-page PDF on one actor is a tail where every other actor waits. Its pages are
cut into parts of about ``pages_per_task`` pages; each part is a task of its own, run
by whichever actor is free. Each part's page JSONs are written as they come (page
names do not depend on who rendered them); the input is recorded in the manifest only
when every part is in, so a rerun redoes a half-finished PDF as a whole.
"""

from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ray_ocr.io.documents import pdf_page_count, sniff_kind
from ray_ocr.records import Failure, FileResult, Task


def pdf_parts(key: str, data: bytes, pages_per_task: int, password: str | None = None) -> tuple[int, list[Task]]:
    """(page count, parts) of an input's bytes; parts is [] unless it is a PDF longer
    than `pages_per_task` (an unreadable PDF stays whole: its actor reports why)."""
    if pages_per_task <= 0 or sniff_kind(data) != "pdf":
        return 0, []
    count = pdf_page_count(data, password) or 0
    return count, plan_parts(key, count, pages_per_task)


def label_part_failure(part: FileResult) -> Failure:
    """A part's failure, its message naming the part's pages."""
    return dataclasses.replace(part.failure, message=f"{part.task.pages_label}: {part.failure.message}")


def plan_parts(key: str, page_count: int, pages_per_task: int) -> list[Task]:
    """Near-equal contiguous page ranges, none longer than `pages_per_task`; [] when the
    document is short enough to stay one task."""
    if pages_per_task <= 0 or page_count <= pages_per_task:
        return []
    parts = -(-page_count // pages_per_task)
    bounds = [round(i * page_count / parts) for i in range(parts + 1)]
    return [Task(key, tuple(range(bounds[i], bounds[i + 1]))) for i in range(parts)]


@dataclass
class SplitDocument:
    """A PDF whose parts are out: what has come back, and its shared bytes (an object
    store reference the driver holds until the last part is in, retries included)."""

    key: str
    source_path: str
    data: Any
    page_count: int
    waiting: collections.Counter = field(default_factory=collections.Counter)  # parts not back yet
    outputs: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    failure: Failure | None = None
    attempts: int = 1
    seconds: float = 0.0

    def expect(self, parts: list[Task]) -> None:
        self.waiting.update(parts)

    def add(self, part: FileResult, outputs: list[str], attempts: int) -> tuple[FileResult, list[str], int] | None:
        """Take one part's outcome; once all parts are in, return the whole input's
        (result, outputs, attempts) for the manifest, else None. One failed part fails
        the input (its other pages stay on disk, unrecorded: a rerun redoes them)."""
        self.waiting[part.task] -= 1
        if self.waiting[part.task] <= 0:
            del self.waiting[part.task]
        self.outputs.update(outputs)
        self.warnings.extend(w for w in part.warnings if w not in self.warnings)
        self.attempts = max(self.attempts, attempts)
        self.seconds += part.seconds
        if part.failure is not None and self.failure is None:
            self.failure = label_part_failure(part)
        if self.waiting:
            return None
        result = FileResult(
            key=self.key, failure=self.failure, warnings=tuple(self.warnings),
            page_count=self.page_count, seconds=self.seconds,
        )
        return result, (sorted(self.outputs) if self.failure is None else []), self.attempts
