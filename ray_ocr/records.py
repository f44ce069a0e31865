"""Plain data passed between the driver and the pipeline actors.

Everything here pickles cheaply and imports nothing heavy: these objects cross the
object store in both directions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Task:
    """A unit of work: a whole input file, or some pages of one PDF (`pages`, ascending
    page indexes) when a long PDF is split across actors."""

    key: str
    page_range: tuple[int, ...] | None = None

    @property
    def pages_label(self) -> str:
        """``pages 4-6`` (page_index, from 0), as messages name a part."""
        return "" if self.page_range is None else f"pages {self.page_range[0]}-{self.page_range[-1]}"

    def __str__(self) -> str:
        return self.key if self.page_range is None else f"{self.key} ({self.pages_label})"


@dataclass(frozen=True)
class InputItem:
    """One input file, as shipped to an actor: its bytes, or where to read them.

    `key` is the path relative to the input root (POSIX separators), `source_path`
    is what the output JSON names as ``input_path``. `page_range` restricts a PDF to some
    page indexes (None: all pages). With `read_root` set, `data` is empty and the actor
    reads the bytes itself from that folder (a URI every node can read, or a folder of
    the driver's machine when the actors run on it too). The parts of
    a split PDF share one copy of its bytes: `data` is then a reference to them in
    Ray's object store, which the actor resolves (see engine/actors.py).
    """

    key: str
    source_path: str
    data: Any
    page_range: tuple[int, ...] | None = None
    read_root: str | None = None
    output_base: str | None = None  # set when the actor writes its outputs: their name (io/outputs.py)

    @property
    def task(self) -> Task:
        return Task(self.key, self.page_range)

    @property
    def nbytes(self) -> int:
        """Bytes this item adds to the object store (a shared reference adds none)."""
        return len(self.data) if isinstance(self.data, (bytes, bytearray, memoryview)) else 0

    def to_wire(self) -> list:
        """As sent to an actor: a list of strings, bytes and ints, which Ray's serializer
        packs natively (msgpack); an object, or a tuple, costs it a pickling step each.
        (A value msgpack refuses, such as a surrogate-escaped file name, makes Ray pickle
        the whole argument instead: slower, never wrong.)"""
        page_range = list(self.page_range) if self.page_range is not None else None
        return [self.key, self.source_path, self.data, page_range, self.read_root, self.output_base]

    @classmethod
    def from_wire(cls, wire: list) -> "InputItem":
        key, source_path, data, page_range, read_root, output_base = wire
        return cls(key, source_path, data, tuple(page_range) if page_range is not None else None, read_root,
                   output_base)


@dataclass(frozen=True)
class PageOutput:
    """One result of a pipeline: the JSON text that ``save_to_json`` writes, and the
    files ``save_to_markdown`` / ``save_to_img`` wrote when asked (name as PaddleX
    gave it, bytes; see models/markdown.py for the markdown's images)."""

    page_index: int | None
    json_text: str
    extras: tuple[tuple[str, bytes], ...] = ()
    markdown: dict | None = None  # with --save markdown: this page's piece of its document's markdown


@dataclass(frozen=True)
class Failure:
    """Why one input produced no output. `stage` is where it failed:
    list, read, decode, render, predict, crash (the actor died), or write."""

    key: str
    stage: str
    error_type: str
    message: str
    attempts: int = 1

    def one_line(self) -> str:
        return f"{self.key}: {self.stage} failed: {self.error_type}: {self.message}"


@dataclass(frozen=True)
class FileResult:
    """The outcome of one input file: its pages, or a failure, never both."""

    key: str
    pages: tuple[PageOutput, ...] = ()
    failure: Failure | None = None
    warnings: tuple[str, ...] = ()
    page_count: int | None = None
    seconds: float = 0.0
    page_range: tuple[int, ...] | None = None  # the pages asked for, when this is one part of a PDF
    # Set when the actor wrote the outputs itself: what it wrote (its pages then carry
    # no JSON), a receipt for the driver's manifest.
    outputs: tuple[str, ...] | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def task(self) -> Task:
        return Task(self.key, self.page_range)


@dataclass(frozen=True)
class WorkerInfo:
    """Where a batch ran: the actor's name, node, and the GPUs Ray gave it."""

    actor_name: str
    node_id: str
    pid: int
    gpu_ids: tuple[str, ...] = ()
    cuda_visible_devices: str | None = None


@dataclass(frozen=True)
class BatchResult:
    batch_id: int
    files: tuple[FileResult, ...]
    worker: WorkerInfo
    seconds: float = 0.0
    rss_mb: float = 0.0  # the actor process's resident memory after the batch
