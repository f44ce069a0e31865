"""Naming every model a pipeline lacks (ray_ocr/models/missing.py): the walk of a
PaddleX pipeline config, by hand-made configs and PaddleX's own YAMLs read as plain
YAML (no PaddleX import); the message. The real build: tests/e2e/test_missing_models.py."""

from ray_ocr.models import missing
from ray_ocr.models.pipeline_config import needed_modules


def _names(modules) -> list[str]:
    """The model names of (name, place(s)) pairs, once each, in order."""
    return list(dict.fromkeys(name for name, _ in modules))


def _ocr(det="Det", rec="Rec", **flags):
    return {"pipeline_name": "OCR", **flags,
            "SubPipelines": {"DocPreprocessor": {
                "pipeline_name": "doc_preprocessor",
                "SubModules": {"DocOrientationClassify": {"model_name": "DocOri", "model_dir": None},
                               "DocUnwarping": {"model_name": "Unwarp", "model_dir": None}}}},
            "SubModules": {"TextLineOrientation": {"model_name": "LineOri", "model_dir": None},
                           "TextDetection": {"model_name": det, "model_dir": None},
                           "TextRecognition": {"model_name": rec}}}


def _paddlex_yaml(name):
    import importlib.util
    from pathlib import Path

    import yaml

    root = Path(importlib.util.find_spec("paddlex").submodule_search_locations[0])
    return yaml.safe_load((root / "configs" / "pipelines" / f"{name}.yaml").read_text())


def test_walk_names_every_unset_model_through_sub_pipelines(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path))
    config = {"pipeline_name": "seal_recognition", "use_layout_detection": False,
              "SubPipelines": {"DocPreprocessor": _ocr()["SubPipelines"]["DocPreprocessor"],
                               "SealOCR": _ocr(det="SealDet", rec="Rec", use_doc_preprocessor=False)}}
    assert _names(missing.missing_modules(config)) == ["DocOri", "Unwarp", "LineOri", "SealDet", "Rec"]


def test_walk_honours_use_flags_false(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path))
    assert _names(missing.missing_modules(_ocr(use_doc_preprocessor=False, use_textline_orientation=False))) == [
        "Det", "Rec"]
    inner = _ocr()
    inner["SubPipelines"]["DocPreprocessor"]["use_doc_unwarping"] = False
    assert _names(missing.missing_modules(inner)) == ["DocOri", "LineOri", "Det", "Rec"]


def test_walk_skips_model_dirs_and_cached_models(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path))
    (tmp_path / "official_models" / "Rec").mkdir(parents=True)
    (tmp_path / "official_models" / "LineOri_onnx").mkdir()  # another package of it: PaddleX finds it
    config = _ocr()
    config["SubModules"]["TextDetection"]["model_dir"] = str(tmp_path / "my_det")
    assert _names(missing.missing_modules(config)) == ["DocOri", "Unwarp"]
    assert _names(needed_modules(config)) == ["DocOri", "Unwarp", "LineOri", "Rec"]


def test_walk_follows_paddlex_own_pp_structurev3_rules(tmp_path, monkeypatch):
    """PaddleX's PP-StructureV3.yaml as it is, then as PaddleOCR's PPStructureV3(
    use_doc_orientation_classify=False, use_doc_unwarping=False,
    use_textline_orientation=False, use_table_recognition=False) overrides it."""
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path))
    (tmp_path / "official_models" / "PP-OCRv5_server_det").mkdir(parents=True)
    config = _paddlex_yaml("PP-StructureV3")
    names = _names(missing.missing_modules(config))
    # use_doc_preprocessor: False alone does not stop PaddleX building it (the other two flags default on);
    # ChartRecognition is off by default; the table's own OCR is off (use_ocr_model: False).
    assert names[:3] == ["PP-LCNet_x1_0_doc_ori", "UVDoc", "PP-DocBlockLayout"]
    assert "PP-Chart2Table" not in names and "PP-OCRv4_server_seal_det" not in names
    assert "PP-OCRv5_server_det" not in names and "PP-FormulaNet_plus-L" in names
    config["SubPipelines"]["DocPreprocessor"].update(use_doc_orientation_classify=False, use_doc_unwarping=False)
    config["SubPipelines"]["GeneralOCR"]["use_textline_orientation"] = False
    config.update(use_table_recognition=False)
    assert _names(missing.missing_modules(config)) == [
        "PP-DocBlockLayout", "PP-DocLayout_plus-L", "PP-OCRv5_server_rec", "PP-FormulaNet_plus-L"]


