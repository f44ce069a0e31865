"""A URI output's run state (ray_ocr/io/state_mirror.py), on a ``file://`` URI through
pyarrow as for S3: pushes during a run carry only what was added; a driver killed
before the end, or while writing the bases, loses no record and reorders none."""

from __future__ import annotations

import json
import os

import pytest

from ray_ocr.errors import SetupError
from ray_ocr.io.storage import UriFolder

MANIFEST, PARTS, SUMMARY = "ray_ocr_manifest.jsonl", "ray_ocr_parts.jsonl", "summary.json"


def record(key: str, status: str) -> bytes:
    return json.dumps({"key": key, "status": status}).encode() + b"\n"


class Folder(UriFolder):
    """Its local state in a folder of the test's (not the cache under ~): each run as if
    on another machine."""

    def __init__(self, uri: str, local: str):
        super().__init__(uri)
        self._local = local

    state_dir = property(lambda self: self._local)


class Run:
    """A driver's side of the state: a folder on the URI and the local files it appends."""

    def __init__(self, remote, local):
        self.folder = Folder(f"file://{remote}", str(local))
        self.folder.pull_state((MANIFEST, PARTS), (SUMMARY,))

    def local(self, name: str) -> bytes:
        path = os.path.join(self.folder.state_dir, name)
        return open(path, "rb").read() if os.path.exists(path) else b""

    def append(self, name: str, data: bytes) -> None:
        with open(os.path.join(self.folder.state_dir, name), "ab") as handle:
            handle.write(data)


@pytest.fixture
def remote(tmp_path):
    folder = tmp_path / "bucket" / "out"
    folder.mkdir(parents=True)
    return folder


def stored(remote) -> dict[str, bytes]:
    return {str(p.relative_to(remote)): p.read_bytes() for p in sorted(remote.rglob("*")) if p.is_file()}


def latest(manifest: bytes) -> dict[str, str]:
    """Each input's last record, as resuming reads the manifest."""
    return {r["key"]: r["status"] for r in map(json.loads, manifest.splitlines())}


def test_each_push_carries_only_the_records_added_since_the_last(remote, tmp_path):
    run = Run(remote, tmp_path / "local")
    run.append(MANIFEST, record("a.png", "done") + record("b.png", "done"))
    run.folder.push_state()
    run.folder.push_state()  # nothing new: nothing written
    run.append(MANIFEST, record("c.png", "failed") + b'{"key": "d.p')  # a line still being written
    run.folder.push_state()
    segments = stored(remote)
    assert list(segments) == [f"ray_ocr_state/000001-{run.folder._state._run}-00000{i}.{MANIFEST}" for i in (1, 2)]
    assert list(segments.values()) == [record("a.png", "done") + record("b.png", "done"), record("c.png", "failed")]
    assert MANIFEST not in segments  # the base is written at the end


def test_the_end_of_a_run_writes_each_file_whole_and_removes_the_segments(remote, tmp_path):
    run = Run(remote, tmp_path / "local")
    run.append(MANIFEST, record("a.png", "done"))
    run.folder.push_state()
    run.append(MANIFEST, record("b.png", "done"))
    run.append(PARTS, b'{"key": "c.pdf", "pages": [0, 1]}\n')
    run.append(SUMMARY, b'{"files": 2}')
    run.folder.push_state(final=True)
    assert stored(remote) == {MANIFEST: record("a.png", "done") + record("b.png", "done"),
                              PARTS: b'{"key": "c.pdf", "pages": [0, 1]}\n', SUMMARY: b'{"files": 2}',
                              "ray_ocr_state/compacted": b"1\n"}
    again = Run(remote, tmp_path / "again")
    assert again.local(MANIFEST) == stored(remote)[MANIFEST] and again.folder._state.generation == 2


def test_a_driver_killed_before_the_end_loses_no_pushed_record(remote, tmp_path):
    first = Run(remote, tmp_path / "first")
    first.append(MANIFEST, record("a.png", "done"))
    first.folder.push_state(final=True)
    second = Run(remote, tmp_path / "second")
    second.append(MANIFEST, record("b.png", "failed"))
    second.folder.push_state()
    second.append(MANIFEST, record("c.png", "done"))
    second.folder.push_state()  # then SIGKILL: no final push
    third = Run(remote, tmp_path / "third")
    assert latest(third.local(MANIFEST)) == {"a.png": "done", "b.png": "failed", "c.png": "done"}
    assert third.folder._state.generation == 3
    third.append(MANIFEST, record("b.png", "done"))
    third.folder.push_state(final=True)
    assert sorted(stored(remote)) == [MANIFEST, "ray_ocr_state/compacted"]
    assert latest(stored(remote)[MANIFEST]) == {"a.png": "done", "b.png": "done", "c.png": "done"}


