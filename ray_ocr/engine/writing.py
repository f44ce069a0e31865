"""The driver's side of writing results: each page's JSON (exactly what
``save_to_json`` writes) and the files ``--save`` asked for, written by
io/outputs.py's ``write_result`` (deterministic names, atomic, retried) into the output
folder, a local path or a URI alike (io/storage.py); or, when the actors wrote them,
their receipts. And one markdown per document."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ray_ocr.errors import first_line
from ray_ocr.io.outputs import WRITE_THREADS, write_result, write_with_retries
from ray_ocr.records import Failure, FileResult


class ResultWriter:
    def __init__(self, folder, bases: dict[str, str]):
        self.folder = folder
        self.bases = bases  # input key -> output base (no extension)
        self._threads: ThreadPoolExecutor | None = None

    def write(self, results: list[FileResult]) -> list[tuple[FileResult, list[str]]]:
        """Each result with the outputs it wrote; a result whose write failed comes
        back as a failure record (stage "write") with none."""
        if len(results) <= 1 or all(result.outputs is not None for result in results):
            return [self._write_one(result) for result in results]
        if self._threads is None:
            self._threads = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="ray_ocr_write")
        return list(self._threads.map(self._write_one, results))

    def _write_one(self, result: FileResult) -> tuple[FileResult, list[str]]:
        if result.outputs is not None:  # the actor wrote them: this is its receipt
            return result, list(result.outputs)
        return write_result(self.folder, result, self.bases[result.key])

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown()


class DocumentMarkdown:
    """``--save markdown``: besides a markdown file per page, one per multi-page
    document (``<base>.md``), its pages joined in page order (models/markdown.py), once
    every page is in, whichever actors ran them and in whatever order they came."""

    def __init__(self, folder, bases: dict[str, str], pipeline_class: str):
        self.folder = folder
        self.bases = bases
        self.pipeline_class = pipeline_class
        self.pieces: dict[str, dict[int, dict]] = {}  # input key -> page index -> piece

    def add(self, result: FileResult) -> None:
        """Keep the pieces of a paged input's pages (a whole file's, or a part's)."""
        for page in result.pages:
            if page.markdown is not None and page.page_index is not None:
                self.pieces.setdefault(result.key, {})[page.page_index] = page.markdown

    def finish(self, result: FileResult, outputs: list[str]) -> tuple[FileResult, list[str]]:
        """Write the document's markdown once the input is whole and every page has a
        piece; a failed input (a failed page) gets none."""
        from ray_ocr.models.markdown import join_pages

        pieces = self.pieces.pop(result.key, None)
        if not result.ok or not pieces or len(pieces) != result.page_count:
            return result, outputs
        rel = self.bases[result.key] + ".md"
        try:
            text = join_pages(self.pipeline_class, [pieces[i] for i in sorted(pieces)])
            write_with_retries(self.folder, rel, text.encode("utf-8"))
        except (OSError, ValueError) as exc:
            failure = Failure(key=result.key, stage="write", error_type=type(exc).__name__, message=first_line(exc))
            return FileResult(key=result.key, failure=failure, page_count=result.page_count), []
        return result, [*outputs, rel]
