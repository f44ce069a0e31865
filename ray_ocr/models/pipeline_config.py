"""Which models a PaddleX pipeline config builds, read without PaddleX.

Two users: the missing-models error (missing.py) names what a build lacks, and the model
bundle (model_bundle.py) ships to worker nodes what a run will load. Both walk the config
the pipeline is built from by PaddleX's own rules for which sub-modules each pipeline
creates (``_BUILDS``); a pipeline whose rules are not known here raises UnknownConfig,
and each user falls back on what it can do without them.
"""

from __future__ import annotations

from typing import Any, Iterator

ConfigPath = tuple[str, ...]  # keys from a pipeline config's root to a module's entry


# What each PaddleX pipeline creates when it is built, read from its __init__
# (paddlex 3.x, e.g. inference/pipelines/ocr/pipeline.py, layout_parsing/pipeline_v2.py):
# the SubModules/SubPipelines entries it builds, in its order, each with the use_* flags
# of which any true builds it (and the default PaddleX assumes for an absent flag); no
# flags: always built. Not a generic "use_<entry>" rule: the flags do not follow the
# entry names (GeneralOCR is use_ocr_model, PP-StructureV3's DocPreprocessor also obeys
# use_doc_orientation_classify/use_doc_unwarping, use_chart_recognition defaults to
# False), and some entries are built only at predict time (TableOrientationClassify).
# A pipeline not listed here makes the walk give up (its rules are unknown).
_BUILDS: dict[str, tuple[tuple[str, dict[str, bool]], ...]] = {
    "OCR": (("DocPreprocessor", {"use_doc_preprocessor": True}),
            ("TextLineOrientation", {"use_textline_orientation": True}),
            ("TextDetection", {}), ("TextRecognition", {})),
    "doc_preprocessor": (("DocOrientationClassify", {"use_doc_orientation_classify": True}),
                         ("DocUnwarping", {"use_doc_unwarping": True})),
    "PP-StructureV3": (("DocPreprocessor", {"use_doc_preprocessor": True, "use_doc_orientation_classify": True,
                                            "use_doc_unwarping": True}),
                       ("RegionDetection", {"use_region_detection": True}),
                       ("LayoutDetection", {}), ("GeneralOCR", {}),
                       ("SealRecognition", {"use_seal_recognition": True}),
                       ("TableRecognition", {"use_table_recognition": True}),
                       ("FormulaRecognition", {"use_formula_recognition": True}),
                       ("ChartRecognition", {"use_chart_recognition": False})),
    "seal_recognition": (("DocPreprocessor", {"use_doc_preprocessor": True}),
                         ("LayoutDetection", {"use_layout_detection": True}), ("SealOCR", {})),
    "table_recognition_v2": (("DocPreprocessor", {"use_doc_preprocessor": True}),
                             ("LayoutDetection", {"use_layout_detection": True}),
                             ("TableClassification", {}), ("WiredTableStructureRecognition", {}),
                             ("WirelessTableStructureRecognition", {}), ("WiredTableCellsDetection", {}),
                             ("WirelessTableCellsDetection", {}), ("GeneralOCR", {"use_ocr_model": True})),
    "formula_recognition": (("DocPreprocessor", {"use_doc_preprocessor": True}),
                            ("LayoutDetection", {"use_layout_detection": True}), ("FormulaRecognition", {})),
    "doc_understanding": (("DocUnderstanding", {}),),
}


# Entries PaddleX creates only when a prediction first asks for them, whatever the
# use_* flags said at build time (paddlex 3.x table_recognition/pipeline_v2.py: the table
# orientation model, and the table's own OCR when use_ocr_model is off): not in a
# build's list of missing models, but shipped, as a file may need them.
_AT_FIRST_USE: dict[str, tuple[str, ...]] = {
    "table_recognition_v2": ("TableOrientationClassify", "GeneralOCR"),
}


class UnknownConfig(Exception):
    """A config the walk cannot follow as PaddleX would."""


def needed_modules(config: dict, path: ConfigPath = (), *,
                   at_first_use: bool = False) -> list[tuple[str, ConfigPath]]:
    """(model name, place in the config) of each official model that building the
    pipeline of `config`, a PaddleX pipeline config, fetches from the model cache, in
    build order; `at_first_use`: also those a prediction may create later (to ship
    them). UnknownConfig when a (sub-)pipeline's rules are not known."""
    name = config.get("pipeline_name")
    if name not in _BUILDS:
        raise UnknownConfig(name)
    later = _AT_FIRST_USE.get(name, ()) if at_first_use else ()
    unlisted = tuple((entry, {}) for entry in later if entry not in dict(_BUILDS[name]))
    found: list[tuple[str, ConfigPath]] = []
    for entry, flags in _BUILDS[name] + unlisted:
        if entry in later and _sub_entry(config, entry)[1] is None:
            continue  # not configured: PaddleX cannot create it later either
        if flags and entry not in later and not any(config.get(flag, default) for flag, default in flags.items()):
            continue  # disabled: PaddleX does not create it
        section, child = _sub_entry(config, entry)
        if not isinstance(child, dict):
            raise UnknownConfig(entry)  # PaddleX would fail on it with a config error
        if "pipeline_name" in child:
            found += needed_modules(child, path + (section, entry), at_first_use=at_first_use)
        elif child.get("model_dir") is None and not child.get("genai_config"):
            # a model_dir is loaded from there; a genai_config model may be served remotely
            if not isinstance(child.get("model_name"), str):
                raise UnknownConfig(entry)
            found.append((child["model_name"], path + (section, entry)))
    return found


def _sub_entry(config: dict, entry: str) -> tuple[str, Any]:
    for section in ("SubPipelines", "SubModules"):
        child = (config.get(section) or {}).get(entry)
        if child is not None:
            return section, child
    return "SubModules", None


def config_model_names(config: Any) -> Iterator[str]:
    """Every ``model_name`` in a pipeline config, whatever its flags say."""
    if isinstance(config, dict):
        for key, value in config.items():
            if key == "model_name" and isinstance(value, str):
                yield value
            else:
                yield from config_model_names(value)
    elif isinstance(config, list):
        for item in config:
            yield from config_model_names(item)


def models_to_ship(config: dict) -> list[str]:
    """The official models a pipeline built from `config` may load, once each: those
    its build fetches and those a prediction may create later; for a pipeline whose
    rules are not known, every model the config names (more bytes, never too few)."""
    try:
        names = [name for name, _ in needed_modules(config, at_first_use=True)]
    except UnknownConfig:
        names = list(config_model_names(config))
    return list(dict.fromkeys(names))
