"""The seed's document pipelines under ray_ocr, every default stage on: SealRecognition,
PPStructureV3 and DocPreprocessor, with stand-in models (ray_ocr.testing.standin_models,
named as such) only where no real model is to be had offline (layout, region,
orientation, unwarping); text detection and recognition are the real PP-OCRv5 mobile
models. Each JSON ray_ocr writes is byte-equal to ``save_to_json`` of a direct
PaddleOCR call with the same models, on images and on PDFs run as page-range parts
across two actors. ``--save img`` draws with the bundled font, offline.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest

import ray_ocr
from tests.conftest import REALDOCS

pytestmark = pytest.mark.e2e

PO = REALDOCS / "paddleocr"
SEAL_BOX = [("seal", (0.05, 0.05, 0.95, 0.95), 0.9)]
# 11.jpg (500 x 500): the title line, two text blocks, the bottle on the right.
LABEL_LAYOUT = [("doc_title", (0.04, 0.05, 0.62, 0.14), 0.9), ("text", (0.03, 0.15, 0.72, 0.33), 0.9),
                ("text", (0.03, 0.34, 0.72, 0.96), 0.9), ("image", (0.72, 0.15, 0.98, 0.72), 0.9)]


def image_pdf(path: Path, *images: Path, size: tuple[int, int] | None = None) -> Path:
    """A PDF with one page per image at 144 dpi (PaddleX renders at zoom 2, so a page
    comes back at the image's pixel size); `size` resizes every page."""
    from PIL import Image

    pages = [Image.open(p).convert("RGB") for p in images]
    if size:
        pages = [page.resize(size) for page in pages]
    pages[0].save(path, "PDF", resolution=144, save_all=True, append_images=pages[1:])
    return path


def direct_jsons(pipeline_cls, params: dict, path: Path) -> list[str]:
    """What PaddleOCR itself writes for `path`: each result's save_to_json text, in order.
    One CPU thread, as each of the run's actors has: oneDNN's sums, and so the last
    digits of some scores, depend on the thread count."""
    from ray_ocr.models.model_cache import seed_bundled_models

    seed_bundled_models()
    texts = []
    with tempfile.TemporaryDirectory() as folder:
        for i, result in enumerate(pipeline_cls(device="cpu", cpu_threads=1, **params).predict(str(path))):
            target = Path(folder) / f"{i}.json"
            result.save_to_json(str(target))
            texts.append(target.read_text(encoding="utf-8"))
    return texts


def run(pipeline: str, inputs: Path, out: Path, params: dict, **options):
    return ray_ocr.run_batch(pipeline, str(inputs), str(out), device="cpu", instances_per_device=2,
                             cpus_per_instance=1, pipeline_params=params, pages_per_task=1, progress_interval=-1, **options)


def assert_same_json(out: Path, name: str, direct: list[str], paged: bool) -> None:
    ours = [(out / (f"{name}_{i}.json" if paged else f"{name}.json")).read_text(encoding="utf-8")
            for i in range(len(direct))]
    assert ours == direct


@pytest.fixture(scope="module")
def seal_run(ray_cluster, tmp_path_factory):
    from ray_ocr.testing.standin_models import build_pipeline_models

    root = tmp_path_factory.mktemp("seal")
    params = build_pipeline_models("SealRecognition", root / "models", layout_boxes=SEAL_BOX)
    inputs = root / "in"
    inputs.mkdir()
    (inputs / "seal.png").write_bytes((PO / "seal.png").read_bytes())
    image_pdf(inputs / "seals.pdf", PO / "seal.png", PO / "seal.png", PO / "seal.png")
    summary = run("SealRecognition", inputs, root / "out", params, save="img")
    return summary, inputs, root / "out", params


def test_seal_recognition_with_every_stage_reads_the_seal(seal_run):
    summary, _, out, _ = seal_run
    assert (summary.succeeded, summary.failed) == (2, 0)
    for name in ["seal.json"] + [f"seals_{i}.json" for i in range(3)]:
        res = json.loads((out / name).read_text(encoding="utf-8"))
        assert res["model_settings"] == {"use_doc_preprocessor": True, "use_layout_detection": True}
        assert res["doc_preprocessor_res"]["model_settings"] == {"use_doc_orientation_classify": True,
                                                                 "use_doc_unwarping": True}
        assert [b["label"] for b in res["layout_det_res"]["boxes"]] == ["seal"]
        assert "发票专用章" in [t for seal in res["seal_res_list"] for t in seal["rec_texts"]], name
    assert sum(event["parts"] for event in summary.timeline) == 3  # the PDF ran page by page


def test_seal_recognition_json_is_paddleocrs_own(seal_run):
    from paddleocr import SealRecognition

    _, inputs, out, params = seal_run
    assert_same_json(out, "seal", direct_jsons(SealRecognition, params, inputs / "seal.png"), paged=False)
    assert_same_json(out, "seals", direct_jsons(SealRecognition, params, inputs / "seals.pdf"), paged=True)


def test_save_img_draws_offline_with_the_bundled_font(seal_run):
    import cv2

    _, _, out, _ = seal_run
    for name in ("seal_layout_det_res.png", "seal_preprocessed_img.png", "seal_seal_res_region1.png",
                 "seals_2_seal_res_region1.png"):
        picture = cv2.imread(str(out / name))
        assert picture is not None and picture.shape[0] > 100, name


@pytest.fixture(scope="module")
def structure_run(ray_cluster, tmp_path_factory):
    from ray_ocr.testing.standin_models import build_pipeline_models

    root = tmp_path_factory.mktemp("structure")
    params = build_pipeline_models("PPStructureV3", root / "models", layout_boxes=LABEL_LAYOUT)
    inputs = root / "in"
    inputs.mkdir()
    (inputs / "label.jpg").write_bytes((PO / "11.jpg").read_bytes())
    # Two pages whose image blocks sit at the same place but differ: PaddleX names both
    # imgs/img_in_image_box_360_75_490_360.jpg.
    image_pdf(inputs / "labels.pdf", PO / "11.jpg", PO / "tipc_web_test.jpg", size=(500, 500))
    summary = run("PPStructureV3", inputs, root / "out", params, save="markdown,img")
    return summary, inputs, root / "out", params


def test_pp_structurev3_json_is_paddleocrs_own(structure_run):
    from paddleocr import PPStructureV3

    summary, inputs, out, params = structure_run
    assert (summary.succeeded, summary.failed) == (2, 0)
    res = json.loads((out / "label.json").read_text(encoding="utf-8"))
    assert [b["block_label"] for b in res["parsing_res_list"]] == ["doc_title", "text", "text", "image"]
    assert res["parsing_res_list"][0]["block_content"].strip() == "纯臻营养护发素"
    assert_same_json(out, "label", direct_jsons(PPStructureV3, params, inputs / "label.jpg"), paged=False)
    assert_same_json(out, "labels", direct_jsons(PPStructureV3, params, inputs / "labels.pdf"), paged=True)


def _links(markdown: str) -> list[str]:
    return re.findall(r'src="([^"]+)"', markdown)


def test_one_markdown_per_page_and_one_per_document(structure_run):
    """labels.md: the pages joined by PaddleOCR's own concatenate_markdown_pages (the
    parts ran on two actors); each image a page links is there, none overwritten."""
    from paddleocr import PPStructureV3

    _, inputs, out, params = structure_run
    assert (out / "label.md").read_text(encoding="utf-8").startswith("# 纯臻营养护发素")
    pages = [(out / f"labels_{i}.md").read_text(encoding="utf-8") for i in range(2)]
    links = [_links(page) for page in pages]
    assert all(len(page_links) == 1 for page_links in links)
    assert links[0] != links[1]  # same box, different pictures: two files
    for link in links[0] + links[1]:
        assert re.fullmatch(r"imgs/img_in_image_box_\d+_\d+_\d+_\d+_[0-9a-f]{8}\.jpg", link)
        assert (out / link).stat().st_size > 1000
    document = (out / "labels.md").read_text(encoding="utf-8")
    pipeline = PPStructureV3(device="cpu", cpu_threads=1, **params)
    results = list(pipeline.predict(str(inputs / "labels.pdf")))
    # PaddleOCR's own join of the same pages, each page's image link renamed as ours was.
    pieces = []
    for result, (link,) in zip(results, links):
        (old,) = result.markdown["markdown_images"]
        pieces.append({**result.markdown, "markdown_texts": result.markdown["markdown_texts"].replace(old, link)})
    assert document == pipeline.concatenate_markdown_pages(pieces)["markdown_texts"]
    record = [json.loads(l) for l in (out / "ray_ocr_manifest.jsonl").read_text().splitlines()
              if json.loads(l)["key"] == "labels.pdf"][0]
    assert "labels.md" in record["outputs"] and set(links[0] + links[1]) <= set(record["outputs"])


def test_doc_preprocessor_turns_pages_upright_and_saves_them(ray_cluster, tmp_path):
    import cv2
    from paddleocr import DocPreprocessor

    from ray_ocr.testing.standin_models import build_pipeline_models

    params = build_pipeline_models("DocPreprocessor", tmp_path / "models", doc_angle=180)
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "book.jpg").write_bytes((PO / "book_rot180.jpg").read_bytes())
    image_pdf(inputs / "books.pdf", PO / "book_rot180.jpg", PO / "book_rot180.jpg")
    summary = run("DocPreprocessor", inputs, tmp_path / "out", params, save="img,page")
    assert (summary.succeeded, summary.failed) == (2, 0)
    out = tmp_path / "out"
    res = json.loads((out / "book.json").read_text())
    assert res["angle"] == 180 and res["model_settings"] == {"use_doc_orientation_classify": True,
                                                             "use_doc_unwarping": True}
    assert_same_json(out, "book", direct_jsons(DocPreprocessor, params, inputs / "book.jpg"), paged=False)
    assert_same_json(out, "books", direct_jsons(DocPreprocessor, params, inputs / "books.pdf"), paged=True)
    for name in ("book_preprocessed_img.jpg", "books_0_preprocessed_img.png", "books_1_preprocessed_img.png"):
        picture = cv2.imread(str(out / name))  # the page as read, turned, unwarped: side by side
        assert picture is not None and picture.shape[1] == 3 * 1100 and picture.shape[0] >= 708, name
    # --save page: the corrected page by itself, pixel for pixel what PaddleOCR's own call makes.
    pipeline = DocPreprocessor(device="cpu", cpu_threads=1, **params)
    direct = [r["output_img"] for path in (inputs / "book.jpg", inputs / "books.pdf")
              for r in pipeline.predict(str(path))]
    for name, expected in zip(("book_page.png", "books_0_page.png", "books_1_page.png"), direct):
        page = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        assert page is not None and page.shape == expected.shape and (page == expected).all(), name


