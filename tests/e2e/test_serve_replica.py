"""A serving replica's app, built as ``ray_ocr.serve``'s replicas build it
(serve/replica.py, outside Serve, through FastAPI's TestClient; no Ray started): the
real OCR pipeline; a document cut at ``--max_pages`` is said in a header (PaddleX's own
app cuts silently)."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from tests.conftest import MOBILE_OCR_PARAMS, REALDOCS

pytestmark = pytest.mark.e2e


def _client(max_pages):
    from fastapi.testclient import TestClient

    from ray_ocr.config import ServeConfig
    from ray_ocr.models.runner import RunnerSpec
    from ray_ocr.serve.replica import build_replica_app, build_replica_pipeline

    config = ServeConfig.build(pipeline="OCR", device="cpu", pipeline_params=MOBILE_OCR_PARAMS, max_pages=max_pages)
    spec = dataclasses.replace(RunnerSpec.from_options(config), cpu_threads=1)
    pipeline, paddlex_config = build_replica_pipeline(spec, config.max_pages)
    return TestClient(build_replica_app(pipeline, paddlex_config, "replica-1"))


def _post(client, data: bytes, file_type: int):
    response = client.post("/ocr", json={"file": base64.b64encode(data).decode(), "fileType": file_type,
                                         "visualize": False})
    assert response.status_code == 200, response.text
    return response


@pytest.fixture(scope="module")
def five_pages(tmp_path_factory) -> bytes:
    """Five blank pages: the test is about the count, not the OCR."""
    import pypdfium2 as pdfium

    path = tmp_path_factory.mktemp("pdf") / "five.pdf"
    document = pdfium.PdfDocument.new()
    for _ in range(5):
        document.new_page(300, 400)
    document.save(str(path))
    document.close()
    return path.read_bytes()


def test_a_document_cut_at_max_pages_says_so(five_pages):
    with _client(3) as client:
        cut = _post(client, five_pages, 0)
        image = _post(client, (REALDOCS / "paddleocr" / "textline.png").read_bytes(), 1)
    result = cut.json()["result"]
    assert len(result["ocrResults"]) == 3 and result["dataInfo"]["numPages"] == 3
    assert cut.headers["x-ray-ocr-pages"] == "3 of 5"
    assert "x-ray-ocr-pages" not in image.headers and image.headers["x-ray-ocr-replica"] == "replica-1"
    assert "".join(image.json()["result"]["ocrResults"][0]["prunedResult"]["rec_texts"]) == "绿洲仕格维花园公寓"

