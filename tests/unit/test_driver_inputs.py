"""The driver's input side, without Ray: reading errors become failure records."""

import dataclasses
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


def test_actors_on_the_drivers_machine_read_local_inputs_themselves(tmp_path):
    """With the embedded Ray only names cross; the runner reads the bytes, and one that
    vanished is its read failure, the same record the driver would make. With its own
    output folder it writes the result (on its write threads) and returns a receipt."""
    import json

    from ray_ocr.models.runner import PipelineRunner, RunnerSpec
    from ray_ocr.pipelines import resolve_pipeline
    from tests.helpers import make_images

    (make_images(tmp_path / "in", 1, width=12) / "img_000.png").rename(tmp_path / "in" / "a.png")
    driver = Driver(RunConfig.build(pipeline="ray_ocr.testing.standin:SchedulingTestPipeline",
                                    input_dir=str(tmp_path / "in"), output_dir=str(tmp_path / "out")))
    driver.reader.actors_on_this_machine = True
    assert list(driver.plan_inputs()) == ["a.png"]
    items = [driver.reader.read(Task("a.png")), driver.reader.read(Task("gone.png"))]
    assert [(i.data, i.read_root) for i in items] == [(b"", str(tmp_path / "in"))] * 2
    spec = RunnerSpec(pipeline=resolve_pipeline("ray_ocr.testing.standin:SchedulingTestPipeline"),
                      output_uri=str(tmp_path / "out"))
    wired = [InputItem.from_wire(item.to_wire()) for item in items]
    wired = [dataclasses.replace(item, output_base=item.key[:-len(".png")]) for item in wired]
    done, gone = PipelineRunner(spec).process_batch(wired)
    assert done.ok and done.outputs == ("a.json",) and done.pages[0].json_text == ""  # a receipt
    assert json.loads((tmp_path / "out" / "a.json").read_text())["width"] == 12  # what the stand-in saw
    assert gone.failure.stage == "read" and gone.failure.error_type == "FileNotFoundError"
