"""A model PaddleX cannot find offline: one line naming it, not PaddleX's download
traceback. Needs PaddleX (its model registry is patched, as with no network)."""

import pytest

from ray_ocr.models import model_cache

pytestmark = pytest.mark.e2e


def test_missing_model_error_names_the_model(tmp_path, monkeypatch):
    """A pipeline whose model is absent offline fails with one line naming it."""
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path / "empty_cache"))
    from paddlex.inference.utils.official_models import official_models

    monkeypatch.setattr(official_models, "_save_dir", tmp_path / "empty_cache" / "official_models")
    monkeypatch.setattr(official_models, "_get_hosters", lambda: [])  # as with no network
    from ray_ocr.errors import ModelUnavailableError

    with pytest.raises(ModelUnavailableError) as err:
        with model_cache.naming_missing_models("OCR"):
            official_models.get_model_path("PP-OCRv5_server_det")
    message = str(err.value)
    assert "PP-OCRv5_server_det" in message and "_model_dir" in message and "\n" not in message
    assert "get_model_path" not in vars(official_models)  # the wrapper is removed afterwards