def test_walk_leaves_out_what_pp_structurev3_builds_only_when_predicting(tmp_path, monkeypatch):
    """With its document preprocessing and text line orientation off and tables on:
    the table's orientation model (loaded at the first table) and the table's own OCR
    (use_ocr_model False) are not needed to build; seals (on when the flag is absent) are."""
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path))
    config = _paddlex_yaml("PP-StructureV3")
    config["SubPipelines"]["DocPreprocessor"].update(use_doc_orientation_classify=False, use_doc_unwarping=False)
    config["SubPipelines"]["GeneralOCR"]["use_textline_orientation"] = False
    names = _names(missing.missing_modules(config))
    assert "SLANeXt_wired" in names
    assert "PP-LCNet_x1_0_doc_ori" not in names and "PP-LCNet_x1_0_textline_ori" not in names
    assert "PP-OCRv4_server_seal_det" not in names  # use_seal_recognition: False in the YAML
    del config["use_seal_recognition"]
    assert "PP-OCRv4_server_seal_det" in _names(missing.missing_modules(config))


def test_failed_model_alone_when_the_walk_cannot_be_trusted(tmp_path, monkeypatch):
    cache = tmp_path / "official_models"
    alone = [("DocOri", [])]
    monkeypatch.setattr(missing, "_config_being_built", lambda: _ocr())
    assert missing._missing_in_build("DocOri", cache) == [
        ("DocOri", [("SubPipelines", "DocPreprocessor", "SubModules", "DocOrientationClassify")]),
        ("Unwarp", [("SubPipelines", "DocPreprocessor", "SubModules", "DocUnwarping")]),
        ("LineOri", [("SubModules", "TextLineOrientation")]), ("Det", [("SubModules", "TextDetection")]),
        ("Rec", [("SubModules", "TextRecognition")])]
    assert missing._missing_in_build("Elsewhere", cache) == [("Elsewhere", [])]  # the walk did not foresee it
    assert missing._missing_in_build("Unwarp", cache) == [("Unwarp", [])]  # PaddleX would have failed on DocOri
    monkeypatch.setattr(missing, "_config_being_built", lambda: {**_ocr(), "pipeline_name": "PP-ChatOCRv4-doc"})
    assert missing._missing_in_build("DocOri", cache) == alone  # rules unknown
    broken = _ocr()
    del broken["SubModules"]["TextDetection"]
    monkeypatch.setattr(missing, "_config_being_built", lambda: broken)
    assert missing._missing_in_build("DocOri", cache) == alone
    monkeypatch.setattr(missing, "_config_being_built", lambda: None)  # not building: a model at its first use
    assert missing._missing_in_build("DocOri", cache) == alone


def test_a_model_two_modules_share_is_listed_once_with_both_places(tmp_path, monkeypatch):
    """PP-StructureV3 with seals on: its OCR and its seal OCR recognise with the same
    model; providing it through one parameter would leave the other module without it."""
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path))
    config = _paddlex_yaml("PP-StructureV3")
    config["use_seal_recognition"] = True
    places = dict(missing.missing_modules(config))
    assert places["PP-OCRv5_server_rec"] == [
        ("SubPipelines", "GeneralOCR", "SubModules", "TextRecognition"),
        ("SubPipelines", "SealRecognition", "SubPipelines", "SealOCR", "SubModules", "TextRecognition")]
    assert _names(missing.missing_modules(config)).count("PP-OCRv5_server_rec") == 1


