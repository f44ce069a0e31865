"""The library entry points; the CLI is a thin layer over ``run``."""

from __future__ import annotations

import collections
import json
import os
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from ray_ocr.config import DEFAULT_PAGES_PER_TASK, RunConfig
from ray_ocr.records import Failure


def run(pipeline: str, input_dir: str, output_dir: str = "output", **options: Any):
    """Run `pipeline` over `input_dir`, write JSONs to `output_dir`, return a RunSummary.

    Options are those of RunConfig.build (device, instances_per_device, batch_size,
    pipeline_params, predict_params, address, save, ...). Uses the Ray this process
    has joined, if any; else starts an embedded one for the run.
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


def predict(
    pipeline: str,
    inputs: str | Iterable[str],
    *,
    device: str | None = None,
    instances_per_device: int = 1,
    gpus_per_instance: float | None = None,
    cpus_per_instance: float | None = None,
    batch_size: int = 1,
    address: str | None = None,
    pipeline_params: dict | None = None,
    predict_params: dict | None = None,
    input_glob_pattern: str = "*",
    max_attempts: int = 3,
    prefetch_batches: int = 1,
    max_bytes_in_flight: int = 1 << 30,
    pages_per_task: int = DEFAULT_PAGES_PER_TASK,
    pdf_password: str | None = None,
) -> Iterator[Prediction]:
    """Yield results as the actors finish them (unordered); no file is written.

    `inputs` is a folder (with `input_glob_pattern`) or an iterable of file paths, read
    as the actors need them. One Prediction per page; a PDF longer than `pages_per_task`
    pages is cut into page ranges that run on several actors at once (0: never), and a
    part that fails yields one failure naming its pages.
    For notebooks: ``for p in ray_ocr.predict("OCR", paths): print(p.data["rec_texts"])``.
    """
    from ray_ocr.config import DeviceRequest, _frozen
    from ray_ocr.engine.actors import start_pipeline_actors
    from ray_ocr.engine.cluster import gpus_for_this_run, ray_session
    from ray_ocr.engine.dispatch import BatchDispatcher
    from ray_ocr.engine.manifest import failure_for
    from ray_ocr.engine.page_split import label_part_failure, pdf_parts
    from ray_ocr.io.discovery import iter_inputs
    from ray_ocr.models.runner import RunnerSpec
    from ray_ocr.pipelines import resolve_pipeline
    from ray_ocr.records import FileResult, InputItem

    ref = resolve_pipeline(pipeline)
    dev = DeviceRequest.parse(device)
    if isinstance(inputs, (str, os.PathLike)) and os.path.isdir(inputs):
        folder = str(inputs)
        paths = (os.path.join(folder, key) for key in iter_inputs(folder, input_glob_pattern))
    else:
        paths = (str(p) for p in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs))
    spec = RunnerSpec(pipeline=ref, init_params=_frozen(pipeline_params), predict_params=_frozen(predict_params),
                      pdf_password=pdf_password)
    ready: collections.deque[Prediction] = collections.deque()
    split_bytes: dict[str, Any] = {}  # a split PDF's bytes in the object store, for its parts' retries
    parts_out: collections.Counter = collections.Counter()  # split PDF -> parts not yet back

    def read(task):
        path = task.key
        if task.pages is not None:  # a part, again (its actor died)
            return InputItem(key=path, source_path=path, data=split_bytes[path], pages=task.pages)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            return FileResult(key=path, failure=failure_for(path, "read", exc))
        _, parts = pdf_parts(path, data, pages_per_task, pdf_password)
        if not parts:
            return InputItem(key=path, source_path=path, data=data)
        import ray

        if path not in split_bytes:  # (the same path twice shares one copy)
            split_bytes[path] = ray.put(data)  # one copy for all its parts
        parts_out[path] += len(parts)
        return [InputItem(key=path, source_path=path, data=split_bytes[path], pages=p.pages) for p in parts]

    def on_results(results, _worker=None):
        for result in results:
            if result.subset is not None:
                parts_out[result.key] -= 1
                if not parts_out[result.key]:
                    del parts_out[result.key], split_bytes[result.key]
            if not result.ok:
                failure = result.failure if result.subset is None else label_part_failure(result)
                ready.append(Prediction(result.key, None, None, failure))
            for page in result.pages:
                ready.append(Prediction(result.key, page.page_index, json.loads(page.json_text)))

    with ray_session(address, gpus_for_this_run(address, dev)) as cluster:
        actors = start_pipeline_actors(cluster, spec, ref.display_name, dev, instances_per_device,
                                       gpus_per_instance, cpus_per_instance)
        dispatcher = BatchDispatcher(
            actors, ref.display_name, read=read,
            on_batch=lambda batch: on_results(batch.files), on_results=on_results,
            on_actor=lambda worker: None, attempts={}, max_attempts=max_attempts,
            prefetch_batches=prefetch_batches, max_bytes_in_flight=max_bytes_in_flight,
        )
        dispatcher.add_keys((os.path.abspath(p) for p in paths), batch_size)
        try:
            for _ in dispatcher.steps():
                while ready:
                    yield ready.popleft()
            while ready:
                yield ready.popleft()
        finally:
            dispatcher.shutdown()
