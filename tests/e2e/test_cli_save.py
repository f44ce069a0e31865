"""--save: the result's own visualisations and markdown, named like the JSONs."""

import json
import subprocess
import sys

import pytest

from tests.conftest import MOBILE_OCR_PARAMS, STANDIN, cli_params, copy_docs
from tests.helpers import make_images

pytestmark = pytest.mark.e2e


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "ray_ocr.run", *args], capture_output=True, text=True,
                          timeout=600)


def test_save_img_writes_the_ocr_visualisation(tmp_path):
    import cv2

    inputs = copy_docs(tmp_path / "in", ["word_ch_1.jpg", "pdflatex-outline.pdf"])
    out = tmp_path / "out"
    proc = run_cli("--pipeline", "OCR", "--input_dir", str(inputs), "--output_dir", str(out), "--device", "cpu",
                   "--save", "img,page", *cli_params(MOBILE_OCR_PARAMS))
    assert proc.returncode == 0, proc.stderr[-2000:]
    images = {p.name for p in out.iterdir() if p.suffix in (".png", ".jpg")}
    # PaddleX keeps a JPEG input's suffix for its visualisation; PDF pages are PNGs.
    assert images == ({"word_ch_1_ocr_res_img.jpg", "word_ch_1_page.png"}
                      | {f"pdflatex-outline_{i}_{kind}.png" for i in range(4) for kind in ("ocr_res_img", "page")})
    # --save page with the document preprocessing off: the page as read (a PDF page as rendered).
    assert (cv2.imread(str(out / "word_ch_1_page.png")) == cv2.imread(str(inputs / "word_ch_1.jpg"))).all()
    assert cv2.imread(str(out / "pdflatex-outline_0_page.png")).shape[:2] == (1684, 1191)  # A4 at PaddleX's scale 2
    picture = cv2.imread(str(out / "word_ch_1_ocr_res_img.jpg"))
    assert picture is not None and picture.shape[0] > 0
    assert json.loads((out / "word_ch_1.json").read_text())["rec_texts"] == ["韩国小馆"]
    record = [json.loads(l) for l in (out / "ray_ocr_manifest.jsonl").read_text().splitlines()
              if '"word_ch_1.jpg"' in l][0]
    assert "word_ch_1_ocr_res_img.jpg" in record["outputs"]  # a rerun checks them too


def test_save_markdown_plumbing_with_the_standin(tmp_path):
    """Offline there is no layout model for PPStructureV3; the stand-in's saver
    (markdown + a linked file in imgs/) exercises naming and writing."""
    inputs = make_images(tmp_path / "in", 2)
    out = tmp_path / "out"
    proc = run_cli("--pipeline", STANDIN, "--input_dir", str(inputs), "--output_dir", str(out),
                   "--device", "cpu", "--save", "markdown")
    assert proc.returncode == 0, proc.stderr[-2000:]
    markdown = (out / "img_001.md").read_text()
    assert markdown.startswith("# img_001")
    # The file it links is named after its content (models/markdown.py), the link follows.
    [crop] = (out / "imgs").glob("img_001_crop_*.txt")
    assert crop.read_text() == "crop" and f"](imgs/{crop.name})" in markdown
