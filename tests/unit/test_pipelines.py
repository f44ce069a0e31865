import pytest

from ray_ocr.errors import UsageError
from ray_ocr.pipelines import PADDLEOCR_PIPELINES, resolve_pipeline, valid_names


@pytest.mark.parametrize(
    "name, cls",
    [
        ("OCR", "PaddleOCR"),
        ("PaddleOCR", "PaddleOCR"),
        ("ocr", "PaddleOCR"),
        ("SealRecognition", "SealRecognition"),
        ("seal_recognition", "SealRecognition"),
        ("pp_structurev3", "PPStructureV3"),
        ("PP-StructureV3", "PPStructureV3"),
        ("table_recognition_v2", "TableRecognitionPipelineV2"),
        ("doc_parser", "PaddleOCRVL"),
        ("formula_recognition_pipeline", "FormulaRecognitionPipeline"),
        ("sealrecognition", "SealRecognition"),
    ],
)
def test_names_resolve_to_paddleocr_classes(name, cls):
    ref = resolve_pipeline(name)
    assert ref.module == "paddleocr" and ref.class_name == cls


def test_unknown_name_lists_valid_ones():
    with pytest.raises(UsageError) as err:
        resolve_pipeline("NoSuchPipeline")
    message = str(err.value)
    assert "NoSuchPipeline" in message and "SealRecognition" in message and "ocr" in message
    assert "\n" not in message


def test_import_path_names_a_custom_class():
    ref = resolve_pipeline("ray_ocr.testing.standin:SchedulingTestPipeline")
    assert ref.load().__name__ == "SchedulingTestPipeline"


def test_registry_matches_what_paddleocr_exports():
    """The static table (kept so the CLI needs no paddle import) is PaddleOCR's truth."""
    paddleocr = pytest.importorskip("paddleocr")
    for cls_name, subcommand in PADDLEOCR_PIPELINES.items():
        cls = getattr(paddleocr, cls_name)
        assert cls.get_cli_subcommand_executor().subparser_name == subcommand
    assert set(valid_names()) >= set(PADDLEOCR_PIPELINES)
