"""Names of the pipelines ray_ocr can run, resolved without importing paddleocr.

Users name a pipeline by the class `paddleocr` exports (``SealRecognition``), by the
``paddleocr`` CLI subcommand (``seal_recognition``), or, for their own pipelines and
for ray_ocr's scheduling stand-in, by an import path ``package.module:Class``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ray_ocr.errors import UsageError

# paddleocr 3.x: exported class name -> its CLI subcommand (paddleocr/_pipelines/*.py).
PADDLEOCR_PIPELINES: dict[str, str] = {
    "PaddleOCR": "ocr",
    "SealRecognition": "seal_recognition",
    "PPStructureV3": "pp_structurev3",
    "DocPreprocessor": "doc_preprocessor",
    "DocUnderstanding": "doc_understanding",
    "TableRecognitionPipelineV2": "table_recognition_v2",
    "FormulaRecognitionPipeline": "formula_recognition_pipeline",
    "PaddleOCRVL": "doc_parser",
    "PPChatOCRv4Doc": "pp_chatocrv4_doc",
    "PPDocTranslation": "pp_doctranslation",
}

# Other spellings people use (PaddleX pipeline names, the seed script's "OCR").
_ALIASES: dict[str, str] = {
    "OCR": "PaddleOCR",
    "PP-StructureV3": "PPStructureV3",
    "PaddleOCR-VL": "PaddleOCRVL",
    "formula_recognition": "FormulaRecognitionPipeline",
    "FormulaRecognition": "FormulaRecognitionPipeline",
    "TableRecognitionV2": "TableRecognitionPipelineV2",
}


@dataclass(frozen=True)
class PipelineRef:
    """A resolved pipeline: a class in `module`, named `class_name`."""

    module: str
    class_name: str

    @property
    def display_name(self) -> str:
        if self.module == "paddleocr":
            return "OCR" if self.class_name == "PaddleOCR" else self.class_name
        return self.class_name

    @property
    def is_paddleocr(self) -> bool:
        return self.module == "paddleocr"

    def load(self):
        """Import and return the pipeline class (imports paddleocr for built-ins)."""
        import importlib

        return getattr(importlib.import_module(self.module), self.class_name)


def valid_names() -> list[str]:
    names = set(PADDLEOCR_PIPELINES) | set(PADDLEOCR_PIPELINES.values()) | set(_ALIASES)
    return sorted(names, key=str.lower)


def resolve_pipeline(name: str) -> PipelineRef:
    """Map a user-given pipeline name to the class to build; UsageError if unknown."""
    name = name.strip()
    if ":" in name:
        module, _, cls = name.partition(":")
        if not module or not cls.isidentifier():
            raise UsageError(f"--pipeline {name!r}: expected package.module:ClassName")
        return PipelineRef(module, cls)
    if name in PADDLEOCR_PIPELINES:
        return PipelineRef("paddleocr", name)
    if name in _ALIASES:
        return PipelineRef("paddleocr", _ALIASES[name])
    by_subcommand = {sub: cls for cls, sub in PADDLEOCR_PIPELINES.items()}
    if name in by_subcommand:
        return PipelineRef("paddleocr", by_subcommand[name])
    lowered = {n.lower(): n for n in valid_names()}
    if name.lower() in lowered:
        return resolve_pipeline(lowered[name.lower()])
    raise UsageError(
        f"unknown pipeline {name!r}; valid: {', '.join(valid_names())} "
        "(or package.module:Class for your own, in batch runs)"
    )