def test_param_for_follows_the_constructor_param_tree():
    tree = {"SubModules": {"TextDetection": {"model_dir": "text_detection_model_dir", "model_name": "x"}},
            "SubPipelines": {"DocPreprocessor": {"SubModules": {"DocUnwarping": {"model_dir": "doc_unwarping_model_dir"}}}}}
    assert missing._param_for(tree, ("SubModules", "TextDetection")) == "text_detection_model_dir"
    assert missing._param_for(tree, ("SubPipelines", "DocPreprocessor", "SubModules", "DocUnwarping")) == \
        "doc_unwarping_model_dir"
    assert missing._param_for(tree, ("SubModules", "TextRecognition")) is None  # no parameter sets it
    assert missing._param_for(tree, ()) is None  # place unknown


def test_constructor_param_tree_is_the_class_mapping_with_parameter_names():
    class Pipeline:
        def _get_paddlex_config_overrides(self):
            return {"SubModules": {"TextDetection": {"model_dir": self._params["text_detection_model_dir"]}}}

    class Computing:
        def _get_paddlex_config_overrides(self):
            return {"x": self._params["a"] + 1}

    class OtherAttribute:
        def _get_paddlex_config_overrides(self):
            return {"x": self.version}

    assert missing.constructor_param_tree(Pipeline) == {
        "SubModules": {"TextDetection": {"model_dir": "text_detection_model_dir"}}}
    assert missing.constructor_param_tree(Computing) == {}
    assert missing.constructor_param_tree(OtherAttribute) == {}
    assert missing.constructor_param_tree(object) == {}


def test_message_names_the_failed_model_and_the_others():
    one = missing.missing_model_message("OCR", "A")
    assert one.startswith("OCR: model A is not in ") and "Provide it:" in one and "also needs" not in one
    many = missing.missing_model_message("OCR", "A", ["B", "C"], {"A": ["a_model_dir"], "B": [None],
                                                               "C": ["c_model_dir", "seal_c_model_dir"]})
    assert many.startswith("OCR: model A (--param a_model_dir=DIR) is not in ") and "could not be downloaded" in many
    assert ("; this configuration also needs B, C (--param c_model_dir=DIR and --param seal_c_model_dir=DIR), "
            "not there either. Provide them:") in many
    assert "_model_dir=DIR" in many and "\n" not in many


def test_nested_wrappers_name_once_and_restore_the_enclosing_one():
    """A fake PaddleX model registry (the wrapper only needs its lookup and folder), in
    sys.modules for the test's body only (the tier's guard looks for PaddleX after it;
    in a full run the real PaddleX is put back)."""
    import sys
    import types
    from pathlib import Path

    from ray_ocr.errors import ModelUnavailableError

    class Registry:
        _save_dir = Path("/nowhere/official_models")

        def get_model_path(self, name):
            raise OSError("no model source is available")

    registry = Registry()
    names = ("paddlex", "paddlex.inference", "paddlex.inference.utils", "paddlex.inference.utils.official_models")
    fakes = {name: types.ModuleType(name) for name in names}
    fakes[names[-1]].official_models = registry
    real = {name: sys.modules[name] for name in names if name in sys.modules}  # a full run imported PaddleX
    sys.modules.update(fakes)
    try:
        with missing.naming_missing_models("Outer"):
            outer = vars(registry)["get_model_path"]
            with missing.naming_missing_models("Inner"):
                try:
                    registry.get_model_path("M")
                except ModelUnavailableError as err:
                    message = str(err)
            assert vars(registry)["get_model_path"] is outer  # the enclosing wrapper is back
        assert "get_model_path" not in vars(registry)
    finally:
        for name in names:
            del sys.modules[name]
        sys.modules.update(real)
    assert message.startswith("Outer: model M is not in /nowhere/official_models ")  # named once, by the first
