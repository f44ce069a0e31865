"""The one place where the pipeline runner becomes a Ray actor with its resources."""

from __future__ import annotations

import logging
import os
import time

from ray_ocr.engine.placement import ActorSlot
from ray_ocr.errors import first_line
from ray_ocr.models.runner import RunnerSpec
from ray_ocr.records import BatchResult, InputItem, WorkerInfo

logger = logging.getLogger(__name__)


class PipelineActor:
    """Holds one PipelineRunner for the life of its process.

    A failed build is kept as a message (returned by ``ready``) instead of raised, so
    the driver can print one line instead of Ray's remote traceback.
    """

    def __init__(self, spec: RunnerSpec, name: str, model_store: str | None = None):
        import ray

        from ray_ocr.models.runner import PipelineRunner

        self._name = name
        ctx = ray.get_runtime_context()
        self._worker = WorkerInfo(
            actor_name=name,
            node_id=ctx.get_node_id(),
            pid=os.getpid(),
            gpu_ids=tuple(str(g) for g in ray.get_gpu_ids()),
            cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        )
        self._build_error: str | None = None
        self._runner = None
        try:
            if model_store is not None:  # the driver's models, for nodes that cannot download them
                from ray_ocr.engine.model_store import with_shipped_models

                spec = with_shipped_models(spec, model_store)  # (only those this node lacks)
            self._runner = PipelineRunner(spec)
        except Exception as exc:
            self._build_error = f"{type(exc).__name__}: {first_line(exc)}"

    def ready(self) -> tuple[WorkerInfo, str | None]:
        return self._worker, self._build_error

    def process(self, batch_id: int, wire_items: list[list]) -> BatchResult:
        """`wire_items`: InputItem.to_wire() of each input of the batch."""
        started = time.perf_counter()
        if self._runner is None:
            raise RuntimeError(self._build_error)
        items = [InputItem.from_wire(wire) for wire in wire_items]
        files = self._runner.process_batch(_resolve_shared_bytes(items))
        return BatchResult(batch_id, tuple(files), self._worker, time.perf_counter() - started,
                           rss_mb=_rss_mb())


def _resolve_shared_bytes(items: list[InputItem]) -> list[InputItem]:
    """The parts of a split PDF carry a reference to its bytes (put once by the driver)."""
    import dataclasses

    import ray

    return [dataclasses.replace(item, data=ray.get(item.data)) if isinstance(item.data, ray.ObjectRef) else item
            for item in items]


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class ActorGroup(dict):
    """{actor name: handle}, and the store of the models shipped to them (this run's
    own, engine/model_store.py), which ``release`` (or leaving ``with``) ends: whoever
    started the actors releases them, once the run is over or its setup failed."""

    model_store: str | None = None

    def __enter__(self) -> "ActorGroup":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """(Once is enough; again does nothing.)"""
        from ray_ocr.engine.model_store import remove_store

        if self.model_store is not None:
            remove_store(self.model_store)
            self.model_store = None


def start_actors(slots: list[ActorSlot], spec: RunnerSpec, max_restarts: int = -1,
                 ship_models: bool = False) -> ActorGroup:
    """Start one actor per slot. Ray restarts a dead actor (``max_restarts``); the
    driver, not Ray, retries its batch, so it can count attempts per file."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    remote_cls = ray.remote(PipelineActor)
    actors = ActorGroup()
    if ship_models:
        from ray_ocr.engine.model_store import ship_models as store_models

        actors.model_store = store_models(spec, for_serve=False)
    try:
        for slot in slots:
            options = dict(name=slot.name, max_restarts=max_restarts, max_task_retries=0, **slot.ray_resources())
            if slot.node_id is not None:
                options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(slot.node_id, soft=True)
            actors[slot.name] = remote_cls.options(**options).remote(slot.placed(spec), slot.name, actors.model_store)
    except BaseException:
        actors.release()
        raise
    return actors


def start_pipeline_actors(cluster, spec: RunnerSpec, options) -> ActorGroup:
    """Plan the actors for the cluster (engine/placement.py) and start them: what
    ``ray_ocr.run_batch`` and ``ray_ocr.predict`` do once Ray is up. `options`: a
    config of ray_ocr/config.py (device, instances, GPU and CPU shares)."""
    from ray_ocr.engine.placement import nodes_for, plan_for

    slots = plan_for(options, cluster)
    actors = start_actors(slots, spec, ship_models=cluster.ships_models)
    logger.info("starting %d %s actor(s) on %d node(s)", len(actors), options.pipeline.display_name,
                nodes_for(slots, cluster))
    return actors
