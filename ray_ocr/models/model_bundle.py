"""Shipping the driver's models to actors on nodes that cannot download them.

Worker nodes of an air-gapped cluster have no network and no shared disk. The driver
packs the models a run may load (``--param *_model_dir=DIR`` folders, and the official
models in the driver's PaddleX cache that the pipeline's configuration needs, whether
named by ``*_model_name`` params, a ``--pipeline_config`` or PaddleX's defaults) into one
object; each actor unpacks it into its node's cache before building its pipeline. Plain
data, no Ray here.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ray_ocr.models.model_cache import official_models_dir, paddlex_cache_dir, publish_dir

logger = logging.getLogger(__name__)


@dataclass
class ModelBundle:
    official: dict[str, dict[str, bytes]] = field(default_factory=dict)  # model name -> files
    dirs: dict[str, dict[str, bytes]] = field(default_factory=dict)  # param name -> files

    @property
    def size(self) -> int:
        return sum(len(b) for files in (*self.official.values(), *self.dirs.values()) for b in files.values())

    def __bool__(self) -> bool:
        return bool(self.official or self.dirs)

    def digest(self) -> str:
        """Names the bundle by its content: the same models give the same name."""
        hashed = hashlib.sha256()
        for kind, entries in (("official", self.official), ("dirs", self.dirs)):
            for name in sorted(entries):
                hashed.update(f"{kind}\0{name}\0".encode())
                hashed.update(_files_digest(entries[name]).encode())
        return hashed.hexdigest()[:16]


def _read_dir(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def collect_bundle(spec) -> ModelBundle:
    """Read from the driver's disk the models a run of `spec` (a RunnerSpec) may load:
    its ``*_model_dir`` folders, and the official models in the driver's cache that its
    pipeline's configuration needs (models_to_ship), named or PaddleX's defaults."""
    from ray_ocr.models.pipeline_config import models_to_ship
    from ray_ocr.models.runner import build_config

    params = dict(spec.init_params)
    bundle = ModelBundle()
    for key, value in params.items():
        if key.endswith("_model_dir") and isinstance(value, str) and os.path.isdir(os.path.expanduser(value)):
            bundle.dirs[key] = _read_dir(Path(os.path.expanduser(value)))
    names = {v for k, v in params.items() if k.endswith("_model_name") and isinstance(v, str)}
    names.update(models_to_ship(build_config(spec) or {}))
    for name in sorted(names):
        folder = official_models_dir() / name
        if folder.is_dir():
            bundle.official[name] = _read_dir(folder)
    if bundle:
        logger.info("shipping %d model(s) to the actors (%.1f MB)",
                    len(bundle.official) + len(bundle.dirs), bundle.size / 2**20)
    return bundle


def _writer(files: dict[str, bytes]):
    def fill(folder: Path) -> None:
        for rel, data in files.items():
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    return fill


def install_bundle(bundle: ModelBundle) -> dict[str, str]:
    """Unpack into this node's PaddleX cache; return ``*_model_dir`` params pointing at
    the local copies. Folders already present are left alone (same name, same model)."""
    for name, files in bundle.official.items():
        if publish_dir(official_models_dir() / name, _writer(files)):
            logger.info("installed shipped model %s", name)
    rewritten = {}
    for key, files in bundle.dirs.items():
        target = paddlex_cache_dir() / "ray_ocr_model_dirs" / _files_digest(files)
        publish_dir(target, _writer(files))
        rewritten[key] = str(target)
    return rewritten


def _files_digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(rel.encode() + b"\0" + files[rel])
    return digest.hexdigest()[:16]


def with_installed_models(spec, bundle: ModelBundle):
    """`spec` (a RunnerSpec) for this node: the bundle unpacked into its cache, and the
    ``*_model_dir`` params pointing at the local copies."""
    local_dirs = install_bundle(bundle)
    return replace(spec, init_params=tuple({**dict(spec.init_params), **local_dirs}.items()))
