"""The run manifest's resume rules, without Ray."""

import json

from ray_ocr.engine.manifest import DonePart, RunManifest, settings_id
from ray_ocr.records import Failure, FileResult

OCR = {"pipeline": "OCR", "pipeline_params": {"text_det_thresh": 0.3}, "predict_params": {}, "pipeline_config": None}
SEAL = {**OCR, "pipeline": "SealRecognition"}


def _finish(manifest, settings, *keys):
    manifest.start_run(settings)
    with manifest:
        for key in keys:
            manifest.record(FileResult(key=key), [f"{key}.json"], 1, None)


def test_records_name_the_settings_that_made_them(tmp_path):
    manifest = RunManifest(str(tmp_path))
    _finish(manifest, SEAL, "a", "b")
    _finish(RunManifest(str(tmp_path)), OCR, "b")  # b redone with other settings
    finished, ids, _ = RunManifest(str(tmp_path)).finished_outputs()
    assert finished == {"a": ["a.json"], "b": ["b.json"]}
    assert ids == {settings_id(SEAL), settings_id(OCR)}
    runs = [json.loads(line) for line in (tmp_path / "ray_ocr_run.jsonl").read_text().splitlines()]
    assert [(r["pipeline"], r["settings"]) for r in runs] == [("SealRecognition", settings_id(SEAL)),
                                                             ("OCR", settings_id(OCR))]


def test_changes_are_named_against_what_made_the_finished_results(tmp_path):
    manifest = RunManifest(str(tmp_path))
    _finish(manifest, SEAL, "a")
    manifest.start_run(OCR)  # a later run with other settings that finished nothing
    ids = {settings_id(SEAL)}
    assert manifest.settings_changes(SEAL, ids) == []  # the last run's settings do not matter
    assert manifest.settings_changes(OCR, ids) == ["pipeline: 'SealRecognition' -> 'OCR'"]
    assert manifest.settings_changes({**SEAL, "pipeline_params": {}}, ids) == [
        "pipeline_params.text_det_thresh: 0.3 -> None"]
    # A long parameter list: only what differs is named.
    many = {**SEAL, "pipeline_params": {"text_det_thresh": 0.4, "lang": "en"}}
    assert manifest.settings_changes(many, ids) == ["pipeline_params.lang: None -> 'en'",
                                                    "pipeline_params.text_det_thresh: 0.3 -> 0.4"]
    assert manifest.settings_changes(OCR, {None}) == []  # records from before settings ids
    assert manifest.settings_changes(OCR, {"0123456789ab"}) == ["settings 0123456789ab (not in ray_ocr_run.jsonl)"]


def test_a_record_is_the_json_of_its_fields(tmp_path):
    """The manifest line is formatted field by field for speed: it must read back as the
    record's fields, whatever the key, failure, warnings or worker hold."""
    from ray_ocr.records import Failure, PageOutput, WorkerInfo

    worker = WorkerInfo('actor "0"', "nöde", 1)
    cases = [(FileResult("é/x.png", pages=(PageOutput(None, ""),), seconds=1e-05), ["é/x.json"], 1, worker),
             (FileResult("k.pdf", failure=Failure("k.pdf", "read", "OSError", 'bad "x"\\'), warnings=("w",)),
              [], 3, None),
             (FileResult("k2.tif", page_count=7, seconds=0.123456), ["k2_0.json", "k2_1.json"], 2, worker)]
    manifest = RunManifest(str(tmp_path))
    manifest.start_run(OCR)
    with manifest:
        for case in cases:
            manifest.record(*case)
    lines = (tmp_path / "ray_ocr_manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines == [json.dumps(record, ensure_ascii=False) for record in [
        {"key": "é/x.png", "status": "done", "outputs": ["é/x.json"], "pages": 1, "attempts": 1, "seconds": 0.0,
         "actor": 'actor "0"', "node": "nöde", "settings": settings_id(OCR)},
        {"key": "k.pdf", "status": "failed", "outputs": [], "pages": 0, "attempts": 3, "seconds": 0.0,
         "actor": None, "node": None, "settings": settings_id(OCR), "warnings": ["w"],
         "failure": {"key": "k.pdf", "stage": "read", "error_type": "OSError", "message": 'bad "x"\\',
                     "attempts": 3}},
        {"key": "k2.tif", "status": "done", "outputs": ["k2_0.json", "k2_1.json"], "pages": 7, "attempts": 2,
         "seconds": 0.1235, "actor": 'actor "0"', "node": "nöde", "settings": settings_id(OCR)}]]
    assert "é" in lines[0]  # names stay readable (not \\u escapes)


def test_a_torn_last_line_does_not_swallow_the_next_runs_first_record(tmp_path):
    """A driver killed mid-write leaves a line without its newline; the next run's first
    record must still be a line of its own (the torn one is skipped on reading)."""
    path = tmp_path / "ray_ocr_manifest.jsonl"
    path.write_text('{"key": "a", "status": "done", "outputs": ["a.json"]}\n{"key": "b", "sta')
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "c.json").write_text("{}")
    _finish(RunManifest(str(tmp_path)), OCR, "c")
    finished, _, _ = RunManifest(str(tmp_path)).finished_outputs()
    assert finished == {"a": ["a.json"], "c": ["c.json"]}


def test_parts_done_are_kept_for_a_pdf_not_finished(tmp_path):
    """A split PDF's parts done are recorded in a file of their own: they never make it
    finished (nor hide its failure), and they are offered to a rerun until the PDF is
    finished."""
    manifest = RunManifest(str(tmp_path))
    manifest.start_run(OCR)
    with manifest:
        manifest.record_part(FileResult(key="long.pdf", page_range=(0, 1), page_count=4),
                             ["long_0.json", "long_1.json"])
        manifest.record_part(FileResult(key="done.pdf", page_range=(0,), page_count=1), ["done_0.json"])
        manifest.record(FileResult(key="done.pdf", page_count=1), ["done_0.json"], 1, None)
        failure = Failure("long.pdf", "crash", "RayActorError", "pages 2-3: died")
        manifest.record(FileResult(key="long.pdf", failure=failure, page_count=4), [], 2, None)
    finished, ids, parts = RunManifest(str(tmp_path)).finished_outputs()
    assert finished == {"done.pdf": ["done_0.json"]} and ids == {settings_id(OCR)}
    assert parts == {"long.pdf": [DonePart((0, 1), ["long_0.json", "long_1.json"], settings_id(OCR), 4)]}
    assert [f["key"] for f in RunManifest(str(tmp_path)).write_failures()] == ["long.pdf"]
    manifest_lines = (tmp_path / "ray_ocr_manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["key"] for line in manifest_lines] == ["done.pdf", "long.pdf"]  # one per input
