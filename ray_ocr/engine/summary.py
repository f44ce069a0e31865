"""What a run did, in numbers: the RunSummary it returns and ``summary.json`` /
``report.html`` in the output folder."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field

from ray_ocr.io.outputs import SUMMARY_NAME, atomic_write_text
from ray_ocr.records import BatchResult, Failure, WorkerInfo

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
    # Seconds from the start to: the first input found, Ray up, the first batch sent.
    milestones: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter, repr=False)

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

    def note_actor(self, worker: WorkerInfo, batch_seconds: float | None = None) -> None:
        """Per-actor statistics (pids and nodes it has lived in; restarts come from
        the dispatcher, which sees each death)."""
        stats = self.actors.setdefault(
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

    def note_milestone(self, name: str) -> None:
        if name not in self.milestones:
            self.milestones[name] = round(time.perf_counter() - self.started, 3)

    def note_batch(self, result: BatchResult) -> None:
        self.note_actor(result.worker, result.seconds)
        parts = sum(f.page_range is not None for f in result.files)
        self.timeline.append({
            "actor": result.worker.actor_name,
            "t": round(time.perf_counter() - self.started, 3),
            "seconds": round(result.seconds, 3),  # the batch's time on its actor
            "files": len(result.files) - parts,
            "parts": parts,
            "pages": sum(len(f.pages) for f in result.files),
            "rss_mb": round(result.rss_mb, 1),
            # The driver's CPU seconds so far, all its threads and its dispatch loop's
            # alone (the loop bounds how many inputs a second one driver can take).
            "driver_cpu": round(time.process_time(), 3),
            "driver_loop_cpu": round(time.thread_time(), 3),
        })

    def note_restarts(self, restarts: dict[str, int]) -> None:
        for name, deaths in restarts.items():
            if name in self.actors:
                self.actors[name]["restarts"] = deaths

    def to_json(self, pipeline: str) -> dict:
        return {
            "pipeline": pipeline,
            "device": self.device,
            "inputs": self.files,
            "skipped": self.skipped,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "pages": self.pages,
            "wall_seconds": round(self.seconds, 3),
            "files_per_second": round(self.files_per_second, 4),
            "pages_per_second": round(self.pages / self.seconds, 4) if self.seconds else 0.0,
            "interrupted": self.interrupted,
            "recycled_actors": self.recycled,
            "milestones": self.milestones,
            "actors": self.actors,
            "failures": [f.one_line() for f in self.failures],
            "failure_records": [dataclasses.asdict(f) for f in self.failures],
            "timeline": self.timeline,
        }


def write_summary(pipeline: str, summary: RunSummary, folder: str) -> None:
    """summary.json in the output folder: the numbers of this run, per actor too; and
    report.html, the same as a page."""
    data = summary.to_json(pipeline)
    os.makedirs(folder, exist_ok=True)
    atomic_write_text(os.path.join(folder, SUMMARY_NAME), json.dumps(data, indent=2))
    try:
        from ray_ocr.report import write_report

        write_report(folder, data)
    except Exception as exc:  # noqa: BLE001 - a report problem must not fail a finished run
        logger.warning("could not write report.html: %s", exc)
