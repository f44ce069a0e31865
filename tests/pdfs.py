"""Long PDFs for tests and benchmarks, made from the real ones in ../shared/realdocs."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REALDOCS

# 14 pages: 4 born-digital A4 (pdfTeX), 6 scanned 6x9 in (a different rendered width),
# 4 born-digital A4 (Quartz).
MERGED_SOURCES = ("pdfs/pdflatex-outline.pdf", "pdfs/Seige_of_Vicksburg_Sample_OCR.pdf", "paddleocr/sample_pdf.pdf")
SCANNED_PAGES = range(4, 10)
SCANNED_WIDTH = 864  # pixels, as PaddleX renders those pages


def merge_pdfs(dest: Path, sources=MERGED_SOURCES, repeat: int = 1) -> int:
    """Write the pages of `sources` (relative to realdocs), `repeat` times, as one PDF;
    return its page count."""
    import pypdfium2 as pdfium

    out = pdfium.PdfDocument.new()
    for _ in range(repeat):
        for source in sources:
            src = pdfium.PdfDocument(str(REALDOCS / source))
            out.import_pages(src)
            src.close()
    dest.parent.mkdir(parents=True, exist_ok=True)
    out.save(str(dest))
    count = len(out)
    out.close()
    return count
