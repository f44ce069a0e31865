"""Progress of a run: a tqdm bar on a terminal, a plain line every N seconds in logs
(``ray job logs``, CI), with files and pages done, the rates, ETA and failures.

The ETA counts pages, not files: one 300-page PDF among images is most of a run's
work. The pages still to do are those of the inputs read and not finished (a PDF's
page count is known once the driver reads it) plus, for each input not read yet, as
many as the typical (median) finished input had: an image is one page, and the median
is not pulled up by the one long PDF.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import time

logger = logging.getLogger(__name__)


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class PageEstimate:
    """The pages a run has left, as it learns page counts."""

    def __init__(self):
        self.expected: dict[str, int] = {}  # inputs read, not finished: their page count
        self.done_of: collections.Counter = collections.Counter()  # pages done of those
        self.finished_sizes: collections.Counter = collections.Counter()  # pages of a finished input -> inputs

    def expect(self, key: str, pages: int) -> None:
        self.expected[key] = pages

    def done(self, pages_by_key: dict[str, int], finished: dict[str, int]) -> None:
        for key, pages in pages_by_key.items():
            if key in self.expected:
                self.done_of[key] += pages
        for key, pages in finished.items():
            # What this run did of it: a PDF resumed with 2 of its 6 pages left is 2 (its
            # record says 6), or the inputs not read yet would count as 6 each.
            self.finished_sizes[self.expected.pop(key, pages)] += 1
            self.done_of.pop(key, None)

    def typical(self) -> int:
        """The median pages of a finished input (at least 1; 1 before any finished)."""
        half, seen = sum(self.finished_sizes.values()) / 2, 0
        for pages in sorted(self.finished_sizes):
            seen += self.finished_sizes[pages]
            if seen >= half:
                return max(1, pages)
        return 1

    def left(self, inputs_left: int) -> int:
        """Pages left when `inputs_left` inputs are not finished."""
        in_flight = sum(max(0, pages - self.done_of[key]) for key, pages in self.expected.items())
        return in_flight + max(0, inputs_left - len(self.expected)) * self.typical()


def _draws_a_bar(stream) -> bool:
    """A terminal that tqdm can draw on: one that says it has 0 rows (some `script` and
    serial consoles) gets no bar from tqdm, so it gets log lines instead."""
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).lines > 0
    except (AttributeError, OSError, ValueError):  # no fileno (a wrapped stream), or closed
        return False


class Progress:
    """`total_files` may be None while discovery is still walking the input folders;
    ``set_total`` gives it once known (until then no percentage and no ETA)."""

    def __init__(self, total_files: int | None, *, interval: float = 30.0, stream=None, enabled: bool = True):
        self.total = total_files
        self.files = self.pages = self.failed = 0
        self.estimate = PageEstimate()
        self.interval = interval
        self.stream = stream or sys.stderr
        self.started = self._last_line = time.monotonic()
        self._first_pages: tuple[float, int] | None = None  # (when, pages) of the first pages done
        self.enabled = enabled and total_files != 0
        self._bar = self._logs_above_bar = None
        if self.enabled and _draws_a_bar(self.stream):
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._bar = tqdm(total=None, unit="page", file=self.stream, dynamic_ncols=True,
                             desc="ray_ocr", smoothing=0.1)
            # A log line (a failed file) printed as is would be glued to the bar's line;
            # through tqdm it goes above the bar, which is drawn again below it.
            self._logs_above_bar = logging_redirect_tqdm(tqdm_class=tqdm)
            self._logs_above_bar.__enter__()

    def set_total(self, total_files: int) -> None:
        self.total = total_files
        self._redraw()

    def expect(self, key: str, pages: int) -> None:
        """The driver read `key` and knows its page count (a PDF's)."""
        self.estimate.expect(key, pages)

    def update(self, pages_by_key: dict[str, int], finished: dict[str, int], failed: int) -> None:
        """Pages done per input (parts of a PDF included); the inputs finished, with their
        page counts; how many of those failed."""
        pages = sum(pages_by_key.values())
        if self._first_pages is None and pages:  # (a failure is no page done)
            self._first_pages = (time.monotonic(), pages)
        self.files += len(finished)
        self.pages += pages
        self.failed += failed
        self.estimate.done(pages_by_key, finished)
        if self._bar is not None:
            self._bar.update(pages)
            self._redraw()
        self.tick()

    def pages_left(self) -> int | None:
        return None if self.total is None else self.estimate.left(self.total - self.files)

    def _redraw(self) -> None:
        if self._bar is None:
            return
        left = self.pages_left()
        self._bar.total = None if left is None else self.pages + left
        files = f"{self.files}/{self.total if self.total is not None else '?'}"
        self._bar.set_postfix_str(f"files={files}, failed={self.failed}", refresh=False)
        self._bar.refresh()

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        file_rate, page_rate = (self.files / elapsed, self.pages / elapsed) if elapsed > 0 else (0.0, 0.0)
        if self.total is None:  # still discovering inputs
            return (f"progress: {self.files}/? files (still listing inputs), {self.pages} pages, "
                    f"{self.failed} failed, {file_rate:.2f} files/s, {page_rate:.2f} pages/s")
        left, pace = self.pages_left(), self._steady_page_rate()
        eta = _duration(left / pace) if pace > 0 else "?"
        percent = 100.0 * self.files / self.total if self.total else 100.0
        return (f"progress: {self.files}/{self.total} files ({percent:.0f}%), {self.pages} pages "
                f"(~{left} left), {self.failed} failed, {file_rate:.2f} files/s, {page_rate:.2f} pages/s, "
                f"ETA {eta}")

    def _steady_page_rate(self) -> float:
        """Pages/s since the first pages came back: the time the actors took to start
        (building a pipeline: seconds to a minute) is not a pace the rest will keep."""
        if self._first_pages is None:
            return 0.0
        since, first = self._first_pages
        elapsed = time.monotonic() - since
        return (self.pages - first) / elapsed if elapsed > 0 else 0.0

    def tick(self) -> None:
        """In logs, one line every `interval` seconds (a bar on a terminal needs none)."""
        if not self.enabled or self._bar is not None or self.interval <= 0:
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval:
            self._last_line = now
            logger.info("%s", self.line())

    def close(self) -> None:
        if self._bar is not None:
            self._logs_above_bar.__exit__(None, None, None)
            self._bar.close()
            self._bar = None
