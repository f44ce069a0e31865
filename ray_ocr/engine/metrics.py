"""Custom Ray metrics of a run, exported through Ray's Prometheus endpoint
(``ray start --metrics-export-port``) and shown on the dashboard's Metrics page.

Recorded by the driver as results land, so the counts equal the files written.
Ray prefixes application metrics with ``ray_``: ``ray_ocr_files_done`` and so on.
"""

from __future__ import annotations

import logging

from ray_ocr.records import BatchResult, FileResult

logger = logging.getLogger(__name__)

_BATCH_SECONDS_BOUNDARIES = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600]


class RunMetrics:
    def __init__(self, pipeline: str):
        from ray.util.metrics import Counter, Gauge, Histogram

        self.pipeline = pipeline
        keys = ("pipeline", "node")
        self.files_done = Counter("ocr_files_done", "Inputs finished with all their outputs", tag_keys=keys)
        self.pages_done = Counter("ocr_pages_done", "Pages (results) written", tag_keys=keys)
        self.files_failed = Counter("ocr_files_failed", "Inputs that ended with a failure record",
                                    tag_keys=keys)
        self.batch_seconds = Histogram("ocr_batch_seconds", "Seconds an actor spent on one batch",
                                       boundaries=_BATCH_SECONDS_BOUNDARIES, tag_keys=keys)
        self.in_flight = Gauge("ocr_batches_in_flight", "Batches handed to actors, not yet back",
                               tag_keys=("pipeline",))

    def _tags(self, node: str | None) -> dict:
        return {"pipeline": self.pipeline, "node": node or "driver"}

    def record_files(self, results: list[FileResult], node: str | None, pages: int = 0) -> None:
        """`results`: inputs recorded as finished; `pages`: page JSONs written (a split
        PDF's pages count as its parts land, the PDF once its last part is in)."""
        tags = self._tags(node)
        if pages:
            self.pages_done.inc(pages, tags)
        done = [r for r in results if r.ok]
        if done:
            self.files_done.inc(len(done), tags)
        if len(done) < len(results):
            self.files_failed.inc(len(results) - len(done), tags)

    def record_batch(self, result: BatchResult) -> None:
        self.batch_seconds.observe(result.seconds, self._tags(result.worker.node_id))

    def set_in_flight(self, count: int) -> None:
        self.in_flight.set(count, {"pipeline": self.pipeline})

    def flush(self) -> None:
        """The cluster outlives this driver: let its last counts reach the exporter."""
        import time

        self.set_in_flight(0)
        wait = export_interval_seconds() + 0.5
        logger.info("waiting %.0f s for the last metrics to reach the Ray metrics export", wait)
        time.sleep(wait)


def start_metrics(pipeline: str) -> RunMetrics | None:
    try:
        return RunMetrics(pipeline)
    except Exception as exc:  # noqa: BLE001 - metrics are an aid; never fail a run for them
        logger.debug("no Ray metrics: %s", exc)
        return None


def export_interval_seconds() -> float:
    """How often this process pushes its metrics to the node's agent (Ray config)."""
    try:
        import ray

        return max(ray._config.metrics_report_interval_ms(), 1000) / 1000.0
    except Exception:  # noqa: BLE001 - private API; Ray's default is 10 s
        return 10.0
