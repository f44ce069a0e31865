"""The bundled models: found, seeded into the PaddleX cache, shipped to other nodes
(no PaddleX import; its missing-model error is in tests/e2e/test_missing_models.py)."""

import os

from ray_ocr.models import model_cache


def test_bundled_models_are_found():
    dirs = model_cache.bundled_model_dirs()
    assert {"PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec"} <= set(dirs)


def test_seeding_copies_once_and_completely(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path / "cache"))
    seeded = model_cache.seed_bundled_models()
    assert set(seeded) >= {"PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec"}
    target = tmp_path / "cache" / "official_models" / "PP-OCRv5_mobile_det"
    assert set(os.listdir(target)) >= set(model_cache.MODEL_FILES)
    assert model_cache.seed_bundled_models() == []  # second time: nothing to do
    leftovers = [n for n in os.listdir(target.parent) if n.startswith(".")]
    assert leftovers == []


def test_bundle_ships_named_models_and_model_dirs(tmp_path, monkeypatch):
    from ray_ocr.models.model_bundle import collect_bundle, install_bundle

    driver_cache = tmp_path / "driver"
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(driver_cache))
    model_cache.seed_bundled_models()
    own_model = tmp_path / "my_rec_model"
    (own_model / "sub").mkdir(parents=True)
    (own_model / "inference.yml").write_text("x: 1")
    (own_model / "sub" / "weights.bin").write_bytes(b"\0\1")
    bundle = collect_bundle(
        {"text_detection_model_name": "PP-OCRv5_mobile_det", "text_recognition_model_dir": str(own_model),
         "text_recognition_model_name": "NotCachedHere"},
        paddlex_config={"SubModules": {"X": {"model_name": "PP-OCRv5_mobile_rec"}}},
    )
    assert set(bundle.official) == {"PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec"}
    assert set(bundle.dirs) == {"text_recognition_model_dir"}

    worker_cache = tmp_path / "worker"
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(worker_cache))
    local = install_bundle(bundle)
    assert (worker_cache / "official_models" / "PP-OCRv5_mobile_det" / "inference.pdiparams").is_file()
    shipped = local["text_recognition_model_dir"]
    assert shipped.startswith(str(worker_cache)) and shipped != str(own_model)
    assert (tmp_path / "worker").joinpath(shipped, "sub", "weights.bin").read_bytes() == b"\0\1"
    assert install_bundle(bundle) == local  # idempotent


# Which models a pipeline lacks: a walk of its PaddleX config (no PaddleX import).

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
    assert model_cache.missing_models(config) == ["DocOri", "Unwarp", "LineOri", "SealDet", "Rec"]


def test_walk_honours_use_flags_false(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path))
    assert model_cache.missing_models(_ocr(use_doc_preprocessor=False, use_textline_orientation=False)) == [
        "Det", "Rec"]
    inner = _ocr()
    inner["SubPipelines"]["DocPreprocessor"]["use_doc_unwarping"] = False
    assert model_cache.missing_models(inner) == ["DocOri", "LineOri", "Det", "Rec"]


def test_walk_skips_model_dirs_and_cached_models(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path))
    (tmp_path / "official_models" / "Rec").mkdir(parents=True)
    (tmp_path / "official_models" / "LineOri_onnx").mkdir()  # another package of it: PaddleX finds it
    config = _ocr()
    config["SubModules"]["TextDetection"]["model_dir"] = str(tmp_path / "my_det")
    assert model_cache.missing_models(config) == ["DocOri", "Unwarp"]
    assert model_cache.needed_models(config) == ["DocOri", "Unwarp", "LineOri", "Rec"]


