"""What ``ray_ocr.predict`` reads (api.py's input paths), without Ray."""

import os

from ray_ocr.api import _input_paths


def test_a_relative_folder_is_read_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.png").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert list(_input_paths("docs", "*", set())) == [str(tmp_path / "docs" / "a.png")]
    assert list(_input_paths("docs/a.png", "*", set())) == [str(tmp_path / "docs" / "a.png")]


def test_a_name_that_is_not_utf8_is_marked_for_the_reader(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.png"), "wb") as handle:
        handle.write(b"x")
    bad: set[str] = set()
    paths = list(_input_paths(str(tmp_path), "*", bad))
    assert paths == [str(tmp_path / "a.png"), str(tmp_path / "caf\\xe9.png")]
    assert bad == {str(tmp_path / "caf\\xe9.png")}  # the reader's list failure, not a file looked for
