"""The run manifest's resume rules, without Ray."""

import json

from ray_ocr.engine.manifest import RunManifest

OCR = {"pipeline": "OCR", "pipeline_params": {"text_det_thresh": 0.3}, "predict_params": {}, "pipeline_config": None}


def _manifest(tmp_path, *statuses):
    manifest = RunManifest(str(tmp_path))
    manifest.add_producer({**OCR, "pipeline": "SealRecognition"})
    manifest.add_producer(OCR)  # the last run's settings are what count
    lines = [json.dumps({"key": f"f{i}.png", "status": s, "outputs": [f"f{i}.json"]}) for i, s in enumerate(statuses)]
    (tmp_path / "ray_ocr_manifest.jsonl").write_text("".join(line + "\n" for line in lines))
    return manifest


def test_changed_settings_over_finished_results_are_named(tmp_path):
    manifest = _manifest(tmp_path, "failed", "done")
    assert manifest.producer_changes(dict(OCR)) == []
    assert manifest.producer_changes({**OCR, "pipeline": "SealRecognition"}) == ["pipeline: 'OCR' -> 'SealRecognition'"]
    assert manifest.producer_changes({**OCR, "pipeline_params": {"text_det_thresh": 0.4}}) == [
        "pipeline_params: {'text_det_thresh': 0.3} -> {'text_det_thresh': 0.4}"]
    runs = [json.loads(line) for line in (tmp_path / "ray_ocr_run.jsonl").read_text().splitlines()]
    assert [r["pipeline"] for r in runs] == ["SealRecognition", "OCR"] and all(r["started"] for r in runs)


def test_other_settings_may_follow_a_run_that_finished_nothing(tmp_path):
    """A first try with a bad parameter fails every input: fixing it is no change to refuse."""
    assert _manifest(tmp_path, "failed", "failed").producer_changes({**OCR, "pipeline_params": {}}) == []
    assert RunManifest(str(tmp_path / "fresh")).producer_changes(OCR) == []  # nothing there at all