def test_walk_follows_paddlex_own_pp_structurev3_rules(tmp_path, monkeypatch):
    """PaddleX's PP-StructureV3.yaml as it is, then as PaddleOCR's PPStructureV3(
    use_doc_orientation_classify=False, use_doc_unwarping=False,
    use_textline_orientation=False, use_table_recognition=False) overrides it."""
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path))
    (tmp_path / "official_models" / "PP-OCRv5_server_det").mkdir(parents=True)
    config = _paddlex_yaml("PP-StructureV3")
    names = model_cache.missing_models(config)
    # use_doc_preprocessor: False alone does not stop PaddleX building it (the other two flags default on);
    # ChartRecognition is off by default; the table's own OCR is off (use_ocr_model: False).
    assert names[:3] == ["PP-LCNet_x1_0_doc_ori", "UVDoc", "PP-DocBlockLayout"]
    assert "PP-Chart2Table" not in names and "PP-OCRv4_server_seal_det" not in names
    assert "PP-OCRv5_server_det" not in names and "PP-FormulaNet_plus-L" in names
    config["SubPipelines"]["DocPreprocessor"].update(use_doc_orientation_classify=False, use_doc_unwarping=False)
    config["SubPipelines"]["GeneralOCR"]["use_textline_orientation"] = False
    config.update(use_table_recognition=False)
    assert model_cache.missing_models(config) == [
        "PP-DocBlockLayout", "PP-DocLayout_plus-L", "PP-OCRv5_server_rec", "PP-FormulaNet_plus-L"]


def test_walk_leaves_out_what_pp_structurev3_builds_only_when_predicting(tmp_path, monkeypatch):
    """With its document preprocessing and text line orientation off and tables on:
    the table's orientation model (loaded at the first table) and the table's own OCR
    (use_ocr_model False) are not needed to build; seals (on when the flag is absent) are."""
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path))
    config = _paddlex_yaml("PP-StructureV3")
    config["SubPipelines"]["DocPreprocessor"].update(use_doc_orientation_classify=False, use_doc_unwarping=False)
    config["SubPipelines"]["GeneralOCR"]["use_textline_orientation"] = False
    names = model_cache.missing_models(config)
    assert "SLANeXt_wired" in names
    assert "PP-LCNet_x1_0_doc_ori" not in names and "PP-LCNet_x1_0_textline_ori" not in names
    assert "PP-OCRv4_server_seal_det" not in names  # use_seal_recognition: False in the YAML
    del config["use_seal_recognition"]
    assert "PP-OCRv4_server_seal_det" in model_cache.missing_models(config)


def test_failed_model_alone_when_the_walk_cannot_be_trusted(tmp_path, monkeypatch):
    cache = tmp_path / "official_models"
    monkeypatch.setattr(model_cache, "_config_being_built", lambda: _ocr())
    assert model_cache._also_missing("DocOri", cache) == ["Unwarp", "LineOri", "Det", "Rec"]
    assert model_cache._also_missing("Elsewhere", cache) == []  # the walk did not foresee it
    assert model_cache._also_missing("Unwarp", cache) == []  # PaddleX would have failed on DocOri first
    monkeypatch.setattr(model_cache, "_config_being_built", lambda: {**_ocr(), "pipeline_name": "PP-ChatOCRv4-doc"})
    assert model_cache._also_missing("DocOri", cache) == []  # rules unknown
    broken = _ocr()
    del broken["SubModules"]["TextDetection"]
    monkeypatch.setattr(model_cache, "_config_being_built", lambda: broken)
    assert model_cache._also_missing("DocOri", cache) == []
    monkeypatch.setattr(model_cache, "_config_being_built", lambda: None)  # not building a PaddleX pipeline
    assert model_cache._also_missing("DocOri", cache) == []


def test_message_names_the_failed_model_and_the_others():
    one = model_cache.missing_model_message("OCR", "A")
    assert one.startswith("OCR: model A is not in ") and "Provide it:" in one and "also needs" not in one
    many = model_cache.missing_model_message("OCR", "A", ["B", "C"])
    assert many.startswith("OCR: model A is not in ") and "could not be downloaded" in many
    assert "; this configuration also needs B, C, not there either. Provide them:" in many and "_model_dir" in many
