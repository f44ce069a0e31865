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
Files written whole at the end (failures, summary, report) are not segmented.
"""

from __future__ import annotations

import logging
import os
import uuid

from ray_ocr.errors import SetupError, first_line
from ray_ocr.io.outputs import atomic_write_bytes

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
        for name in self.appended + self.replaced:
            base = self._read(name)
            segments = [self._read(key) or b"" for key in newer.get(name, ())]
            self._store(name, None if base is None and not segments else b"".join([base or b"", *segments]))
            self._pushed[name] = self._size(name)

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
        """The end of a run: every file whole, then the generation they hold, then the
        segments they make redundant removed (a refused removal only warns)."""
        for name in self.appended + self.replaced:
            path = os.path.join(self.local_dir, name)
            if os.path.exists(path):
                self.folder.write_from(name, path)
        self.folder.write(COMPACTED, b"%d\n" % self.generation)
        refused = 0
        for key in self._segments:
            try:
                self.folder.delete(key)
            except FileNotFoundError:
                pass
            except OSError:
                refused += 1
        if refused:
            logger.warning("could not remove %d segment(s) of the run state in %s; they are not read again",
                           refused, self.folder.display(SEGMENTS_DIR))
        self._segments = []
        self._pushed = {name: self._size(name) for name in self.appended}
        self.generation += 1

    def _read(self, key: str) -> bytes | None:
        try:
            return self.folder.read(key)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SetupError(f"--output_dir {self.folder.display_root}: cannot read its {key} "
                             f"({first_line(exc)}); stopped so as not to redo finished work and "
                             "overwrite its record") from None

    def _store(self, name: str, data: bytes | None) -> None:
        path = os.path.join(self.local_dir, name)
        if data is not None:
            atomic_write_bytes(path, data)
        elif os.path.exists(path):
            os.unlink(path)  # a stale local copy of a file the URI no longer has

    def _size(self, name: str) -> int:
        path = os.path.join(self.local_dir, name)
        return os.path.getsize(path) if os.path.exists(path) else 0
