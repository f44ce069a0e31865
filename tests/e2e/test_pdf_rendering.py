"""PDF pages rendered through PaddleX's own renderer (ray_ocr.io.documents.iter_pdf_pages):
the same pixels PaddleX makes from the path, one page at a time. Needs PaddleX."""

import pytest

from ray_ocr.io.documents import DocumentError, iter_pdf_pages
from tests.conftest import REALDOCS

pytestmark = pytest.mark.e2e

BAD = REALDOCS / "bad_inputs"


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
    assert len(theirs) == len(ours)
    assert all(np.array_equal(a, b) for (_, _, a), b in zip(ours, theirs))
    only = list(iter_pdf_pages(path.read_bytes(), pages=(2,)))
    assert [i for i, _, _ in only] == [2] and np.array_equal(only[0][2], theirs[2])


def test_broken_and_encrypted_pdfs():
    with pytest.raises(DocumentError, match="not a readable PDF"):
        list(iter_pdf_pages((BAD / "Seige_of_Vicksburg_truncated_half.pdf").read_bytes()))
    encrypted = (BAD / "encrypted_rc4_libreoffice-writer-password.pdf").read_bytes()
    with pytest.raises(DocumentError, match="password is needed"):
        list(iter_pdf_pages(encrypted))
    pages = list(iter_pdf_pages(encrypted, password="openpassword"))
    assert [(i, n) for i, n, _ in pages] == [(0, 1)] and pages[0][2].ndim == 3


def test_pages_rendered_smaller_to_fit_the_pixel_limit_are_said():
    """A4 at PaddleX's scale 2 is 1191 x 1684 (about 2 million pixels): under a limit of
    1.5 million PaddleX renders it smaller, which changes the OCR, so one warning names
    the pages; under the default limit, none."""
    data = (REALDOCS / "pdfs" / "pdflatex-outline.pdf").read_bytes()
    warnings: list[str] = []
    pages = list(iter_pdf_pages(data, max_pixels=1_500_000, warnings=warnings))
    assert all(image.shape[0] * image.shape[1] <= 1_500_000 for _, _, image in pages)
    assert warnings == ["4 page(s) (0, 1, 2, 3) rendered below PaddleX's scale 2 to stay under "
                        "--max_image_pixels 1,500,000"]
    warnings.clear()
    assert len(list(iter_pdf_pages(data, warnings=warnings))) == 4 and warnings == []
