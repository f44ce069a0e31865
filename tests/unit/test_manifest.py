"""The run manifest's resume rules, without Ray."""

import json

import pytest

from ray_ocr.engine.manifest import RunManifest
from ray_ocr.errors import UsageError

OCR = {"pipeline": "OCR", "pipeline_params": {"text_det_thresh": 0.3}, "predict_params": {}, "pipeline_config": None}


def _manifest(tmp_path, *statuses):
    manifest = RunManifest(str(tmp_path))
    manifest.write_producer(OCR)
    lines = [json.dumps({"key": f"f{i}.png", "status": s, "outputs": [f"f{i}.json"]}) for i, s in enumerate(statuses)]
    (tmp_path / "ray_ocr_manifest.jsonl").write_text("".join(line + "\n" for line in lines))
    return manifest


def test_finished_results_of_other_settings_are_not_resumed(tmp_path):
    manifest = _manifest(tmp_path, "failed", "done")
    manifest.check_producer(dict(OCR), "--output_dir out")  # the same settings resume
    with pytest.raises(UsageError, match=r"^--output_dir out: .*pipeline: 'OCR' -> 'SealRecognition'"):
        manifest.check_producer({**OCR, "pipeline": "SealRecognition"}, "--output_dir out")
    with pytest.raises(UsageError, match=r"pipeline_params: \{'text_det_thresh': 0\.3\} -> \{'text_det_thresh': 0\.4\}"):
        manifest.check_producer({**OCR, "pipeline_params": {"text_det_thresh": 0.4}}, "--output_dir out")


def test_other_settings_may_follow_a_run_that_finished_nothing(tmp_path):
    """A first try with a bad parameter fails every input: fixing it must not be refused."""
    _manifest(tmp_path, "failed", "failed").check_producer({**OCR, "pipeline_params": {}}, "--output_dir out")
    RunManifest(str(tmp_path / "fresh")).check_producer(OCR, "--output_dir out")  # nothing there at all
