import pytest

from ray_ocr.errors import UsageError
from ray_ocr.pipelines import resolve_pipeline


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
