"""Markdown of document pipelines (``--save markdown``): a file per page, and one per
document, joined the way PaddleOCR joins a PDF's pages.

Per page, the result's own ``save_to_markdown`` writes the text and the images it
links (``imgs/img_in_image_box_...jpg``). Those names repeat from page to page and
document to document (they are made of box coordinates), so each image is renamed
after its content (``imgs/img_in_image_box_..._<sha256:8>.jpg``) and the links in the
text follow: images of one output folder never overwrite each other, and the same
image keeps the same name on a rerun.

Per document, the pages' texts are joined by the pipeline's own
``concatenate_markdown_pages`` (PaddleX's implementation for PP-StructureV3,
PaddleOCR-VL and PP-DocTranslation: it reads only the pages it is given, so it runs
on the driver, once every page is back, from whichever actors ran them).
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from typing import Any

# paddleocr class -> PaddleX's pipeline class that implements the join.
_JOINS = {
    "PPStructureV3": ("paddlex.inference.pipelines.layout_parsing.pipeline_v2", "_LayoutParsingPipelineV2"),
    "PaddleOCRVL": ("paddlex.inference.pipelines.paddleocr_vl.pipeline", "_PaddleOCRVLPipeline"),
    "PPDocTranslation": ("paddlex.inference.pipelines.pp_doctranslation.pipeline", "PP_DocTranslation_Pipeline"),
}


def name_images_by_content(folder: Path) -> dict[str, str]:
    """Rename every non-markdown file under `folder` after its content and rewrite the
    markdown files' links; return {old relative path: new}."""
    renamed = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() != ".md":
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
            target = path.with_name(f"{path.stem}_{digest}{path.suffix}")
            path.rename(target)
            renamed[path.relative_to(folder).as_posix()] = target.relative_to(folder).as_posix()
    for md in folder.rglob("*.md"):
        text = md.read_text(encoding="utf-8")
        # Longest first: no path is a prefix of a longer one it would then mangle.
        for old in sorted(renamed, key=len, reverse=True):
            text = text.replace(old, renamed[old])
        md.write_text(text, encoding="utf-8")
    return renamed


def page_piece(result, text: str) -> dict[str, Any]:
    """What the document join needs of one page: its text (links renamed) and
    PaddleX's paragraph continuation flags (does the page start / end a paragraph)."""
    flags = None
    markdown = getattr(result, "markdown", None)
    if isinstance(markdown, dict):
        flags = markdown.get("page_continuation_flags")
    return {"markdown_texts": text, "page_continuation_flags": list(flags) if flags is not None else [True, True]}


def join_pages(pipeline_class: str, pieces: list[dict[str, Any]]) -> str:
    """One document's markdown from its pages' pieces, in page order."""
    where = _JOINS.get(pipeline_class)
    if where is None:  # a pipeline of the user's own: pages as paragraphs
        return "".join("\n\n" + piece["markdown_texts"] for piece in pieces)
    cls = getattr(importlib.import_module(where[0]), where[1])
    joined = cls.concatenate_markdown_pages(None, pieces)  # reads only its argument
    return joined["markdown_texts"] if isinstance(joined, dict) else str(joined)
