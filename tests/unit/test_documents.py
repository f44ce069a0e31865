"""Decoding inputs by content, on real files (good, awkward and broken)."""

import pytest

from ray_ocr.io.documents import (
    DocumentError,
    decode_image,
    iter_pdf_pages,
    sniff_kind,
    truncation_warning,
)
from tests.conftest import REALDOCS

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


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    from PIL import Image

    huge = tmp_path / "huge.png"
    Image.new("1", (15000, 12000)).save(huge, compress_level=1)  # 180 Mpixel, a small file
    with pytest.raises(DocumentError, match="15000x12000"):
        decode_image(huge.read_bytes())
    with pytest.raises(DocumentError, match="above the limit of 1,000"):
        decode_image((PO / "table.jpg").read_bytes(), max_pixels=1000)


def test_pdf_pages_render_like_paddlex():
    import numpy as np
    from paddlex.inference.utils.io import PDFReader
    from paddlex.inference.utils.pdf_rendering import DEFAULT_MAX_IMAGE_PIXELS
    from paddlex.utils.flags import PDF_RENDER_SCALE

    path = REALDOCS / "pdfs" / "pdflatex-outline.pdf"
    ours = list(iter_pdf_pages(path.read_bytes()))
    assert [(i, n) for i, n, _ in ours] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    reader = PDFReader(zoom=PDF_RENDER_SCALE, max_pixels=DEFAULT_MAX_IMAGE_PIXELS)
    theirs = list(reader.read(reader.load(str(path))))
    assert all(np.array_equal(a, b) for (_, _, a), b in zip(ours, theirs))
    only = list(iter_pdf_pages(path.read_bytes(), pages=(2,)))
    assert [i for i, _, _ in only] == [2] and np.array_equal(only[0][2], theirs[2])


def test_broken_and_encrypted_pdfs():
    with pytest.raises(DocumentError, match="not a readable PDF"):
        list(iter_pdf_pages((BAD / "Seige_of_Vicksburg_truncated_half.pdf").read_bytes()))
    encrypted = (BAD / "encrypted_rc4_libreoffice-writer-password.pdf").read_bytes()
    with pytest.raises(DocumentError, match="password is needed"):
        list(iter_pdf_pages(encrypted))
    with pytest.raises(DocumentError, match="wrong password"):
        list(iter_pdf_pages(encrypted, password="nope"))
    pages = list(iter_pdf_pages(encrypted, password="openpassword"))
    assert len(pages) == 1 and pages[0][2].ndim == 3
