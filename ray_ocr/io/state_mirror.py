"""A URI output's run state (manifest, parts, failures, summary, report), kept in a
local folder while the run runs and mirrored to the URI.

Why segments: the manifest of an archive run grows to hundreds of megabytes (about
250 bytes an input, and a long PDF's record names each page's JSON). Uploading it whole
every minute would move gigabytes and stall the driver's loop. So the files that are
only appended to go up as what was added since the last push, each push one object
``ray_ocr_state/<generation>-<run>-<seq>.<name>``; at the end of the run each goes up
whole (the *base*, ``<name>`` beside the outputs, what a user reads), the generation it
holds is written to ``ray_ocr_state/compacted``, and the segments are removed.

Reading back: the base, then each segment of a later generation than ``compacted``, in
name order. A driver killed before the end leaves its segments, which the next run reads
after the base. A run killed while writing the bases has its segments read again after a
base that already ends with them: the last record of each input is the same either way.
A segment that could not be removed is older than ``compacted`` and is not read again.
Files written whole at the end (failures, summary, report) are not segmented. The end's
uploads are not interrupted by a signal (held until they are done): an upload cut short
would be committed as it stands, a base that lost records.

One run at a time per output folder: a run that ends compacts and removes the segments
it found, and a second run writing meanwhile would lose its records on a resume.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import uuid
from contextlib import contextmanager
from typing import Iterator

from ray_ocr.errors import SetupError, first_line
from ray_ocr.io.outputs import WRITE_THREADS, atomic_write_chunks

logger = logging.getLogger(__name__)

SEGMENTS_DIR = "ray_ocr_state"
COMPACTED = f"{SEGMENTS_DIR}/compacted"


class StateMirror:
    """`appended`: files only appended to (JSON lines); `replaced`: files rewritten whole."""

    def __init__(self, folder, local_dir: str, appended, replaced):
        self.folder, self.local_dir = folder, local_dir
        self.appended, self.replaced = tuple(appended), tuple(replaced)
        self.generation = 1  # of this run's segments: one more than any at the URI
        self._run = uuid.uuid4().hex[:8]
        self._seq = 0
        self._pushed: dict[str, int] = {}  # appended file -> bytes of it already at the URI
        self._segments: list[str] = []  # found at the start or written since: removed once compacted
        self._merged = False  # segments newer than the last compaction were read at the start

    def pull(self) -> None:
        """Make the local folder what the URI holds. Only "not found" means no earlier
        run: on any other error the run stops, as going on without the manifest would
        redo finished work, then overwrite the record of it."""
        os.makedirs(self.local_dir, exist_ok=True)
        compacted = self._read(COMPACTED)
        done = int(compacted) if compacted and compacted.strip().isdigit() else 0
        newer: dict[str, list[str]] = {}  # name -> its segments not in its base, oldest first
        for key, generation, name in self._list_segments():
            self._segments.append(key)
            self.generation = max(self.generation, generation + 1)
            if generation > done:
                newer.setdefault(name, []).append(key)
        self.generation = max(self.generation, done + 1)
        self._merged = any(newer.values())
        for name in self.appended + self.replaced:
            self._pull_file(name, newer.get(name, ()))
        self._pushed = {name: self._size(name) for name in self.appended}

    def _pull_file(self, name: str, segments) -> None:
        """The local copy of `name`: its base, then its segments, read one at a time."""
        path = os.path.join(self.local_dir, name)
        base = self._read(name)
        if base is None and not segments:
            if os.path.exists(path):
                os.unlink(path)  # a stale local copy of a file the URI no longer has
            return
        atomic_write_chunks(path, self._base_then(base, segments))

    def _base_then(self, base: bytes | None, segments) -> Iterator[bytes]:
        if base:
            yield base
            if not base.endswith(b"\n"):
                yield b"\n"  # a torn last line must not swallow the next record
        for key in segments:
            yield self._read(key) or b""

    def _list_segments(self) -> list[tuple[str, int, str]]:
        """(key, generation, file name) of each segment at the URI, in name order."""
        try:
            keys = self.folder.list_files(SEGMENTS_DIR)
        except OSError as exc:
            raise SetupError(f"--output_dir {self.folder.display_root}: cannot list its {SEGMENTS_DIR} "
                             f"({first_line(exc)})") from None
        found = []
        for key in keys:
            stem, _, name = key.rsplit("/", 1)[-1].partition(".")
            generation = stem.split("-", 1)[0]
            if name and generation.isdigit():  # not `compacted`, nor a stranger's object
                found.append((key, int(generation), name))
        return sorted(found, key=lambda segment: (segment[1], segment[0]))

    def push_new(self) -> None:
        """What was appended to each file since the last push, as one segment each (up
        to the last whole line)."""
        for name in self.appended:
            path = os.path.join(self.local_dir, name)
            start = self._pushed.get(name, 0)
            if self._size(name) <= start:
                continue
            with open(path, "rb") as handle:
                handle.seek(start)
                added = handle.read()
            added = added[: added.rfind(b"\n") + 1]
            if added:
                self._seq += 1
                key = f"{SEGMENTS_DIR}/{self.generation:06d}-{self._run}-{self._seq:06d}.{name}"
                self.folder.write(key, added)
                self._segments.append(key)
                self._pushed[name] = start + len(added)

    def push_all(self) -> None:
        """The end of a run: what is new as a segment (so a base ends with its
        segments, as the module says), every file whole, the generation they hold, then
        the segments they make redundant removed. A rerun with nothing to do writes only
        when it read segments a killed run left."""
        if not self._merged and self._nothing_new():
            return
        with _signals_held():
            self.push_new()
            for name in self.appended + self.replaced:
                path = os.path.join(self.local_dir, name)
                if os.path.exists(path):
                    self.folder.write_from(name, path)
            self.folder.write(COMPACTED, b"%d\n" % self.generation)
        self._remove(self._segments)
        self._segments, self._merged = [], False
        self.generation += 1

    def _nothing_new(self) -> bool:
        return all(self._size(name) <= self._pushed.get(name, 0) for name in self.appended)

    def _remove(self, keys: list[str]) -> None:
        """Remove segments, a few at a time; a refused removal only warns (a run needs no
        right to delete: what is left is older than `compacted`, and not read again)."""
        from concurrent.futures import ThreadPoolExecutor

        def remove(key: str) -> bool:
            try:
                self.folder.delete(key)
            except FileNotFoundError:
                pass
            except OSError:
                return False
            return True

        with ThreadPoolExecutor(WRITE_THREADS) as pool:
            refused = sum(not removed for removed in pool.map(remove, keys))
        if refused:
            logger.warning("could not remove %d segment(s) of the run state in %s; they are not read again",
                           refused, self.folder.display(SEGMENTS_DIR))

    def _read(self, key: str) -> bytes | None:
        try:
            return self.folder.read(key)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SetupError(f"--output_dir {self.folder.display_root}: cannot read its {key} "
                             f"({first_line(exc)}); stopped so as not to redo finished work and "
                             "overwrite its record") from None

    def _size(self, name: str) -> int:
        path = os.path.join(self.local_dir, name)
        return os.path.getsize(path) if os.path.exists(path) else 0


@contextmanager
def _signals_held():
    """SIGINT and SIGTERM wait (pending) until the block ends; in the main thread only,
    where Python runs its handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
