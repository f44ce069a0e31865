"""Shipping the driver's models to actors on nodes that cannot download them.

Worker nodes of an air-gapped cluster have no network and no shared disk. The driver
packs the models a run may load (``--param *_model_dir=DIR`` folders, and the official
models in the driver's PaddleX cache that the pipeline's configuration needs, whether
named by ``*_model_name`` params, a ``--pipeline_config`` or PaddleX's defaults). Each
model is stored on its own (with Ray: one object per model, ``store=ray.put``), so the
driver holds one model's bytes at a time, and an actor fetches only the models its
node's cache lacks (one actor per node: model_cache.publish_dir makes the others wait,
then find it there). Plain data, no Ray here.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ray_ocr.models.model_cache import official_models_dir, paddlex_cache_dir, publish_dir

logger = logging.getLogger(__name__)


def _same(files):
    return files


@dataclass(frozen=True)
class ShippedModel:
    """One model folder: its files ({relative path: bytes}), or what ``store`` made of
    them (an object-store reference), with their digest and size."""

    digest: str
    size: int
    files: Any


@dataclass
class ModelBundle:
    official: dict[str, ShippedModel] = field(default_factory=dict)  # model name -> its folder
    dirs: dict[str, ShippedModel] = field(default_factory=dict)  # *_model_dir param -> its folder

    @property
    def size(self) -> int:
        return sum(model.size for model in (*self.official.values(), *self.dirs.values()))

    def __bool__(self) -> bool:
        return bool(self.official or self.dirs)

    def digest(self) -> str:
        """Names the bundle by its content: the same models give the same name."""
        hashed = hashlib.sha256()
        for kind, entries in (("official", self.official), ("dirs", self.dirs)):
            for name in sorted(entries):
                hashed.update(f"{kind}\0{name}\0{entries[name].digest}".encode())
        return hashed.hexdigest()[:16]

    def stored(self, store: Callable[[dict], Any]) -> "ModelBundle":
        """The same bundle with each model's files replaced by ``store(files)``."""
        def each(entries: dict[str, ShippedModel]) -> dict[str, ShippedModel]:
            return {name: replace(model, files=store(model.files)) for name, model in entries.items()}

        return ModelBundle(each(self.official), each(self.dirs))


def _read_model(folder: Path, store: Callable[[dict], Any]) -> ShippedModel:
    files = {path.relative_to(folder).as_posix(): path.read_bytes()
             for path in sorted(folder.rglob("*")) if path.is_file()}
    return ShippedModel(_files_digest(files), sum(map(len, files.values())), store(files))


def collect_bundle(spec, store: Callable[[dict], Any] | None = None) -> ModelBundle:
    """Read from the driver's disk the models a run of `spec` (a RunnerSpec) may load:
    its ``*_model_dir`` folders, and the official models in the driver's cache that its
    pipeline's configuration needs (models_to_ship), named or PaddleX's defaults; each
    model's files go through `store` (if given) as soon as they are read."""
    from ray_ocr.models.pipeline_config import models_to_ship
    from ray_ocr.models.runner import build_config

    params, store = dict(spec.init_params), store or _same
    bundle = ModelBundle()
    for key, value in params.items():
        if key.endswith("_model_dir") and isinstance(value, str) and os.path.isdir(os.path.expanduser(value)):
            bundle.dirs[key] = _read_model(Path(os.path.expanduser(value)), store)
    names = {v for k, v in params.items() if k.endswith("_model_name") and isinstance(v, str)}
    names.update(models_to_ship(build_config(spec) or {}))
    for name in sorted(names):
        folder = official_models_dir() / name
        if folder.is_dir():
            bundle.official[name] = _read_model(folder, store)
    if bundle:
        logger.info("shipping %d model(s) to nodes that lack them (%.1f MB)",
                    len(bundle.official) + len(bundle.dirs), bundle.size / 2**20)
    return bundle


def _writer(model: ShippedModel, fetch: Callable[[Any], dict]):
    def fill(folder: Path) -> None:
        for rel, data in fetch(model.files).items():  # fetched only when the folder is missing
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    return fill


def install_bundle(bundle: ModelBundle, fetch: Callable[[Any], dict] = _same) -> dict[str, str]:
    """Unpack into this node's PaddleX cache the models it lacks (``fetch`` gets a
    model's files from what ``store`` made of them); return ``*_model_dir`` params
    pointing at the local copies. Folders already present are left alone, and their
    models not fetched (same name, same model)."""
    for name, model in bundle.official.items():
        if publish_dir(official_models_dir() / name, _writer(model, fetch)):
            logger.info("installed shipped model %s", name)
    rewritten = {}
    for key, model in bundle.dirs.items():
        target = paddlex_cache_dir() / "ray_ocr_model_dirs" / model.digest
        publish_dir(target, _writer(model, fetch))
        rewritten[key] = str(target)
    return rewritten


def _files_digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(rel.encode() + b"\0" + files[rel])
    return digest.hexdigest()[:16]


def with_installed_models(spec, bundle: ModelBundle, fetch: Callable[[Any], dict] = _same):
    """`spec` (a RunnerSpec) for this node: the models it lacks unpacked into its cache,
    and the ``*_model_dir`` params pointing at the local copies."""
    local_dirs = install_bundle(bundle, fetch)
    return replace(spec, init_params=tuple({**dict(spec.init_params), **local_dirs}.items()))
