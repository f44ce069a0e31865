"""Turning an input's bytes into page images, the way PaddleX would from a path.

Runs inside the pipeline actors. The kind of a file is decided by its content, not
its name (a PNG named ``.jpg`` is a PNG). Images decode with OpenCV exactly as
PaddleX's reader does (``IMREAD_COLOR``, BGR); PDF pages render through PaddleX's own
``render_pdf_page_to_numpy`` at its scale, so outputs equal a direct PaddleOCR call.
"""

from __future__ import annotations

import io
import threading
from typing import Iterator

DEFAULT_MAX_IMAGE_PIXELS = 178_956_970  # PaddleX's limit for rendered PDF pages.


class DocumentError(Exception):
    """An input that cannot become page images; `stage` is decode or render."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


def sniff_kind(data: bytes) -> str:
    """'pdf', 'tiff', 'image', or 'empty', from the leading bytes."""
    if not data:
        return "empty"
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    return "image"


def truncation_warning(data: bytes) -> str | None:
    """A warning when a JPEG or PNG ends before its end marker.

    OpenCV decodes such files anyway (the missing part grey), so they are processed,
    and their record says the image was truncated.
    """
    tail = data.rstrip(b"\x00")[-16:]
    if data[:3] == b"\xff\xd8\xff" and not tail.endswith(b"\xff\xd9"):
        return "truncated JPEG: no end-of-image marker; the missing part decodes as grey"
    if data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in tail:
        return "truncated PNG: no IEND chunk"
    return None


def _check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise DocumentError(
            "decode",
            f"image is {width}x{height} = {width * height:,} pixels, above the limit of "
            f"{max_pixels:,} (--max_image_pixels)",
        )


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header, without decoding the pixels."""
    from PIL import Image

    # Pillow refuses to even open an image above twice its own pixel limit: that check
    # is off here (only the header is read), and --max_image_pixels applies instead.
    with _PILLOW_LIMIT_OFF:  # the limit is Pillow's global: one thread at a time
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(io.BytesIO(data)) as img:
                return img.size
        except Exception:
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = limit


_PILLOW_LIMIT_OFF = threading.Lock()


def decode_image(data: bytes, max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS):
    """Decode image bytes to a BGR uint8 array, as ``cv2.imread(path, IMREAD_COLOR)``."""
    import cv2
    import numpy as np

    size = _header_size(data)
    if size is not None:
        _check_pixels(size[0], size[1], max_pixels)
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        image = _decode_with_pillow(data)
    if image is None:
        raise DocumentError("decode", "not a decodable image or PDF")
    _check_pixels(image.shape[1], image.shape[0], max_pixels)
    return image


def _decode_with_pillow(data: bytes):
    """Formats OpenCV lacks (GIF, ...): first frame, RGB, turned to BGR."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            rgb = np.asarray(img.convert("RGB"))
    except Exception:
        return None
    return np.ascontiguousarray(rgb[:, :, ::-1])


def iter_tiff_pages(data: bytes, max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS):
    """Yield (page_index, BGR array) per TIFF frame, as PaddleX's TIFF reader."""
    import numpy as np
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data))
    except Exception as exc:
        raise DocumentError("decode", f"not a readable TIFF ({exc})") from None
    with img:
        count = getattr(img, "n_frames", 1)
        for index in range(count):
            img.seek(index)
            _check_pixels(img.size[0], img.size[1], max_pixels)
            rgb = np.asarray(img.convert("RGB"))
            yield index, count, np.ascontiguousarray(rgb[:, :, ::-1])


def open_pdf(data: bytes, password: str | None = None, forms: bool = True):
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(data, password=password)
    except pdfium.PdfiumError as exc:
        text = str(exc)
        if "password" in text.lower():
            hint = "wrong password (--pdf_password)" if password else "encrypted: a password is needed (--pdf_password)"
            raise DocumentError("render", f"PDF is {hint}") from None
        raise DocumentError("render", f"not a readable PDF ({text})") from None
    if forms:
        doc.init_forms()  # as PaddleX's PDF reader: form fields render like a viewer shows them
    return doc


def pdf_page_count(data: bytes, password: str | None = None) -> int | None:
    """Pages in a PDF, or None when it cannot be opened (its actor will say why)."""
    try:
        doc = open_pdf(data, password, forms=False)  # counting needs no form fields
    except DocumentError:
        return None
    try:
        return len(doc)
    finally:
        doc.close()


def iter_pdf_pages(
    data: bytes,
    pages: tuple[int, ...] | None = None,
    password: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS,
    warnings: list[str] | None = None,
) -> Iterator[tuple[int, int, object]]:
    """Yield (page_index, page_count, BGR array), rendering one page at a time. Pages
    PaddleX renders below its scale to stay under `max_pixels` are named in one line
    added to `warnings` once the last page is out (their OCR differs from a full-scale one)."""
    doc = open_pdf(data, password)
    smaller = []  # pages rendered below PaddleX's scale
    try:
        count = len(doc)
        wanted = range(count) if pages is None else [p for p in pages if 0 <= p < count]
        for index in wanted:
            image, reduced = _render_page(doc, index, max_pixels)
            if reduced:
                smaller.append(index)
            yield index, count, image
    finally:
        doc.close()
    if smaller and warnings is not None:
        from paddlex.utils.flags import PDF_RENDER_SCALE

        named = ", ".join(map(str, smaller[:5])) + (", ..." if len(smaller) > 5 else "")
        warnings.append(f"{len(smaller)} page(s) ({named}) rendered below PaddleX's scale {PDF_RENDER_SCALE:g} to "
                        f"stay under --max_image_pixels {max_pixels:,}")


def _render_page(doc, index: int, max_pixels: int | None) -> tuple[object, bool]:
    """(the page as PaddleX renders it, whether below its scale to fit `max_pixels`)."""
    from paddlex.inference.utils.pdf_rendering import (
        get_pdf_render_scale_within_pixel_limit,
        render_pdf_page_to_numpy,
    )
    from paddlex.utils.flags import PDF_MIN_RENDER_SCALE, PDF_RENDER_SCALE

    page = doc[index]
    scales = dict(requested_scale=PDF_RENDER_SCALE, min_scale=PDF_MIN_RENDER_SCALE)
    try:
        reduced = max_pixels is not None and get_pdf_render_scale_within_pixel_limit(
            page.get_size(), page_index=index + 1, max_pixels=max_pixels, **scales) < PDF_RENDER_SCALE
        image = render_pdf_page_to_numpy(page, page_index=index + 1, max_pixels=max_pixels, **scales)
    except Exception as exc:
        raise DocumentError("render", f"page {index}: {exc}") from None
    finally:
        page.close()
    return image, reduced
