"""PipelineRunner with the real OCR pipeline (Paddle, the bundled mobile models) and real
files, in this process: no Ray."""

import json

import pytest

from ray_ocr.models.runner import PipelineRunner, RunnerSpec
from ray_ocr.pipelines import resolve_pipeline
from ray_ocr.records import InputItem
from tests.conftest import MOBILE_OCR_PARAMS, REALDOCS
from tests.helpers import huge_png
from tests.textmatch import similarity

pytestmark = pytest.mark.e2e

PO = REALDOCS / "paddleocr"
BAD = REALDOCS / "bad_inputs"


@pytest.fixture(scope="module")
def runner():
    spec = RunnerSpec(
        pipeline=resolve_pipeline("OCR"),
        init_params=tuple(MOBILE_OCR_PARAMS.items()),
        device="cpu",
        cpu_threads=2,
    )
    return PipelineRunner(spec)


def item(path, key=None):
    return InputItem(key=key or path.name, source_path=str(path), data=path.read_bytes())


def test_bad_inputs_are_failure_records_and_spare_the_batch(runner):
    batch = [
        item(BAD / "empty.png"),
        item(PO / "textline.png"),
        item(BAD / "crazyones_text_renamed.jpg"),
        item(BAD / "Seige_of_Vicksburg_truncated_half.pdf"),
        item(BAD / "encrypted_rc4_libreoffice-writer-password.pdf"),
        item(PO / "word_ch_1.jpg"),
    ]
    results = {r.key: r for r in runner.process_batch(batch)}
    assert [r.key for r in results.values()] == [i.key for i in batch]
    expected_failures = {
        "empty.png": ("read", "empty file"),
        "crazyones_text_renamed.jpg": ("decode", "not a decodable image"),
        "Seige_of_Vicksburg_truncated_half.pdf": ("render", "not a readable PDF"),
        "encrypted_rc4_libreoffice-writer-password.pdf": ("render", "password is needed"),
    }
    for key, (stage, text) in expected_failures.items():
        failure = results[key].failure
        assert failure is not None and failure.stage == stage and text in failure.message, key
        assert "\n" not in failure.one_line()
    good = json.loads(results["textline.png"].pages[0].json_text)
    assert "".join(good["rec_texts"]) == "绿洲仕格维花园公寓"
    assert json.loads(results["word_ch_1.jpg"].pages[0].json_text)["rec_texts"] == ["韩国小馆"]


def test_truncated_jpeg_is_processed_with_a_warning(runner):
    [result] = runner.process_batch([item(BAD / "book_truncated_half.jpg")])
    assert result.ok and len(result.pages) == 1
    assert any("truncated JPEG" in w for w in result.warnings)
    assert json.loads(result.pages[0].json_text)["rec_texts"]  # the upper half has text


def test_awkward_images_are_read_normally(runner):
    expect = json.loads((REALDOCS / "expected" / "tipc_web_test.jpg.expect.json").read_text())["text"]
    [png_as_jpg, palette] = runner.process_batch([item(PO / "tipc_web_test.jpg"), item(PO / "img_12.jpg")])
    text = "".join(json.loads(png_as_jpg.pages[0].json_text)["rec_texts"])
    assert similarity("".join(expect), text) >= 0.95
    lines = [l.rsplit(",", 1)[0] for l in (REALDOCS / "expected" / "img_12.jpg.expected.txt").read_text().splitlines()]
    assert similarity("".join(lines), "".join(json.loads(palette.pages[0].json_text)["rec_texts"])) >= 0.95


def test_encrypted_pdf_with_password(runner):
    import dataclasses

    other = PipelineRunner(dataclasses.replace(runner.spec, pdf_password="openpassword"))
    [result] = other.process_batch([item(BAD / "encrypted_rc4_libreoffice-writer-password.pdf")])
    assert result.ok and result.page_count == 1 and result.pages[0].page_index == 0


def test_pixel_limit_gives_a_failure_not_an_oom(runner, tmp_path):
    huge = huge_png(tmp_path / "huge.png", 15000, 12000)
    [result] = runner.process_batch([item(huge)])
    assert result.failure.stage == "decode" and "--max_image_pixels" in result.failure.message


def test_the_built_pipeline_is_frozen_out_of_the_garbage_collector(runner):
    """PP-OCRv5's pipeline is ~300,000 Python objects; a full collection walked them all
    (0.2 s) after every batch and during prediction. Frozen, they are skipped."""
    import gc

    runner.process_batch([item(PO / "textline.png")])
    assert gc.get_freeze_count() > 100_000