def test_a_driver_killed_while_writing_the_bases_keeps_each_inputs_last_record(remote, tmp_path, monkeypatch):
    first = Run(remote, tmp_path / "first")
    first.append(MANIFEST, record("a.png", "failed"))
    first.folder.push_state()
    second = Run(remote, tmp_path / "second")  # reads first's segment
    second.append(MANIFEST, record("b.png", "done"))
    second.folder.push_state()
    second.append(MANIFEST, record("a.png", "done"))  # the last minute: not pushed yet
    monkeypatch.setattr(UriFolder, "delete", lambda self, rel: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):  # killed after the bases and `compacted`, before the removals
        second.folder.push_state(final=True)
    monkeypatch.undo()
    third = Run(remote, tmp_path / "third")
    assert latest(third.local(MANIFEST)) == {"a.png": "done", "b.png": "done"}
    # Killed before `compacted` too: the segments are read again after a base that ends with them.
    # (The records of the last minute, after the last push, go up as a segment first: else
    # the base would end with them, and the segments read after it would undo them.)
    (remote / "ray_ocr_state" / "compacted").unlink()
    fourth = Run(remote, tmp_path / "fourth")
    assert latest(fourth.local(MANIFEST)) == {"a.png": "done", "b.png": "done"}


def test_a_segment_that_could_not_be_removed_is_not_read_again(remote, tmp_path, monkeypatch, caplog):
    first = Run(remote, tmp_path / "first")
    first.append(MANIFEST, record("a.png", "failed"))
    first.folder.push_state()  # killed
    second = Run(remote, tmp_path / "second")
    second.append(MANIFEST, record("a.png", "done"))
    monkeypatch.setattr(UriFolder, "delete", lambda self, rel: (_ for _ in ()).throw(PermissionError("denied")))
    second.folder.push_state(final=True)
    assert "could not remove 2 segment(s)" in caplog.text  # the first run's, and the second's last
    third = Run(remote, tmp_path / "third")
    assert latest(third.local(MANIFEST)) == {"a.png": "done"}  # not the stale "failed" after it


def test_state_that_cannot_be_listed_stops_the_run(remote, tmp_path):
    (remote / "ray_ocr_state").write_bytes(b"not a folder")
    with pytest.raises(SetupError, match=r"cannot (read|list) its ray_ocr_state"):
        Run(remote, tmp_path / "local")


def test_a_rerun_with_nothing_to_do_compacts_only_what_a_killed_run_left(remote, tmp_path):
    first = Run(remote, tmp_path / "first")
    first.append(MANIFEST, record("a.png", "done"))
    first.folder.push_state(final=True)
    untouched = stored(remote)
    idle = Run(remote, tmp_path / "idle")
    idle.folder.push_state(final=True)  # read the bases, nothing new: nothing written
    assert stored(remote) == untouched
    killed = Run(remote, tmp_path / "killed")
    killed.append(MANIFEST, record("b.png", "done"))
    killed.folder.push_state()
    after = Run(remote, tmp_path / "after")
    after.folder.push_state(final=True)  # nothing new, but a killed run's segment to fold in
    assert sorted(stored(remote)) == [MANIFEST, "ray_ocr_state/compacted"]
    assert latest(stored(remote)[MANIFEST]) == {"a.png": "done", "b.png": "done"}


def test_a_torn_last_line_of_a_base_does_not_swallow_the_next_record(remote, tmp_path):
    (remote / MANIFEST).write_bytes(record("a.png", "done") + b'{"key": "b.p')  # an upload cut short
    (remote / "ray_ocr_state").mkdir()
    (remote / "ray_ocr_state" / f"000001-x-000001.{MANIFEST}").write_bytes(record("c.png", "done"))
    run = Run(remote, tmp_path / "local")
    lines = run.local(MANIFEST).splitlines()
    assert lines[0] == record("a.png", "done").strip() and lines[-1] == record("c.png", "done").strip()
