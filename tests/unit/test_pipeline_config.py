"""Which models a run ships to worker nodes (ray_ocr/models/pipeline_config.py): the walk
of PaddleX's own pipeline YAMLs, read as plain YAML (no PaddleX import). The walk's
build order and the missing-models line: tests/unit/test_missing_models.py; shipping on
real nodes: tests/ray/test_multinode.py."""

import importlib.util
from pathlib import Path

import yaml

from ray_ocr.models.pipeline_config import models_to_ship, needed_modules


def _paddlex_yaml(name: str) -> dict:
    root = Path(importlib.util.find_spec("paddlex").submodule_search_locations[0])
    return yaml.safe_load((root / "configs" / "pipelines" / f"{name}.yaml").read_text())


def _structure(**flags) -> dict:
    """PaddleX's PP-StructureV3 config, its table's later-built models renamed so that
    they are told apart from the same models elsewhere in the config."""
    config = {**_paddlex_yaml("PP-StructureV3"), **flags}
    table = config["SubPipelines"]["TableRecognition"]
    table["SubModules"]["TableOrientationClassify"]["model_name"] = "TableOri"
    table["SubPipelines"]["GeneralOCR"]["SubModules"]["TextDetection"]["model_name"] = "TableDet"
    return config


def test_ships_what_a_prediction_creates_later_but_the_build_does_not_fetch():
    """The table's orientation model and its own OCR (use_ocr_model off) are created at
    the first table that needs them: not fetched by the build, but shipped."""
    config = _structure()
    built = [name for name, _ in needed_modules(config)]
    shipped = models_to_ship(config)
    assert "TableOri" not in built and "TableDet" not in built
    assert {"TableOri", "TableDet"} <= set(shipped)
    assert set(built) <= set(shipped) and len(shipped) == len(set(shipped))


def test_ships_nothing_of_what_the_flags_turn_off():
    """Chart recognition is off in PaddleX's defaults; formula and table recognition
    turned off take their models (and the table's later ones) out."""
    default = models_to_ship(_structure())
    assert "PP-Chart2Table" not in default
    assert {"PP-FormulaNet_plus-L", "SLANeXt_wired", "PP-DocLayout_plus-L", "PP-OCRv5_server_det"} <= set(default)
    fewer = models_to_ship(_structure(use_formula_recognition=False, use_table_recognition=False))
    assert set(default) - set(fewer) == {"PP-FormulaNet_plus-L", "PP-LCNet_x1_0_table_cls", "SLANeXt_wired",
                                         "SLANet_plus", "RT-DETR-L_wired_table_cell_det",
                                         "RT-DETR-L_wireless_table_cell_det", "TableOri", "TableDet"}


def test_a_model_given_by_folder_is_not_shipped_by_name():
    config = _structure()
    config["SubModules"]["LayoutDetection"]["model_dir"] = "/models/my_layout"
    assert "PP-DocLayout_plus-L" not in models_to_ship(config)


def test_a_pipeline_of_unknown_rules_ships_every_model_its_config_names():
    config = _paddlex_yaml("PP-ChatOCRv4-doc")
    shipped = models_to_ship(config)
    assert {"RT-DETR-H_layout_3cls", "PP-OCRv4_server_det", "PP-OCRv4_server_rec_doc", "SLANet_plus",
            "PP-DocBee"} <= set(shipped)  # (and its LLMs' names, never in a model cache: harmless)
    assert len(shipped) == len(set(shipped))
    assert models_to_ship({}) == []
