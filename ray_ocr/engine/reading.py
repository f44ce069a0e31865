"""Turning tasks into what an actor receives, and split PDFs back into documents.

One path for ``ray_ocr.run_batch`` (the driver) and ``ray_ocr.predict``:
- a task's bytes are read here and shipped, so workers need no shared disk; where
  every actor can read the input folder (a URI, a ``file://`` folder mounted on every
  node, or any folder when the actors run on this machine), the actor reads them
  itself and only the name crosses (the driver's cost per input stays small);
- a PDF longer than ``pages_per_task`` becomes its parts (engine/page_split.py), which
  share one copy of its bytes in the object store until the last part is back;
- ``settle`` takes each part's outcome and gives back the whole document's once every
  part is in.
"""

from __future__ import annotations

import logging

from ray_ocr.engine.page_split import SplitDocument, pdf_parts, remaining_parts
from ray_ocr.io.discovery import NOT_UTF8
from ray_ocr.records import Failure, FileResult, InputItem, Task
from ray_ocr.errors import first_line

logger = logging.getLogger(__name__)


def read_failure(key: str, exc: BaseException) -> FileResult:
    failure = Failure(key=key, stage="read", error_type=type(exc).__name__, message=first_line(exc))
    return FileResult(key=key, failure=failure)


class InputReader:
    def __init__(self, folder, pages_per_task: int, pdf_password: str | None = None,
                 output_bases: dict[str, str] | None = None):
        self.folder = folder  # io/storage.py's folders, or io/input_list.py's InputList
        self.output_bases = output_bases  # when the actors write the outputs: their names
        self.pages_per_task = pages_per_task
        self.pdf_password = pdf_password
        self.splits: dict[str, SplitDocument] = {}  # long PDFs whose parts are out
        self.actors_on_this_machine = False  # set by the driver once Ray is up: they share its disk
        self.on_page_count = None  # called (key, pages to run) for each PDF it reads: for the ETA
        self.done_parts: dict = {}  # a PDF -> its parts an earlier run finished (engine/resume.py)

    def read(self, task: Task) -> InputItem | FileResult | list[InputItem]:
        """The item for `task`, a read failure, or a long PDF's parts."""
        key = task.key
        if key in self.folder.bad_names:
            return FileResult(key=key, failure=Failure(key, "list", "UnicodeError", NOT_UTF8))
        base = self.output_bases[key] if self.output_bases is not None else None
        if task.page_range is not None:  # a part of a split PDF, again (its actor died)
            split = self.splits[key]
            return InputItem(key, split.source_path, split.data, task.page_range, output_base=base)
        path = self.folder.display(key)
        actors_read = self.actors_on_this_machine or self.folder.actor_reads
        if actors_read and not (self.pages_per_task > 0 and key.lower().endswith(".pdf")):
            return InputItem(key, path, b"", read_root=self.folder.uri, output_base=base)
        try:
            data = self.folder.read(key)
        except OSError as exc:
            return read_failure(key, exc)
        count, parts = pdf_parts(key, data, self.pages_per_task, self.pdf_password)
        done, to_run = self.done_parts.pop(key, []), count
        if parts and done:  # (not split now: run whole, whatever parts were done)
            parts, done = remaining_parts(key, count, done, self.pages_per_task)
            to_run = sum(len(part.page_range) for part in parts)
            if to_run < count:
                logger.info("%s: kept %d of its %d pages, done by an earlier run", key, count - to_run, count)
            if not parts:  # every page was done: the input's record is all that is missing
                return self._all_done(key, count, done)
        if count and self.on_page_count is not None:
            self.on_page_count(key, to_run)
        if not parts:
            return InputItem(key, path, data, output_base=base)
        return self._split(key, path, data, count, parts, base, done)

    @staticmethod
    def _all_done(key: str, page_count: int, done: list) -> FileResult:
        """The whole input's outcome from its parts an earlier run finished (a receipt,
        as actors that write their own outputs give)."""
        split = SplitDocument(key, "", None, page_count)
        split.expect([], done)
        return FileResult(key=key, page_count=page_count, outputs=tuple(sorted(split.outputs)))

    def _split(self, key: str, path: str, data: bytes, page_count: int, parts: list[Task],
               base: str | None, done: list = ()) -> list[InputItem]:
        import ray

        split = self.splits.get(key)
        if split is None:  # (a path given twice to predict shares one copy)
            split = self.splits[key] = SplitDocument(key, path, ray.put(data), page_count)
        split.expect(parts, done)
        logger.debug("%s: %d pages in %d parts", key, page_count, len(parts))
        return [InputItem(key, path, split.data, part.page_range, output_base=base) for part in parts]

    def settle(self, result: FileResult, outputs: list[str], attempts: int
               ) -> tuple[FileResult, list[str], int] | None:
        """A whole input's (result, outputs, attempts): at once for a whole file; for a
        part, None until its document's last part is in (then its bytes are dropped)."""
        if result.page_range is None:
            return result, outputs, attempts
        split = self.splits[result.key]
        whole = split.add(result, outputs, attempts)
        if whole is not None:
            del self.splits[result.key]
        return whole
