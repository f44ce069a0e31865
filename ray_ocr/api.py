"""The library entry points; the CLI is a thin layer over ``run_batch``."""

from __future__ import annotations

import collections
import json
import os
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from ray_ocr.config import PredictConfig, RunConfig
from ray_ocr.records import Failure, FileResult


def run_batch(pipeline: str, input_dir: str, output_dir: str = "output", **options: Any):
    """Run `pipeline` over `input_dir`, write its results to `output_dir`, return a RunSummary.

    `options` are the CLI's, named as the flags without ``--`` (ray_ocr/config.py:
    RunConfig), e.g. ``device="cpu", instances_per_device=2, pipeline_params={...}``.
    Uses the Ray this process has joined, if any; else starts an embedded one.
    """
    from ray_ocr.engine.driver import Driver

    config = RunConfig.build(pipeline=pipeline, input_dir=input_dir, output_dir=output_dir, **options)
    return Driver(config).run()


@dataclass(frozen=True)
class Prediction:
    """One page's result (or one input's failure), as ``predict`` yields them."""

    input_path: str
    page_index: int | None
    data: dict | None  # what save_to_json would write, parsed
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


def predict(pipeline: str, inputs: str | Iterable[str], **options: Any) -> Iterator[Prediction]:
    """Yield results as the actors finish them (unordered); no file is written.

    `inputs` is a folder (with ``input_glob_pattern``) or an iterable of file paths, read
    as the actors need them. `options`: those of ray_ocr/config.py's PredictConfig
    (device, instances_per_device, batch_size, pipeline_params, pages_per_task, ...).
    One Prediction per page; a PDF longer than ``pages_per_task`` pages runs as page
    ranges on several actors at once, and a range that fails yields one failure naming
    its pages.
    For notebooks: ``for p in ray_ocr.predict("OCR", paths): print(p.data["rec_texts"])``.
    """
    config = PredictConfig.build(pipeline=pipeline, **options)
    bad_paths: set[str] = set()
    return _predict(config, _input_paths(inputs, config.input_glob_pattern, bad_paths), bad_paths)


def _input_paths(inputs: str | Iterable[str], pattern: str, bad_paths: set[str]) -> Iterator[str]:
    """Absolute paths (the keys, see _predict); a folder's files whose names are not
    UTF-8 come out escaped, and are added to `bad_paths` as they are found."""
    if isinstance(inputs, (str, os.PathLike)) and os.path.isdir(inputs):
        return _folder_paths(os.path.abspath(inputs), pattern, bad_paths)
    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else inputs
    return (os.path.abspath(p) for p in paths)


def _folder_paths(folder: str, pattern: str, bad_paths: set[str]) -> Iterator[str]:
    from ray_ocr.io.discovery import iter_inputs

    bad_keys: set[str] = set()
    for key in iter_inputs(folder, pattern, bad_names=bad_keys):
        path = os.path.join(folder, key)
        if key in bad_keys:
            bad_paths.add(path)
        yield path


def _predict(config: PredictConfig, paths: Iterator[str], bad_paths: set[str]) -> Iterator[Prediction]:
    from ray_ocr.engine.actors import start_pipeline_actors
    from ray_ocr.engine.cluster import gpus_for_this_run, ray_session
    from ray_ocr.engine.dispatch import BatchDispatcher
    from ray_ocr.engine.page_split import label_part_failure
    from ray_ocr.engine.reading import InputReader
    from ray_ocr.io.storage import LocalFolder
    from ray_ocr.models.runner import RunnerSpec

    # Keys are absolute paths: a folder at the root reads any of them. bad_paths fills as
    # the input folder is walked, before each of its files is read.
    reader = InputReader(LocalFolder(os.sep, bad_names=bad_paths), config.pages_per_task, config.pdf_password)
    ready: collections.deque[Prediction] = collections.deque()

    def on_results(results: list[FileResult], _worker=None) -> None:
        for result in results:
            reader.settle(result, [], 1)  # a split PDF's bytes go once its last part is back
            if not result.ok:
                failure = result.failure if result.page_range is None else label_part_failure(result)
                ready.append(Prediction(result.key, None, None, failure))
            for page in result.pages:
                ready.append(Prediction(result.key, page.page_index, json.loads(page.json_text)))

    with ray_session(config.address, gpus_for_this_run(config.address, config.device),
                     quiet=not config.verbose) as cluster, \
            start_pipeline_actors(cluster, RunnerSpec.from_options(config), config) as actors:
        dispatcher = BatchDispatcher(
            actors, config.pipeline.display_name, read=reader.read,
            on_batch=lambda batch: on_results(batch.files), on_results=on_results,
            on_actor=lambda worker: None, attempts={}, max_attempts=config.max_attempts,
            prefetch_batches=config.prefetch_batches, max_bytes_in_flight=config.max_bytes_in_flight,
        )
        dispatcher.add_keys(paths, config.batch_size)
        try:
            for _ in dispatcher.steps():
                while ready:
                    yield ready.popleft()
            while ready:
                yield ready.popleft()
        finally:
            dispatcher.shutdown()
