"""The driver's input side, without Ray: reading errors become failure records."""

import os

from ray_ocr.config import RunConfig
from ray_ocr.engine.driver import Driver
from ray_ocr.records import FileResult, InputItem, Task


def test_a_file_gone_between_listing_and_reading_is_a_failure_record(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "in" / name).write_bytes(b"\x89PNG fake")
    driver = Driver(RunConfig.build(pipeline="OCR", input_dir=str(tmp_path / "in"),
                                    output_dir=str(tmp_path / "out")))
    assert list(driver.plan_inputs()) == ["a.png", "b.png"]
    os.remove(tmp_path / "in" / "b.png")
    got = driver.reader.read(Task("a.png"))
    assert isinstance(got, InputItem) and got.data == b"\x89PNG fake"
    assert got.source_path == str(tmp_path / "in" / "a.png")
    gone = driver.reader.read(Task("b.png"))
    assert isinstance(gone, FileResult) and not gone.ok
    assert gone.failure.stage == "read" and gone.failure.error_type == "FileNotFoundError"
    assert "b.png" in gone.failure.message


def test_unreadable_file_is_a_failure_record(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "dir.png").mkdir()  # a name that cannot be read as a file
    (tmp_path / "in" / "ok.png").write_bytes(b"x")
    driver = Driver(RunConfig.build(pipeline="OCR", input_dir=str(tmp_path / "in"),
                                    output_dir=str(tmp_path / "out")))
    assert list(driver.plan_inputs()) == ["ok.png"]  # directories are not inputs
    failed = driver.reader.read(Task("dir.png"))
    assert failed.failure.stage == "read" and failed.failure.error_type == "IsADirectoryError"
