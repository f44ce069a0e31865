"""The driver of a batch run: it plans the inputs, starts the actors, hands out work
through the dispatcher and records every result as it arrives.

Each job has its own home; the driver wires them together:
- which inputs, and what a rerun skips: engine/resume.py (InputPlan);
- reading inputs and splitting long PDFs: engine/reading.py (InputReader);
- handing batches to actors, crash recovery: engine/dispatch.py (BatchDispatcher);
- writing results: engine/writing.py (ResultWriter), into io/storage.py folders;
- the manifest (what each input became): engine/manifest.py (RunManifest);
- the numbers: engine/summary.py (RunSummary); a clean stop: engine/signals.py.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import logging
import os
import time
from typing import Iterator

from ray_ocr.config import RunConfig
from ray_ocr.engine.manifest import FAILURES_NAME, MANIFEST_NAME, PARTS_NAME, RUNS_NAME, RunManifest
from ray_ocr.engine.reading import InputReader
from ray_ocr.engine.resume import InputPlan
from ray_ocr.engine.signals import StopFlag
from ray_ocr.engine.summary import RunSummary, write_summary
from ray_ocr.engine.writing import DocumentMarkdown, ResultWriter
from ray_ocr.errors import UsageError
from ray_ocr.io.outputs import SUMMARY_NAME
from ray_ocr.io.input_list import InputList
from ray_ocr.io.storage import is_uri, open_folder
from ray_ocr.models.runner import RunnerSpec, freeze_long_lived_objects
from ray_ocr.records import BatchResult, FileResult, WorkerInfo
from ray_ocr.report import REPORT_NAME

logger = logging.getLogger(__name__)

# A URI output's run state (io/state_mirror.py): the files only appended to go up as
# what was added every STATE_PUSH_SECONDS; the others are written whole at the end.
_APPENDED_STATE = (MANIFEST_NAME, PARTS_NAME, RUNS_NAME)
_REPLACED_STATE = (FAILURES_NAME, SUMMARY_NAME, REPORT_NAME)
STATE_PUSH_SECONDS = 60  # a killed driver loses at most this much of a URI output's records


class Driver:
    def __init__(self, config: RunConfig):
        self.config = config
        self.outputs = open_folder(config.output_dir)
        self.state_dir = self.outputs.state_dir
        self.manifest = RunManifest(self.state_dir)
        self.summary = RunSummary(device=str(config.device))
        self.attempts: dict = {}  # Task -> tries so far (the dispatcher counts them)
        self.actors_write, self.why_writers = who_writes(config)
        spec = RunnerSpec.from_options(config)  # reads --pipeline_config once
        self.spec = dataclasses.replace(spec, output_uri=config.output_dir) if self.actors_write else spec
        # What makes the results what they are (not how fast: device, batch sizes).
        self.settings = {"pipeline": config.pipeline.display_name, "pipeline_params": dict(config.pipeline_params),
                         "predict_params": dict(config.predict_params), "pipeline_config": self.spec.paddlex_config}
        if config.query is not None:
            self.settings["query"] = config.query
        inputs = InputList(config.input_list) if config.input_list else open_folder(config.input_dir)
        self.plan = InputPlan(config, inputs, self.outputs, self.manifest, self.settings)
        self.reader = InputReader(inputs, config.pages_per_task, config.pdf_password,
                                  output_bases=self.plan.bases if self.actors_write else None)
        self.writer = ResultWriter(self.outputs, self.plan.bases)
        self.documents = (DocumentMarkdown(self.outputs, self.plan.bases, config.pipeline.class_name)
                          if "markdown" in config.save else None)
        self.progress = None
        self.metrics = None
        self._last_push = time.monotonic()

    def plan_inputs(self) -> Iterator[str] | tuple[()]:
        """The keys to run, lazily. Discovery runs up to the first key to run before this
        returns, so a run with no input fails, and one with nothing left to do ends,
        before Ray starts."""
        self.outputs.pull_state(_APPENDED_STATE, _REPLACED_STATE)
        keys = self.plan.keys()
        first = next(keys, None)
        if first is None:
            if self.plan.files == 0:
                cfg = self.config
                raise UsageError(f"--input_dir {cfg.input_dir}: no file matches --input_glob_pattern "
                                 f"{cfg.input_glob_pattern!r}")
            return ()  # all finished by an earlier run
        return _chain_first(first, keys)

    def run(self) -> RunSummary:
        from ray_ocr.engine.cluster import gpus_for_this_run, ray_session

        cfg = self.config
        self.summary.started = time.perf_counter()
        todo = self.plan_inputs()
        self.summary.note_milestone("first_input_found")
        gpu_ids = gpus_for_this_run(cfg.address, cfg.device)
        if not todo:  # nothing left: the last real run's summary, report and state stay as they are
            self._push_state(final=True)  # (a URI output: a killed run's records folded into the files)
            return self._finish()
        os.makedirs(self.state_dir, exist_ok=True)
        self.manifest.start_run(self.settings)
        try:
            with ray_session(cfg.address, gpu_ids, quiet=not cfg.verbose) as cluster:
                self.summary.note_milestone("ray_started")
                self.summary.dashboard_url = cluster.dashboard_url
                if cluster.dashboard_url:
                    logger.info("Ray dashboard: %s", cluster.dashboard_url)
                with self.manifest:
                    try:
                        self._dispatch(cluster, todo)
                    finally:
                        self.writer.close()
                if cfg.address and self.metrics is not None:
                    self.metrics.flush()
            self.manifest.write_failures(every_input_recorded=not self.summary.interrupted)
            write_summary(cfg.pipeline.display_name, self._finish(), self.state_dir)
        finally:
            self._push_state(final=True)  # a URI output gets every record written, even after a second signal
        return self.summary

    def _finish(self) -> RunSummary:
        self.summary.files, self.summary.skipped = self.plan.files, self.plan.skipped
        self.summary.seconds = time.perf_counter() - self.summary.started
        return self.summary

    def _dispatch(self, cluster, todo: Iterator[str]) -> None:
        from ray_ocr.engine.actors import start_pipeline_actors
        from ray_ocr.engine.dispatch import BatchDispatcher
        from ray_ocr.engine.metrics import start_metrics
        from ray_ocr.engine.placement import resolve_device_kind
        from ray_ocr.engine.progress import Progress

        cfg = self.config
        if cfg.device.kind == "auto":
            self.summary.device = resolve_device_kind(cfg.device, cluster)
        if self.actors_write and not is_uri(cfg.output_dir) and not cluster.embedded:
            raise UsageError(f"--write_outputs actors: --output_dir {cfg.output_dir} is a folder of this machine, "
                             "and the actors run on other nodes; give file:///path for a folder mounted on "
                             "every node, or a URI")
        self.reader.actors_on_this_machine = cluster.embedded
        actors = start_pipeline_actors(cluster, self.spec, cfg)
        logger.info("results written by the %s (%s)", "actors" if self.actors_write else "driver", self.why_writers)
        try:  # (the bar holds the process's log handlers until it closes; the run's model store goes too)
            self.progress = Progress(self.plan.todo_total, interval=cfg.progress_interval,
                                     enabled=cfg.progress_interval > 0)
            self.plan.on_total = self.progress.set_total
            self.reader.on_page_count = self.progress.expect
            self.reader.done_parts = self.plan.done_parts
            self.metrics = start_metrics(cfg.pipeline.display_name)
            with StopFlag() as stop:
                dispatcher = BatchDispatcher(
                    actors, cfg.pipeline.display_name,
                    read=self.reader.read, on_batch=self._on_batch, on_results=self._record,
                    on_actor=self.summary.note_actor, attempts=self.attempts, max_attempts=cfg.max_attempts,
                    stop=stop.event, max_tasks_per_actor=cfg.max_tasks_per_actor,
                    max_actor_memory_mb=cfg.max_actor_memory_mb, max_bytes_in_flight=cfg.max_bytes_in_flight,
                    prefetch_batches=cfg.prefetch_batches,
                )
                dispatcher.add_keys(todo, cfg.batch_size)
                self._run_loop(dispatcher)
        finally:
            actors.release()
            if self.progress is not None:
                self.progress.close()

    def _run_loop(self, dispatcher) -> None:
        """Dispatch until every batch is in (or a stop); then the dispatcher's numbers."""
        freeze_long_lived_objects()  # Ray's and ours: not walked by the collector while it runs
        try:
            for _ in dispatcher.steps():
                self._tick(dispatcher)
        finally:
            gc.unfreeze()  # (run_batch in a long-lived process: its objects collectable again)
            self.progress.close()  # (before the shutdown's lines)
            dispatcher.shutdown()
            self.summary.interrupted = dispatcher.interrupted
            self.summary.recycled = dispatcher.recycled
            self.summary.note_restarts(dispatcher.restarts)

    def _tick(self, dispatcher) -> None:
        if dispatcher.submitted:
            self.summary.note_milestone("first_batch_sent")
        self.progress.tick()
        if time.monotonic() - self._last_push > STATE_PUSH_SECONDS:
            self._push_state()
        if self.metrics is not None:
            self.metrics.set_in_flight(dispatcher.batches_in_flight)

    def _push_state(self, final: bool = False) -> None:
        self.outputs.push_state(final)
        self._last_push = time.monotonic()

    def _on_batch(self, result: BatchResult) -> None:
        self.summary.note_batch(result)
        if self.metrics is not None:
            self.metrics.record_batch(result)
        self._record(list(result.files), result.worker)

    def _record(self, results: list[FileResult], worker: WorkerInfo | None) -> None:
        """Write the results' outputs, then record each finished input in the manifest
        (a split PDF: when its last part is in)."""
        summary = self.summary
        failed_before, pages_before = summary.failed, summary.pages
        results = [r for r in results if r.key in self.plan.bases]  # else recorded already
        finished, pages_by_key = [], collections.Counter()
        for result, outputs in self.writer.write(results):
            summary.pages += len(result.pages)
            pages_by_key[result.key] += len(result.pages)
            if result.page_range is not None and result.ok and outputs:
                self.manifest.record_part(result, outputs)  # a rerun need not run its pages again
            if self.documents is not None:
                self.documents.add(result)
            tries = self.attempts.get(result.task, 1) if self.attempts else 1  # (most inputs: none retried)
            whole = self.reader.settle(result, outputs, max(1, tries))
            if whole is not None:
                finished.append(self._record_input(*whole, worker))
        self.manifest.sync()
        if self.metrics is not None:
            self.metrics.record_files(finished, worker.node_id if worker else None,
                                      pages=summary.pages - pages_before)
        if self.progress is not None:
            page_counts = {r.key: r.page_count or len(r.pages) for r in finished}
            self.progress.update(pages_by_key, page_counts, summary.failed - failed_before)

    def _record_input(self, result: FileResult, outputs: list[str], attempts: int,
                      worker: WorkerInfo | None) -> FileResult:
        if self.documents is not None:
            result, outputs = self.documents.finish(result, outputs)
        if result.ok:
            self.summary.succeeded += 1
            for warning in result.warnings:
                logger.warning("%s: %s", result.key, warning)
        else:
            self.summary.failed += 1
            self.summary.failures.append(dataclasses.replace(result.failure, attempts=attempts))
            logger.error("FAILED %s", result.failure.one_line())
        self.manifest.record(result, outputs, attempts, worker)
        self.plan.bases.pop(result.key, None)  # finished for this run: memory stays flat
        return result


def who_writes(config: RunConfig) -> tuple[bool, str]:
    """(do the actors write the results, why). On one machine or into a folder on the
    driver's machine the driver writes them: thousands of files a second, more than a
    node's GPUs make. Into a URI every node can write, each actor writes its own, and
    the driver, out of the data path, records their receipts."""
    if config.write_outputs != "auto":
        return config.write_outputs == "actors", f"--write_outputs {config.write_outputs}"
    if is_uri(config.output_dir):
        return True, "--output_dir is a URI every node can write"
    return False, "--output_dir is a folder on the driver's machine"


def _chain_first(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest
