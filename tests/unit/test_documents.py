"""Decoding inputs by content, on real files (good, awkward and broken). Rendering PDF
pages needs PaddleX: that is in tests/e2e/test_pdf_rendering.py."""

import pytest

from ray_ocr.io.documents import (
    DocumentError,
    decode_image,
    open_pdf,
    pdf_page_count,
    sniff_kind,
    truncation_warning,
)
from tests.conftest import REALDOCS
from tests.helpers import huge_png

PO = REALDOCS / "paddleocr"
BAD = REALDOCS / "bad_inputs"


def test_kind_comes_from_content_not_name():
    assert sniff_kind((PO / "tipc_web_test.jpg").read_bytes()) == "image"  # a PNG named .jpg
    assert sniff_kind((REALDOCS / "pdfs" / "pdflatex-outline.pdf").read_bytes()) == "pdf"
    assert sniff_kind(b"") == "empty"


@pytest.mark.parametrize("name, shape", [
    ("tipc_web_test.jpg", (640, 640, 3)),   # PNG (RGBA) named .jpg
    ("img_12.jpg", (1048, 1680, 3)),        # palette PNG named .jpg
    ("textline.png", (64, 514, 3)),         # RGBA
    ("formula.png", (64, 448, 3)),          # grayscale
])
def test_awkward_images_decode_to_bgr_like_cv2_imread(name, shape):
    import cv2
    import numpy as np

    image = decode_image((PO / name).read_bytes())
    assert image.shape == shape
    assert np.array_equal(image, cv2.imread(str(PO / name), cv2.IMREAD_COLOR))


def test_undecodable_files_fail_with_a_reason():
    with pytest.raises(DocumentError, match="not a decodable image"):
        decode_image((BAD / "crazyones_text_renamed.jpg").read_bytes())


def test_truncated_jpeg_is_decoded_with_a_warning():
    data = (BAD / "book_truncated_half.jpg").read_bytes()
    assert "truncated JPEG" in truncation_warning(data)
    assert decode_image(data).shape == (708, 1100, 3)
    assert truncation_warning((PO / "book.jpg").read_bytes()) is None


def test_pixel_limit_is_checked_before_decoding(tmp_path, monkeypatch):
    import cv2

    def no_decoding(*args, **kwargs):
        raise AssertionError("the pixels were decoded before the limit was checked")

    huge = huge_png(tmp_path / "huge.png", 15000, 12000)  # 180 Mpixel, a small file
    with monkeypatch.context() as patched:
        patched.setattr(cv2, "imdecode", no_decoding)
        with pytest.raises(DocumentError, match="15000x12000"):
            decode_image(huge.read_bytes())
        with pytest.raises(DocumentError, match="above the limit of 1,000"):
            decode_image((PO / "table.jpg").read_bytes(), max_pixels=1000)


def test_broken_and_encrypted_pdfs_fail_with_a_reason():
    with pytest.raises(DocumentError, match="not a readable PDF"):
        open_pdf((BAD / "Seige_of_Vicksburg_truncated_half.pdf").read_bytes())
    encrypted = (BAD / "encrypted_rc4_libreoffice-writer-password.pdf").read_bytes()
    with pytest.raises(DocumentError, match="password is needed"):
        open_pdf(encrypted)
    with pytest.raises(DocumentError, match="wrong password"):
        open_pdf(encrypted, password="nope")
    assert pdf_page_count(encrypted) is None  # its actor says why
    assert pdf_page_count(encrypted, password="openpassword") == 1