def test_doc_understanding_asks_the_query_of_every_page(ray_cluster, tmp_path):
    """A VLM cannot be built offline: a stand-in of DocUnderstanding's shape (input
    {"image", "query"}, PaddleX's DocVLMResult) shows how a batch run asks."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "table.png").write_bytes((PO / "medal_table.png").read_bytes())
    image_pdf(inputs / "two.pdf", PO / "medal_table.png", PO / "table.jpg")
    query = "识别这份表格的内容"
    summary = ray_ocr.run_batch("ray_ocr.testing.standin:DocUnderstandingStandin", str(inputs), str(tmp_path / "out"),
                                device="cpu", query=query, progress_interval=-1)
    assert (summary.succeeded, summary.failed) == (2, 0)
    table = json.loads((tmp_path / "out" / "table.json").read_text(encoding="utf-8"))
    assert table["query"] == query and table["image"] == str(inputs / "table.png")
    import cv2

    mean = float(cv2.imread(str(PO / "medal_table.png")).mean())
    assert table["result"] == f"{query} -> 550x345 pixels, mean {mean:.1f}"
    pages = [json.loads((tmp_path / "out" / f"two_{i}.json").read_text(encoding="utf-8")) for i in range(2)]
    assert [p["page_index"] for p in pages] == [0, 1] and all(p["query"] == query for p in pages)
    assert pages[0]["result"] != pages[1]["result"]  # each page was asked
