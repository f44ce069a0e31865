"""The Python API: ray_ocr.predict yields results as they finish and writes nothing."""

import collections
import os

import pytest

import ray_ocr
from tests.conftest import MOBILE_OCR_PARAMS, REALDOCS, STANDIN, copy_docs
from tests.helpers import make_images
from tests.pdfs import SCANNED_WIDTH, merge_pdfs

pytestmark = pytest.mark.ray


def test_predict_yields_pages_and_failures_without_writing(ray_cluster, tmp_path, monkeypatch):
    inputs = copy_docs(tmp_path / "in", ["word_ch_1.jpg", "textline.png", "sample_pdf.pdf"])
    broken = REALDOCS / "bad_inputs" / "crazyones_text_renamed.jpg"
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    paths = [str(inputs / "word_ch_1.jpg"), str(inputs / "textline.png"), str(inputs / "sample_pdf.pdf"),
             str(broken)]
    results = list(ray_ocr.predict("OCR", paths, device="cpu", pipeline_params=MOBILE_OCR_PARAMS))
    assert sorted(os.listdir(tmp_path)) == before  # nothing written
    by_input = {}
    for r in results:
        by_input.setdefault(os.path.basename(r.input_path), []).append(r)
    assert by_input["word_ch_1.jpg"][0].data["rec_texts"] == ["韩国小馆"]
    assert "".join(by_input["textline.png"][0].data["rec_texts"]) == "绿洲仕格维花园公寓"
    assert sorted(r.page_index for r in by_input["sample_pdf.pdf"]) == [0, 1, 2, 3]
    [bad] = by_input["crazyones_text_renamed.jpg"]
    assert not bad.ok and bad.failure.stage == "decode" and bad.data is None


def test_predict_on_a_folder(ray_cluster, tmp_path):
    inputs = copy_docs(tmp_path / "in", ["word_ch_1.jpg", "11.jpg"])
    results = list(ray_ocr.predict("ocr", str(inputs), device="cpu", pipeline_params=MOBILE_OCR_PARAMS,
                                   input_glob_pattern="*.jpg", prefetch_batches=0, batch_size=2))
    assert sorted(os.path.basename(r.input_path) for r in results) == ["11.jpg", "word_ch_1.jpg"]
    assert all(r.ok and r.data["input_path"] == r.input_path for r in results)


def test_predict_runs_the_pages_of_a_long_pdf_on_several_actors(ray_cluster, tmp_path):
    """Scheduling only: the stand-in pipeline reports each page's size and its own pid.
    Its scanned pages take 1 s each, so the second actor is up before the work is gone."""
    pages = merge_pdfs(tmp_path / "in" / "long.pdf")
    make_images(tmp_path / "in", 2)
    paths = sorted(str(p) for p in (tmp_path / "in").iterdir())
    options = dict(device="cpu", instances_per_device=2, batch_size=1,
                   pipeline_params={"slow_width": SCANNED_WIDTH, "slow_seconds": 1.0})

    def by_page(results):
        assert all(r.ok for r in results), [r.failure for r in results if not r.ok]
        pids = collections.defaultdict(set)
        pages = {}
        for r in results:
            data = dict(r.data)
            pids[os.path.basename(r.input_path)].add(data.pop("pid"))
            key = (os.path.basename(r.input_path), r.page_index)
            assert key not in pages, f"{key} yielded twice"
            pages[key] = data
        return pages, pids

    split, split_pids = by_page(list(ray_ocr.predict(STANDIN, paths, pages_per_task=3, **options)))
    whole, whole_pids = by_page(list(ray_ocr.predict(STANDIN, paths, pages_per_task=0, **options)))
    assert sorted(k for k in split if k[0] == "long.pdf") == [("long.pdf", i) for i in range(pages)]
    assert len(split) == pages + 2
    assert split == whole  # the same pages, whoever rendered them
    assert len(split_pids["long.pdf"]) == 2 and len(whole_pids["long.pdf"]) == 1
