"""Reruns over an output folder: results another pipeline or other parameters made are
never skipped as finished. The stand-in pipeline (named as such: this is about the resume
bookkeeping, not OCR) is enough."""

import json

import pytest

import ray_ocr
from ray_ocr.errors import UsageError
from tests.conftest import STANDIN
from tests.ray.test_placement_ray import make_images


def test_a_rerun_with_other_parameters_is_refused_unless_it_overwrites(ray_cluster, tmp_path):
    inputs, out = make_images(tmp_path / "in", 3), tmp_path / "out"
    first = ray_ocr.run(STANDIN, str(inputs), str(out), device="cpu", progress_interval=-1)
    assert first.succeeded == 3
    produced = json.loads((out / "ray_ocr_run.jsonl").read_text())
    assert produced["pipeline"] == "SchedulingTestPipeline" and produced["pipeline_params"] == {}

    same = ray_ocr.run(STANDIN, str(inputs), str(out), device="cpu", progress_interval=-1)
    assert same.skipped == 3 and same.processed == 0

    with pytest.raises(UsageError) as refused:
        ray_ocr.run(STANDIN, str(inputs), str(out), device="cpu", progress_interval=-1,
                    pipeline_params={"sleep_seconds": 0.01})
    message = str(refused.value)
    assert message.startswith(f"--output_dir {out}: its results were made with other settings")
    assert "pipeline_params: {} -> {'sleep_seconds': 0.01}" in message and "--overwrite" in message

    redo = ray_ocr.run(STANDIN, str(inputs), str(out), device="cpu", progress_interval=-1, overwrite=True,
                       pipeline_params={"sleep_seconds": 0.01})
    assert redo.succeeded == 3 and redo.skipped == 0
    assert json.loads((out / "ray_ocr_run.jsonl").read_text())["pipeline_params"] == {"sleep_seconds": 0.01}
    # Now the new settings resume, the old ones are refused.
    assert ray_ocr.run(STANDIN, str(inputs), str(out), device="cpu", progress_interval=-1,
                       pipeline_params={"sleep_seconds": 0.01}).skipped == 3
    with pytest.raises(UsageError):
        ray_ocr.run(STANDIN, str(inputs), str(out), device="cpu", progress_interval=-1)
