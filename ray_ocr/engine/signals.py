"""Stopping a run cleanly: the first SIGINT/SIGTERM stops dispatching (what is in
flight is still written and recorded); a second one stops at once."""

from __future__ import annotations

import logging
import signal
import threading

logger = logging.getLogger(__name__)


class StopFlag:
    def __init__(self, message: str = "finishing the batches in flight, then stopping"):
        self.event = threading.Event()
        self.message = message  # what the first signal does (the serve command's changes once it serves)
        self._previous = {}

    def __enter__(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame):
        if self.event.is_set():
            raise KeyboardInterrupt  # second signal: stop now
        logger.warning("signal %s: %s", signum, self.message)
        self.event.set()

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
