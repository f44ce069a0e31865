"""Turning tasks into what an actor receives, and split PDFs back into documents.

One path for ``ray_ocr.run_batch`` (the driver) and ``ray_ocr.predict``:
- a task's bytes are read here and shipped, so workers need no shared disk; where
  every node can read the input folder (a URI), the actor reads them itself;
- a PDF longer than ``pages_per_task`` becomes its parts (engine/page_split.py), which
  share one copy of its bytes in the object store until the last part is back;
- ``settle`` takes each part's outcome and gives back the whole document's once every
  part is in.
"""

from __future__ import annotations

import dataclasses
import logging

from ray_ocr.engine.page_split import SplitDocument, pdf_parts
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

    def read(self, task: Task) -> InputItem | FileResult | list[InputItem]:
        """The item for `task`, a read failure, or a long PDF's parts."""
        got = self._read(task)
        if self.output_bases is None or isinstance(got, FileResult):
            return got
        base = self.output_bases[task.key]
        if isinstance(got, list):
            return [dataclasses.replace(item, output_base=base) for item in got]
        return dataclasses.replace(got, output_base=base)

    def _read(self, task: Task) -> InputItem | FileResult | list[InputItem]:
        key = task.key
        if task.page_range is not None:  # a part of a split PDF, again (its actor died)
            split = self.splits[key]
            return InputItem(key=key, source_path=split.source_path, data=split.data, page_range=task.page_range)
        path = self.folder.display(key)
        if self.folder.actor_reads and not (self.pages_per_task > 0 and key.lower().endswith(".pdf")):
            return InputItem(key=key, source_path=path, data=b"", uri_root=self.folder.uri)
        try:
            data = self.folder.read(key)
        except OSError as exc:
            return read_failure(key, exc)
        count, parts = pdf_parts(key, data, self.pages_per_task, self.pdf_password)
        if not parts:
            return InputItem(key=key, source_path=path, data=data)
        return self._split(key, path, data, count, parts)

    def _split(self, key: str, path: str, data: bytes, page_count: int, parts: list[Task]) -> list[InputItem]:
        import ray

        split = self.splits.get(key)
        if split is None:  # (a path given twice to predict shares one copy)
            split = self.splits[key] = SplitDocument(key, path, ray.put(data), page_count)
        split.expect(parts)
        logger.debug("%s: %d pages in %d parts", key, page_count, len(parts))
        return [InputItem(key=key, source_path=path, data=split.data, page_range=part.page_range) for part in parts]

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
