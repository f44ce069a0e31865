"""Page-range tasks on a local Ray: a long PDF's pages run on several actors at once and
come out as whole-file processing writes them; a part that kills its actor fails that
PDF alone. The stand-in pipeline (it reports each page's size and its own pid) is enough
here: this is about scheduling and assembly; real OCR on split PDFs is in
tests/e2e/test_cli_ocr.py."""

import collections
import json

import pytest

import ray_ocr
from tests.conftest import STANDIN
from tests.helpers import make_images, manifest_records
from tests.pdfs import SCANNED_WIDTH, merge_pdfs

pytestmark = pytest.mark.ray

LONG = "a_long.pdf"  # sorted first: its parts are the first work handed out


def _inputs(folder):
    make_images(folder, 3)
    return merge_pdfs(folder / LONG)


def _page_jsons(out):
    data = {}
    for path in sorted(out.glob("*.json")):
        if path.name == "summary.json":
            continue
        record = json.loads(path.read_text())
        record.pop("pid")  # which process ran it: the one thing allowed to differ
        data[path.name] = record
    return data


def test_split_pdf_is_written_as_whole_file_processing_writes_it(ray_cluster, tmp_path):
    pages = _inputs(tmp_path / "in")
    assert pages == 14
    whole = ray_ocr.run_batch(STANDIN, str(tmp_path / "in"), str(tmp_path / "whole"), device="cpu",
                        instances_per_device=2, pages_per_task=0, progress_interval=-1)
    split = ray_ocr.run_batch(STANDIN, str(tmp_path / "in"), str(tmp_path / "split"), device="cpu",
                        instances_per_device=2, pages_per_task=3, progress_interval=-1)
    assert whole.succeeded == split.succeeded == 4 and split.failed == 0
    assert whole.pages == split.pages == pages + 3
    ours, reference = _page_jsons(tmp_path / "split"), _page_jsons(tmp_path / "whole")
    assert sorted(ours) == sorted([f"a_long_{i}.json" for i in range(pages)] + [f"img_00{i}.json" for i in range(3)])
    assert ours == reference
    assert [ours[f"a_long_{i}.json"]["page_index"] for i in range(pages)] == list(range(pages))

    records = manifest_records(tmp_path / "split")
    assert collections.Counter(r["key"] for r in records) == {LONG: 1, "img_000.png": 1, "img_001.png": 1,
                                                              "img_002.png": 1}
    [pdf] = [r for r in records if r["key"] == LONG]
    assert pdf["status"] == "done" and pdf["pages"] == pages
    assert sorted(pdf["outputs"]) == sorted(f"a_long_{i}.json" for i in range(pages))
    # 5 parts of 2-3 pages, spread over both actors (the whole run held them on one).
    summary = json.loads((tmp_path / "split" / "summary.json").read_text())
    part_actors = collections.Counter()
    for event in summary["timeline"]:
        part_actors[event["actor"]] += event["parts"]
    assert sum(part_actors.values()) == 5 and len(part_actors) == 2, part_actors
    assert sum(event["parts"] for event in json.loads(
        (tmp_path / "whole" / "summary.json").read_text())["timeline"]) == 0


def test_a_part_that_kills_its_actor_fails_only_its_pdf(ray_cluster, tmp_path, caplog):
    """Pages 4-9 are the scanned ones; the stand-in dies on their width. Parts of 4
    pages: [0-3] [4-6] [7-9] [10-13]; two parts die on every try."""
    pages = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    summary = ray_ocr.run_batch(STANDIN, str(tmp_path / "in"), str(out), device="cpu", instances_per_device=2,
                          pages_per_task=4, max_attempts=2, progress_interval=-1,
                          pipeline_params={"crash_on_width": SCANNED_WIDTH})
    assert summary.succeeded == 3 and summary.failed == 1 and summary.exit_code == 1
    [failure] = summary.failures
    assert failure.key == LONG and failure.stage == "crash" and failure.attempts == 2
    assert failure.message.startswith(("pages 4-6: ", "pages 7-9: "))
    # The parts that ran are on disk, each recorded as a part done; the PDF is not done.
    kept = {f"a_long_{i}.json": (out / f"a_long_{i}.json").read_bytes() for i in (0, 1, 2, 3, 10, 11, 12, 13)}
    assert {p.name for p in out.glob("a_long_*.json")} == set(kept)
    records = manifest_records(out)
    assert [r["status"] for r in records if r["key"] == LONG] == ["failed"]
    assert sorted(r["key"] for r in records if r["status"] == "done") == [f"img_00{i}.png" for i in range(3)]
    parts = [json.loads(line) for line in (out / "ray_ocr_parts.jsonl").read_text().splitlines()]
    assert sorted(tuple(r["pages"]) for r in parts if r["key"] == LONG) == [(0, 1, 2, 3), (10, 11, 12, 13)]

    # Without the crash: the images, finished with it, are kept (it only made the stand-in
    # crash), and of the PDF only the pages no part done covers run again.
    with caplog.at_level("INFO", logger="ray_ocr.engine.reading"):
        again = ray_ocr.run_batch(STANDIN, str(tmp_path / "in"), str(out), device="cpu", instances_per_device=2,
                                  pages_per_task=4, progress_interval=-1, resume_anyway=True)
    assert again.skipped == 3 and again.succeeded == 1 and again.pages == 6  # pages 4-9
    assert f"{LONG}: kept 8 of its {pages} pages, done by an earlier run" in caplog.messages
    assert {name: (out / name).read_bytes() for name in kept} == kept  # not run again
    assert len(list(out.glob("a_long_*.json"))) == pages
    [pdf] = [r for r in manifest_records(out)[len(records):] if r["key"] == LONG]
    assert pdf["status"] == "done" and sorted(pdf["outputs"]) == sorted(f"a_long_{i}.json" for i in range(pages))

