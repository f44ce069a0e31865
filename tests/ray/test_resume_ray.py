"""Reruns over an output folder: results another pipeline or other parameters made are
never skipped as finished. The stand-in pipeline (named as such: this is about the resume
bookkeeping, not OCR) is enough."""

import json

import pytest

import ray_ocr
from ray_ocr.errors import UsageError
from tests.conftest import STANDIN
from tests.helpers import make_images

pytestmark = pytest.mark.ray


def test_a_rerun_with_other_parameters_is_refused_unless_it_overwrites(ray_cluster, tmp_path):
    inputs, out = make_images(tmp_path / "in", 3), tmp_path / "out"
    first = ray_ocr.run_batch(STANDIN, str(inputs), str(out), device="cpu", progress_interval=-1)
    assert first.succeeded == 3
    [produced] = _runs(out)
    assert produced["pipeline"] == "SchedulingTestPipeline" and produced["pipeline_params"] == {}

    same = ray_ocr.run_batch(STANDIN, str(inputs), str(out), device="cpu", progress_interval=-1)
    assert same.skipped == 3 and same.processed == 0

    with pytest.raises(UsageError) as refused:
        ray_ocr.run_batch(STANDIN, str(inputs), str(out), device="cpu", progress_interval=-1,
                    pipeline_params={"sleep_seconds": 0.01})
    message = str(refused.value)
    assert message.startswith(f"--output_dir {out}: its results were made with other settings")
    assert "pipeline_params.sleep_seconds: None -> 0.01" in message
    assert "--overwrite" in message and "--resume_anyway" in message
    assert len(_runs(out)) == 1  # neither the run with nothing to do nor the refused one adds a line

    redo = ray_ocr.run_batch(STANDIN, str(inputs), str(out), device="cpu", progress_interval=-1, overwrite=True,
                       pipeline_params={"sleep_seconds": 0.01})
    assert redo.succeeded == 3 and redo.skipped == 0
    assert _runs(out)[-1]["pipeline_params"] == {"sleep_seconds": 0.01}
    # Now the new settings resume, the old ones are refused.
    assert ray_ocr.run_batch(STANDIN, str(inputs), str(out), device="cpu", progress_interval=-1,
                       pipeline_params={"sleep_seconds": 0.01}).skipped == 3
    with pytest.raises(UsageError):
        ray_ocr.run_batch(STANDIN, str(inputs), str(out), device="cpu", progress_interval=-1)


def test_resume_anyway_skips_what_other_settings_finished(ray_cluster, tmp_path):
    inputs, out = make_images(tmp_path / "in", 3), tmp_path / "out"
    assert ray_ocr.run_batch(STANDIN, str(inputs), str(out), device="cpu", progress_interval=-1).succeeded == 3
    make_images(tmp_path / "more", 4)
    (tmp_path / "more" / "img_003.png").rename(inputs / "img_003.png")  # one new input
    again = ray_ocr.run_batch(STANDIN, str(inputs), str(out), device="cpu", progress_interval=-1, resume_anyway=True,
                        pipeline_params={"sleep_seconds": 0.01})
    assert again.skipped == 3 and again.succeeded == 1
    assert [r["pipeline_params"] for r in _runs(out)] == [{}, {"sleep_seconds": 0.01}]


def _runs(out):
    return [json.loads(line) for line in (out / "ray_ocr_run.jsonl").read_text().splitlines()]
