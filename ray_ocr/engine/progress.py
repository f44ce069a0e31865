"""Progress of a run: a tqdm bar on a terminal, a plain line every N seconds in logs
(``ray job logs``, CI), with files and pages done, files/s, ETA and failures."""

from __future__ import annotations

import logging
import sys
import time

logger = logging.getLogger(__name__)


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """`total_files` may be None while discovery is still walking the input folders;
    ``set_total`` gives it once known (until then no percentage and no ETA)."""

    def __init__(self, total_files: int | None, *, interval: float = 30.0, stream=None, enabled: bool = True):
        self.total = total_files
        self.files = self.pages = self.failed = 0
        self.interval = interval
        self.stream = stream or sys.stderr
        self.started = self._last_line = time.monotonic()
        self.enabled = enabled and total_files != 0
        self._bar = self._logs_above_bar = None
        if self.enabled and self.stream.isatty():
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._bar = tqdm(total=total_files, unit="file", file=self.stream, dynamic_ncols=True,
                             desc="ray_ocr", smoothing=0.1)
            # A log line (a failed file) printed as is would be glued to the bar's line;
            # through tqdm it goes above the bar, which is drawn again below it.
            self._logs_above_bar = logging_redirect_tqdm(tqdm_class=tqdm)
            self._logs_above_bar.__enter__()

    def set_total(self, total_files: int) -> None:
        self.total = total_files
        if self._bar is not None:
            self._bar.total = total_files
            self._bar.refresh()

    def update(self, files: int, pages: int, failed: int) -> None:
        self.files += files
        self.pages += pages
        self.failed += failed
        if self._bar is not None:
            self._bar.set_postfix(pages=self.pages, failed=self.failed, refresh=False)
            self._bar.update(files)
        self.tick()

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = self.files / elapsed if elapsed > 0 else 0.0
        if self.total is None:  # still discovering inputs
            return (f"progress: {self.files}/? files (still listing inputs), {self.pages} pages, "
                    f"{self.failed} failed, {rate:.2f} files/s")
        eta = _duration((self.total - self.files) / rate) if rate > 0 else "?"
        percent = 100.0 * self.files / self.total if self.total else 100.0
        return (f"progress: {self.files}/{self.total} files ({percent:.0f}%), {self.pages} pages, "
                f"{self.failed} failed, {rate:.2f} files/s, ETA {eta}")

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
