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
        slow_width: int | None = None,
        slow_seconds: float = 0.0,
        **_ignored,
    ):
        self.device = device
        self.cpu_threads = cpu_threads
        self.sleep_seconds = float(sleep_seconds or 0.0)
        # An image exactly this many pixels wide kills the process, as a segfault would.
        self.crash_on_width = crash_on_width
        # An image exactly this many pixels wide takes slow_seconds (a long document).
        self.slow_width = slow_width
        self.slow_seconds = float(slow_seconds or 0.0)

    def predict(self, image, **_kwargs):
        height, width = image.shape[:2]
        if self.crash_on_width is not None and width == int(self.crash_on_width):
            os._exit(17)
        if self.sleep_seconds:
            time.sleep(self.sleep_seconds)
        if self.slow_width is not None and width == int(self.slow_width):
            time.sleep(self.slow_seconds)
        yield StandinResult({
            "input_path": None,
            "page_index": None,
            "width": int(width),
            "height": int(height),
            "device": self.device,
            "cpu_threads": self.cpu_threads,
            "pid": os.getpid(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        })


class StandinResult(dict):
    """A dict result with PaddleX's saver shape, to test how ray_ocr names and writes
    what savers produce (``--save markdown``): a markdown file and an image it links."""

    def save_to_markdown(self, save_path: str) -> None:
        stem = os.path.splitext(os.path.basename(self["input_path"] or "result"))[0]
        os.makedirs(os.path.join(save_path, "imgs"), exist_ok=True)
        with open(os.path.join(save_path, f"{stem}.md"), "w", encoding="utf-8") as handle:
            handle.write(f"# {stem}\n\n{self['width']}x{self['height']}\n\n![crop](imgs/{stem}_crop.txt)\n")
        with open(os.path.join(save_path, "imgs", f"{stem}_crop.txt"), "w") as handle:
            handle.write("crop")


class DocUnderstandingStandin:
    """A stand-in with DocUnderstanding's shape, for tests of how ray_ocr asks a query
    (a vision-language model cannot be built offline): ``predict({"image": page,
    "query": text})`` yields PaddleX's DocVLMResult with the input echoed, as the real
    pipeline does, and an answer made from the page (its size and mean intensity)."""

    def __init__(self, device: str = "cpu", cpu_threads: int | None = None, **_ignored):
        self.device = device

    def predict(self, input: dict, **_kwargs):
        from paddlex.inference.models.doc_vlm.result import DocVLMResult

        image, query = input["image"], input["query"]
        answer = f"{query} -> {image.shape[1]}x{image.shape[0]} pixels, mean {float(image.mean()):.1f}"
        yield DocVLMResult({**input, "result": answer})
