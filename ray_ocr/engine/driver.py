"""The driver: lists inputs, starts actors, hands batches out through an ActorPool,
and writes every result as it arrives.

Reliability rules kept here:
- an input's bytes are read on the driver and shipped to an actor (no shared disk);
- a batch whose actor died is retried file by file; a file that kills its actor
  ``max_attempts`` times becomes a failure record (quarantined), the run goes on;
- every output is written atomically, and recorded in the manifest, so a rerun
  skips what is finished.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

from ray_ocr.config import RunConfig
from ray_ocr.engine.manifest import FAILURES_NAME, MANIFEST_NAME, RUNS_NAME, RunManifest, failure_for
from ray_ocr.errors import UsageError
from ray_ocr.io.discovery import group_by_folder, iter_input_folders
from ray_ocr.io.outputs import (
    assign_output_bases,
    atomic_write_bytes,
    atomic_write_text,
    extra_output_relpath,
    output_relpath,
    SUMMARY_NAME,
)
from ray_ocr.io.storage import UriFolder, is_uri, open_folder
from ray_ocr.io.documents import DEFAULT_MAX_IMAGE_PIXELS
from ray_ocr.engine.page_split import SplitDocument, pdf_parts
from ray_ocr.models.runner import RunnerSpec
from ray_ocr.records import BatchResult, Failure, FileResult, InputItem, Task, WorkerInfo

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    files: int = 0
    skipped: int = 0
    succeeded: int = 0
    failed: int = 0
    pages: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    failures: list[Failure] = field(default_factory=list)
    actors: dict[str, dict] = field(default_factory=dict)
    timeline: list[dict] = field(default_factory=list)  # one event per finished batch
    recycled: int = 0
    dashboard_url: str | None = None
    device: str | None = None  # what ran: "cpu", "gpu", "gpu:0,2" (never "auto")

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed

    @property
    def files_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed else 0

    def one_line(self) -> str:
        # Stopped, the total is unknown (discovery stops too): say what was done.
        files = f"stopped early: {self.processed} files done" if self.interrupted else f"{self.files} files"
        return (
            f"ray_ocr: {files}, {self.pages} pages, {self.failed} failures, "
            f"{self.skipped} skipped, {self.seconds:.1f} s, {self.files_per_second:.2f} files/s"
        )


def _load_pipeline_config(path: str | None) -> dict | None:
    if path is None:
        return None
    import yaml

    with open(path, encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    if not isinstance(loaded, dict):
        raise UsageError(f"--pipeline_config {path}: not a PaddleX pipeline YAML mapping")
    return loaded


def runner_spec(config: RunConfig) -> RunnerSpec:
    return RunnerSpec(
        pipeline=config.pipeline,
        init_params=config.pipeline_params,
        predict_params=config.predict_params,
        paddlex_config=_load_pipeline_config(config.pipeline_config),
        max_image_pixels=config.max_image_pixels or DEFAULT_MAX_IMAGE_PIXELS,
        pdf_password=config.pdf_password,
        save=config.save,
    )


WRITE_THREADS = 8


class _StopFlag:
    """SIGINT/SIGTERM stop dispatching; what is in flight is still written."""

    def __init__(self):
        self.event = threading.Event()
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame):
        if self.event.is_set():
            raise KeyboardInterrupt  # second signal: stop now
        logger.warning("signal %s: finishing the batches in flight, then stopping", signum)
        self.event.set()

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def state_dir_for(output_dir: str) -> str:
    """Where the manifest and reports live while a run writes to a URI: a local folder
    per output URI, mirrored to the URI (the manifest is append-only; objects are not)."""
    import hashlib

    if not is_uri(output_dir):
        return output_dir
    digest = hashlib.sha256(output_dir.encode()).hexdigest()[:16]
    return os.path.join(os.path.expanduser("~"), ".cache", "ray_ocr", "runs", digest)


_STATE_FILES = (MANIFEST_NAME, RUNS_NAME, FAILURES_NAME, SUMMARY_NAME, "report.html")


class Driver:
    def __init__(self, config: RunConfig):
        self.config = config
        self.inputs = open_folder(config.input_dir)
        self.outputs = open_folder(config.output_dir)
        self.state_dir = state_dir_for(config.output_dir)
        self.manifest = RunManifest(self.state_dir)
        self.summary = RunSummary()
        self.attempts: dict[Task, int] = collections.Counter()
        self.bases: dict[str, str] = {}
        self.splits: dict[str, SplitDocument] = {}  # long PDFs whose parts are out
        self._write_pool = None  # threads writing a batch's outputs
        self.todo_total: int | None = None  # known once discovery has walked every folder
        self._started = time.perf_counter()
        self._last_push = time.monotonic()
        self.progress = None
        self.metrics = None
        self.spec = runner_spec(config)  # reads --pipeline_config once
        # What makes the results what they are (not how fast: device, batch sizes).
        self.settings = {"pipeline": config.pipeline.display_name, "pipeline_params": dict(config.pipeline_params),
                         "predict_params": dict(config.predict_params), "pipeline_config": self.spec.paddlex_config}

    def _check_settings(self, finished_ids: set) -> None:
        """Results that another pipeline or other parameters made are not skipped as
        finished unless --resume_anyway says so."""
        changes = self.manifest.settings_changes(self.settings, finished_ids)
        if not changes:
            return
        what = "; ".join(changes)
        if not self.config.resume_anyway:
            raise UsageError(
                f"--output_dir {self.config.output_dir}: its results were made with other settings ({what}) "
                "and a rerun would skip them as finished; use another output folder, --overwrite to redo "
                "every input, or --resume_anyway to keep them")
        logger.warning("resuming over results made with other settings (%s)", what)

    # -- inputs ---------------------------------------------------------------
    def plan_inputs(self) -> Iterator[str] | tuple[()]:
        """The keys to run, lazily (see io/discovery.py), skipping inputs an earlier run
        finished. Discovery runs up to the first key to run before this returns, so a
        run with no input fails, and a run with nothing left to do ends, before Ray starts."""
        cfg = self.config
        self._pull_state()
        keys = self._discover()
        first = next(keys, None)
        if first is None:
            if self.summary.files == 0:
                raise UsageError(
                    f"--input_dir {cfg.input_dir}: no file matches --input_glob_pattern {cfg.input_glob_pattern!r}"
                )
            return ()  # all finished by an earlier run
        return itertools.chain([first], keys)

    def _input_groups(self) -> Iterator[list[str]]:
        cfg = self.config
        if isinstance(self.inputs, UriFolder):
            return group_by_folder(self.inputs.list(cfg.input_glob_pattern))
        return iter_input_folders(cfg.input_dir, cfg.input_glob_pattern, exclude_dir=cfg.output_dir,
                                  follow_symlinks=cfg.follow_symlinks)

    def _discover(self) -> Iterator[str]:
        """Folder by folder: name the outputs, count the inputs, skip the finished ones.
        The total is known as soon as the last folder has been listed."""
        finished: dict[str, list[str]] = {}
        if not self.config.overwrite:
            finished, finished_ids = self.manifest.finished_outputs()
            self._check_settings(finished_ids)
        groups = self._input_groups()
        group = next(groups, None)
        todo_before = 0
        while group is not None:
            self.bases.update(assign_output_bases(group))
            self.summary.files += len(group)
            candidates = {key: finished[key] for key in group if key in finished}
            present = (self.outputs.exists_all(rel for outs in candidates.values() for rel in outs)
                       if candidates else set())
            todo = []
            for key in group:
                outputs = candidates.get(key)
                if outputs and all(rel in present for rel in outputs):
                    self.summary.skipped += 1
                else:
                    todo.append(key)
            group = next(groups, None)
            if group is None:
                self._discovered(todo_before + len(todo))
            todo_before += len(todo)
            yield from todo

    def _discovered(self, total: int) -> None:
        self.todo_total = total
        if self.progress is not None:
            self.progress.set_total(total)
        if self.summary.skipped:
            logger.info("skipped %d input%s finished by an earlier run", self.summary.skipped,
                        "" if self.summary.skipped == 1 else "s")

    def _read(self, task: Task) -> InputItem | FileResult | list[InputItem]:
        """Local inputs: the driver reads and ships the bytes (workers need no shared
        disk). URI inputs: the actor reads them itself, straight from the store, except
        PDFs when splitting is on (the driver must count their pages). A PDF longer than
        --pages_per_task comes back as its parts."""
        key = task.key
        if task.pages is not None:  # a part of a split PDF (again, after a crash)
            split = self.splits[key]
            return InputItem(key=key, source_path=split.source_path, data=split.data, pages=task.pages)
        path = self.inputs.display(key)
        splittable = self.config.pages_per_task > 0
        if isinstance(self.inputs, UriFolder) and not (splittable and key.lower().endswith(".pdf")):
            return InputItem(key=key, source_path=path, data=b"", uri_root=self.config.input_dir)
        try:
            data = self.inputs.read(key)
        except OSError as exc:
            return FileResult(key=key, failure=failure_for(key, "read", exc))
        count, parts = pdf_parts(key, data, self.config.pages_per_task, self.config.pdf_password)
        if parts:
            return self._split(key, path, data, count, parts)
        return InputItem(key=key, source_path=path, data=data)

    def _split(self, key: str, path: str, data: bytes, page_count: int, parts: list[Task]) -> list[InputItem]:
        import ray

        shared = ray.put(data)  # one copy in the object store for all its parts
        self.splits[key] = SplitDocument(key, path, shared, page_count, set(parts))
        logger.debug("%s: %d pages in %d parts", key, page_count, len(parts))
        return [InputItem(key=key, source_path=path, data=shared, pages=part.pages) for part in parts]

    def _pull_state(self) -> None:
        """For a URI output, resume from the manifest stored beside the outputs."""
        if not isinstance(self.outputs, UriFolder):
            return
        os.makedirs(self.state_dir, exist_ok=True)
        for name in (MANIFEST_NAME, RUNS_NAME):
            try:
                data = self.outputs.read(name)
            except OSError:  # FileNotFoundError included
                data = None
            path = os.path.join(self.state_dir, name)
            if data is not None:
                atomic_write_bytes(path, data)
            elif os.path.exists(path):
                os.unlink(path)  # a stale local copy of a file the URI no longer has

    def _push_state(self) -> None:
        if not isinstance(self.outputs, UriFolder):
            return
        for name in _STATE_FILES:
            path = os.path.join(self.state_dir, name)
            if os.path.exists(path):
                with open(path, "rb") as handle:
                    self.outputs.write(name, handle.read())
        self._last_push = time.monotonic()

    # -- results --------------------------------------------------------------
    def _write_outputs(self, result: FileResult) -> tuple[FileResult, list[str]]:
        """Write one result's page JSONs (and saver files); a failed write turns the
        result into a failure."""
        outputs: list[str] = []
        if not result.ok:
            return result, outputs
        base = self.bases[result.key]
        try:
            for page in result.pages:
                for produced, data in page.extras:
                    rel = extra_output_relpath(base, page.page_index, result.key, produced)
                    self.outputs.write(rel, data)
                    outputs.append(rel)
                rel = output_relpath(base, page.page_index)
                self.outputs.write(rel, page.json_text.encode("utf-8"))
                outputs.append(rel)
        except (OSError, ValueError) as exc:
            failure = failure_for(result.key, "write", exc)
            return FileResult(key=result.key, failure=failure, subset=result.subset), []
        return result, outputs

    def _writer(self):
        if self._write_pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._write_pool = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="ray_ocr_write")
        return self._write_pool

    def _write(self, results: list[FileResult], worker: WorkerInfo | None) -> None:
        failed_before, pages_before = self.summary.failed, self.summary.pages
        finished: list[FileResult] = []  # inputs recorded now (a split PDF: its last part)
        results = [r for r in results if r.key in self.bases]  # else recorded already
        if len(results) > 1:
            # Each output is fsync'ed before it is renamed into place: many small files
            # are bound by those waits, which overlap across threads.
            written = list(self._writer().map(self._write_outputs, results))
        else:
            written = [self._write_outputs(result) for result in results]
        for result, outputs in written:
            attempts = max(1, self.attempts.get(result.task, 1))
            self.summary.pages += len(result.pages)
            if result.subset is not None:
                whole = self.splits[result.key].add(result, outputs, attempts)
                if whole is None:
                    continue
                del self.splits[result.key]  # drops the shared bytes
                result, outputs, attempts = whole
            if result.ok:
                self.summary.succeeded += 1
                for warning in result.warnings:
                    logger.warning("%s: %s", result.key, warning)
            else:
                self.summary.failed += 1
                self.summary.failures.append(dataclasses.replace(result.failure, attempts=attempts))
                logger.error("FAILED %s", result.failure.one_line())
            self.manifest.record(result, outputs, attempts, worker)
            self.bases.pop(result.key, None)  # finished for this run: memory stays flat
            finished.append(result)
        self.manifest.sync()
        if self.metrics is not None:
            self.metrics.record_files(finished, worker.node_id if worker else None,
                                      pages=self.summary.pages - pages_before)
        if self.progress is not None:
            self.progress.update(len(finished), self.summary.pages - pages_before,
                                 self.summary.failed - failed_before)

    def _on_batch(self, result: BatchResult) -> None:
        self._note_actor(result.worker, result.seconds)
        if self.metrics is not None:
            self.metrics.record_batch(result)
        self._write(list(result.files), result.worker)
        self.summary.timeline.append({
            "actor": result.worker.actor_name,
            "t": round(time.perf_counter() - self._started, 3),
            "seconds": round(result.seconds, 3),  # the batch's time on its actor
            "files": sum(1 for f in result.files if f.subset is None),
            "parts": sum(1 for f in result.files if f.subset is not None),
            "pages": sum(len(f.pages) for f in result.files),
            "rss_mb": round(result.rss_mb, 1),
        })

    def _note_actor(self, worker: WorkerInfo, batch_seconds: float | None = None) -> None:
        """Per-actor statistics (pids and nodes it has lived in; restarts come from
        the dispatcher, which sees each death)."""
        stats = self.summary.actors.setdefault(
            worker.actor_name,
            {"node": worker.node_id, "nodes": [], "gpu_ids": list(worker.gpu_ids),
             "cuda_visible_devices": worker.cuda_visible_devices, "batches": 0,
             "busy_seconds": 0.0, "pids": [], "restarts": 0},
        )
        if worker.pid not in stats["pids"]:
            stats["pids"].append(worker.pid)
            stats["node"] = worker.node_id  # a restarted actor may be on another node
        if worker.node_id not in stats["nodes"]:
            stats["nodes"].append(worker.node_id)
        if batch_seconds is not None:
            stats["batches"] += 1
            stats["busy_seconds"] += batch_seconds

    # -- the run --------------------------------------------------------------
    def run(self) -> RunSummary:
        from ray_ocr.engine.cluster import gpus_for_this_run, ray_session

        cfg = self.config
        started = self._started = time.perf_counter()
        todo = self.plan_inputs()
        gpu_ids = gpus_for_this_run(cfg.address, cfg.device)
        if not todo:  # nothing left: the last real run's summary, report and state stay as they are
            self.summary.seconds = time.perf_counter() - started
            return self.summary
        os.makedirs(self.state_dir, exist_ok=True)
        self.manifest.start_run(self.settings)
        try:
            with ray_session(cfg.address, gpu_ids, quiet=not cfg.verbose) as cluster:
                self.summary.dashboard_url = cluster.dashboard_url
                if cluster.dashboard_url:
                    logger.info("Ray dashboard: %s", cluster.dashboard_url)
                with self.manifest:
                    try:
                        self._dispatch(cluster, self.spec, todo)
                    finally:
                        if self._write_pool is not None:
                            self._write_pool.shutdown()
                if cfg.address and self.metrics is not None:
                    self._flush_metrics()
            self.manifest.write_failures()
            self.summary.seconds = time.perf_counter() - started
            write_summary(cfg, self.summary, self.state_dir)
        finally:
            self._push_state()  # a URI output gets every record written, even after a second signal
        return self.summary

    def _dispatch(self, cluster, spec: RunnerSpec, todo: Iterator[str]) -> None:
        from ray_ocr.engine.actors import start_pipeline_actors
        from ray_ocr.engine.dispatch import BatchDispatcher
        from ray_ocr.engine.placement import resolve_device_kind
        from ray_ocr.engine.progress import Progress

        cfg = self.config
        self.summary.device = str(cfg.device) if cfg.device.kind != "auto" else resolve_device_kind(cfg.device, cluster)
        actors = start_pipeline_actors(cluster, spec, cfg.pipeline.display_name, cfg.device,
                                       cfg.instances_per_device, cfg.gpus_per_instance, cfg.cpus_per_instance)
        self.progress = Progress(self.todo_total, interval=cfg.progress_interval, enabled=cfg.progress_interval >= 0)
        self.metrics = _start_metrics(cfg.pipeline.display_name)
        with _StopFlag() as stop:
            dispatcher = BatchDispatcher(
                actors, cfg.pipeline.display_name,
                read=self._read, on_batch=self._on_batch, on_results=self._write, on_actor=self._note_actor,
                attempts=self.attempts, max_attempts=cfg.max_attempts, stop=stop.event,
                max_tasks_per_actor=cfg.max_tasks_per_actor, max_actor_memory_mb=cfg.max_actor_memory_mb,
                max_bytes_in_flight=cfg.max_bytes_in_flight, prefetch_batches=cfg.prefetch_batches,
            )
            dispatcher.add_keys(todo, cfg.batch_size)
            try:
                for _ in dispatcher.steps():
                    self.progress.tick()
                    if time.monotonic() - self._last_push > 60:
                        self._push_state()  # a killed driver loses at most a minute of records
                    if self.metrics is not None:
                        self.metrics.set_in_flight(len(dispatcher.in_flight))
            finally:
                self.progress.close()
                dispatcher.shutdown()
                self.summary.interrupted = dispatcher.interrupted
                self.summary.recycled = dispatcher.recycled
                for name, deaths in dispatcher.restarts.items():
                    if name in self.summary.actors:
                        self.summary.actors[name]["restarts"] = deaths


    def _flush_metrics(self) -> None:
        """The cluster outlives this driver: let its last counts reach the exporter."""
        from ray_ocr.engine.metrics import export_interval_seconds

        self.metrics.set_in_flight(0)
        wait = export_interval_seconds() + 0.5
        logger.info("waiting %.0f s for the last metrics to reach the Ray metrics export", wait)
        time.sleep(wait)


def _start_metrics(pipeline: str):
    try:
        from ray_ocr.engine.metrics import RunMetrics

        return RunMetrics(pipeline)
    except Exception as exc:  # noqa: BLE001 - metrics are an aid; never fail a run for them
        logger.debug("no Ray metrics: %s", exc)
        return None


def write_summary(config: RunConfig, summary: RunSummary, folder: str) -> None:
    """summary.json in the output folder: the numbers of this run, per actor too."""
    import json

    data = {
        "pipeline": config.pipeline.display_name,
        "device": summary.device or str(config.device),
        "inputs": summary.files,
        "skipped": summary.skipped,
        "succeeded": summary.succeeded,
        "failed": summary.failed,
        "pages": summary.pages,
        "wall_seconds": round(summary.seconds, 3),
        "files_per_second": round(summary.files_per_second, 4),
        "pages_per_second": round(summary.pages / summary.seconds, 4) if summary.seconds else 0.0,
        "interrupted": summary.interrupted,
        "recycled_actors": summary.recycled,
        "actors": summary.actors,
        "failures": [f.one_line() for f in summary.failures],
        "failure_records": [dataclasses.asdict(f) for f in summary.failures],
        "timeline": summary.timeline,
    }
    os.makedirs(folder, exist_ok=True)
    atomic_write_text(os.path.join(folder, SUMMARY_NAME), json.dumps(data, indent=2))
    try:
        from ray_ocr.report import write_report

        write_report(folder, data)
    except Exception as exc:  # noqa: BLE001 - a report problem must not fail a finished run
        logger.warning("could not write report.html: %s", exc)
