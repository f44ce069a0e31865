"""ray_ocr's static pipeline table against the installed PaddleOCR (imports paddleocr)."""

import pytest

from ray_ocr.pipelines import PADDLEOCR_PIPELINES, valid_names

pytestmark = pytest.mark.e2e


def test_registry_matches_what_paddleocr_exports():
    """The static table (kept so the CLI needs no paddle import) is PaddleOCR's truth."""
    import paddleocr  # a dependency of ray_ocr: missing, this fails rather than skips
    for cls_name, subcommand in PADDLEOCR_PIPELINES.items():
        cls = getattr(paddleocr, cls_name)
        assert cls.get_cli_subcommand_executor().subparser_name == subcommand
    assert set(valid_names()) >= set(PADDLEOCR_PIPELINES)
