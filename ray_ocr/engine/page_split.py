"""Splitting a long PDF into page-range tasks, and putting its parts back together.

One 300-page PDF on one actor is a tail where every other actor waits. Its pages are
cut into parts of about ``pages_per_task`` pages; each part is a task of its own, run
by whichever actor is free. Each part's page JSONs are written as they come (page
names do not depend on who rendered them), and the part is recorded as done (the
manifest's parts file); the input is recorded only when every part is in. A rerun of a half-finished PDF
runs the pages no part done covers (``remaining_parts``), in parts of their own.
"""

from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ray_ocr.engine.manifest import DonePart
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
    return [Task(key, pages) for pages in _near_equal(tuple(range(page_count)), pages_per_task)]


def remaining_parts(key: str, page_count: int, done: list[DonePart], pages_per_task: int
                    ) -> tuple[list[Task], list[DonePart]]:
    """The parts for the pages of `key` that `done` (parts an earlier run finished) do
    not cover, each run of consecutive pages cut as ``plan_parts`` cuts a document;
    and the parts done that count: those of a document of as many pages (another file
    under the same name is done afresh)."""
    kept = [part for part in done if part.page_count == page_count]
    covered = {page for part in kept for page in part.pages}
    parts, run = [], []
    for page in range(page_count + 1):
        if page < page_count and page not in covered:
            run.append(page)
        elif run:
            parts += [Task(key, pages) for pages in _near_equal(tuple(run), max(1, pages_per_task))]
            run = []
    return parts, kept


def _near_equal(pages: tuple[int, ...], pages_per_task: int) -> list[tuple[int, ...]]:
    """`pages` cut into near-equal pieces of at most `pages_per_task`, in order."""
    count = -(-len(pages) // pages_per_task)
    bounds = [round(i * len(pages) / count) for i in range(count + 1)]
    return [pages[bounds[i]:bounds[i + 1]] for i in range(count)]


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

    def expect(self, parts: list[Task], done: list[DonePart] = ()) -> None:
        """The parts to wait for; `done`: parts an earlier run finished (their outputs
        go into the input's record)."""
        self.waiting.update(parts)
        self.outputs.update(rel for part in done for rel in part.outputs)

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
