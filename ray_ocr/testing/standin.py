"""SchedulingTestPipeline: a stand-in for scheduling, placement and scale tests.

It has PaddleOCR's pipeline shape (``predict(image)`` yields dict results) but no
Paddle and no model: it reports the image's shape and where it ran. Use it where a
test is about Ray (placement, crashes, throughput of the engine), never for OCR.
"""

from __future__ import annotations

import os
import time


class SchedulingTestPipeline:
    def __init__(
        self,
        device: str = "cpu",
        cpu_threads: int | None = None,
        sleep_seconds: float = 0.0,
        crash_on_width: int | None = None,
        **_ignored,
    ):
        self.device = device
        self.cpu_threads = cpu_threads
        self.sleep_seconds = float(sleep_seconds or 0.0)
        # An image exactly this many pixels wide kills the process, as a segfault would.
        self.crash_on_width = crash_on_width

    def predict(self, image, **_kwargs):
        height, width = image.shape[:2]
        if self.crash_on_width is not None and width == int(self.crash_on_width):
            os._exit(17)
        if self.sleep_seconds:
            time.sleep(self.sleep_seconds)
        yield {
            "input_path": None,
            "page_index": None,
            "width": int(width),
            "height": int(height),
            "device": self.device,
            "cpu_threads": self.cpu_threads,
            "pid": os.getpid(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }
