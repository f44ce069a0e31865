"""The Python API: ray_ocr.predict yields results as they finish and writes nothing."""

import os

import ray_ocr
from tests.conftest import MOBILE_OCR_PARAMS, REALDOCS, copy_docs


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
