"""BatchDispatcher: hands batches to pipeline actors through a ray.util.ActorPool.

- An actor joins the pool only once it is up (``ready``), so a slow or unschedulable
  actor never sits on work that others could do; the first actor up also tells
  whether the pipeline builds at all.
- Results come back unordered, as they finish.
- A batch whose actor died (segfault, OOM kill, node lost) is split and retried file
  by file; Ray restarts the actor (``max_restarts``) and it rejoins the pool. A file
  whose tries reach ``max_attempts`` is quarantined as a failure record.
- A stop request (SIGINT/SIGTERM) stops dispatching; batches in flight still land.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

from ray_ocr.records import BatchResult, Failure, FileResult, InputItem, WorkerInfo

logger = logging.getLogger(__name__)


class SetupError(RuntimeError):
    """The pipeline could not be built on the actors (model missing, bad parameter)."""


@dataclass
class Batch:
    batch_id: int
    keys: list[str]


class BatchDispatcher:
    def __init__(
        self,
        actors: dict,
        pipeline_name: str,
        *,
        read: Callable[[str], InputItem | FileResult],
        on_batch: Callable[[BatchResult], None],
        on_results: Callable[[list[FileResult], WorkerInfo | None], None],
        on_actor: Callable[[WorkerInfo], None],
        attempts: dict[str, int],
        max_attempts: int,
        stop: threading.Event | None = None,
        max_tasks_per_actor: int = 0,
        max_actor_memory_mb: float = 0,
        max_bytes_in_flight: int = 1 << 30,
    ):
        from ray.util import ActorPool

        self.actors = list(actors.values())
        self.name_of = {handle: name for name, handle in actors.items()}
        self.restarts: collections.Counter = collections.Counter()  # actor name -> process deaths
        self.pipeline_name = pipeline_name
        self.read = read
        self.on_batch = on_batch
        self.on_results = on_results
        self.on_actor = on_actor
        self.attempts = attempts
        self.max_attempts = max_attempts
        self.max_tasks_per_actor = max_tasks_per_actor
        self.max_actor_memory_mb = max_actor_memory_mb
        self.max_bytes_in_flight = max_bytes_in_flight
        self.bytes_in_flight = 0
        self.batch_bytes: dict[int, int] = {}
        self.tasks_since_start: collections.Counter = collections.Counter()
        self.recycled = 0
        self.old_pid: dict = {}  # actor -> pid of the process being recycled
        self.stop = stop or threading.Event()
        self.pool = ActorPool([])
        self.pending: collections.deque[Batch] = collections.deque()
        self.waiting_ready: dict = {a.ready.remote(): a for a in self.actors}
        self.in_flight: dict = {}  # ObjectRef -> (Batch, actor, actor generation at submit)
        self.generation: collections.Counter = collections.Counter()  # actor -> deaths seen
        self.ref_of_batch: dict[int, object] = {}
        self.next_batch_id = 0
        self.interrupted = False

    # -- queue ------------------------------------------------------------------
    def add_keys(self, keys: list[str], batch_size: int) -> None:
        for i in range(0, len(keys), batch_size):
            self._enqueue(keys[i : i + batch_size])

    def _enqueue(self, keys: list[str], front: bool = False) -> None:
        batch = Batch(self.next_batch_id, list(keys))
        self.next_batch_id += 1
        (self.pending.appendleft if front else self.pending.append)(batch)

    # -- actors -----------------------------------------------------------------
    def _submit(self, actor, batch_and_items):
        batch, items = batch_and_items
        ref = actor.process.remote(batch.batch_id, items)
        self.in_flight[ref] = (batch, actor, self.generation[actor])
        self.ref_of_batch[batch.batch_id] = ref
        return ref

    def _admit_ready(self, block: bool) -> None:
        """Put actors that are up into the pool; block for at least one if asked."""
        import ray

        if not self.waiting_ready:
            return
        refs = list(self.waiting_ready)
        ready, _ = ray.wait(refs, num_returns=1 if block else len(refs), timeout=None if block else 0)
        for ref in ready:
            actor = self.waiting_ready.pop(ref)
            try:
                worker, build_error = ray.get(ref)
            except ray.exceptions.ActorUnavailableError:
                # Restarting (its process died): ask again; the call waits for the restart.
                self.waiting_ready[actor.ready.remote()] = actor
                continue
            except ray.exceptions.RayError as exc:
                logger.warning("an actor is gone for good: %s", str(exc).strip().splitlines()[0])
                continue
            if build_error:
                raise SetupError(f"cannot build the {self.pipeline_name} pipeline: {build_error}")
            if self.old_pid.get(actor) == worker.pid:
                # ray.kill is asynchronous: the old process answered; ask the new one.
                self.waiting_ready[actor.ready.remote()] = actor
                continue
            self.old_pid.pop(actor, None)
            self.on_actor(worker)
            try:
                self.pool.push(actor)
            except ValueError:
                pass  # still in the pool: its failure was not a death

    def _handle_failed_task(self) -> None:
        """ActorPool raised for some task without saying which: find failed refs."""
        import ray

        if not self.in_flight:
            return
        ready, _ = ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=0)
        for ref in ready:
            try:
                ray.get(ref, timeout=0)
                continue  # finished fine; the pool hands it over later
            except Exception as exc:  # noqa: BLE001 - any failure of the task
                batch, actor, generation = self.in_flight.pop(ref)
                self.ref_of_batch.pop(batch.batch_id, None)
                self.bytes_in_flight -= self.batch_bytes.pop(batch.batch_id, 0)
                error = exc
            if generation < self.generation[actor]:
                # Sent to a process whose death was already counted: not this batch's fault.
                self.pending.appendleft(batch)
                continue
            self.generation[actor] += 1
            self.restarts[self.name_of[actor]] += 1
            logger.warning("%s died with batch %d (%d files); retrying them one by one",
                           self.name_of[actor], batch.batch_id, len(batch.keys))
            self._retry_or_quarantine(batch, error)
            self._withdraw(actor)
            self.waiting_ready[actor.ready.remote()] = actor  # rejoins once restarted

    def _withdraw(self, actor) -> None:
        """Take one actor out of the pool's idle list (the pool keeps a restarting
        actor idle after some errors; it must not get work before it is up again)."""
        idle = []
        while (handle := self.pool.pop_idle()) is not None:
            if handle != actor:
                idle.append(handle)
        for handle in idle:
            self.pool.push(handle)

    def _retry_or_quarantine(self, batch: Batch, exc: BaseException) -> None:
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        quarantined = []
        for key in reversed(batch.keys):
            tries = self.attempts.get(key, 1)
            if tries >= self.max_attempts:
                failure = Failure(
                    key=key, stage="crash", error_type=type(exc).__name__,
                    message=f"the pipeline process died on each of {tries} tries ({reason})",
                    attempts=tries,
                )
                quarantined.append(FileResult(key=key, failure=failure))
            else:
                self.attempts[key] = tries + 1
                # Alone in its batch next time, so a poison file cannot take others down.
                self._enqueue([key], front=True)
        if quarantined:
            self.on_results(quarantined, None)

    # -- the loop ---------------------------------------------------------------
    def _dispatch_pending(self) -> None:
        while self.pending and self.pool.has_free():
            if self.bytes_in_flight >= self.max_bytes_in_flight and self.in_flight:
                break  # bound the object store: wait for batches to come back first
            batch = self.pending.popleft()
            items, unread = [], []
            for key in batch.keys:
                got = self.read(key)
                (items if isinstance(got, InputItem) else unread).append(got)
            if unread:
                self.on_results(unread, None)
            if items:
                batch.keys = [item.key for item in items]
                size = sum(len(item.data) for item in items)
                self.batch_bytes[batch.batch_id] = size
                self.bytes_in_flight += size
                self.pool.submit(self._submit, (batch, items))

    def _collect_one(self, timeout: float) -> None:
        import ray

        try:
            result: BatchResult = self.pool.get_next_unordered(timeout=timeout)
        except TimeoutError:
            return
        except ray.exceptions.RayError:
            self._handle_failed_task()
            return
        ref = self.ref_of_batch.pop(result.batch_id, None)
        entry = self.in_flight.pop(ref, None) if ref is not None else None
        self.bytes_in_flight -= self.batch_bytes.pop(result.batch_id, 0)
        if entry is None:
            return  # already retried as a failure
        actor = entry[1]
        self.on_batch(result)
        self._maybe_recycle(actor, result)

    def _maybe_recycle(self, actor, result: BatchResult) -> None:
        """Restart an actor's process after N tasks or above a memory threshold.

        Paddle pipelines grow on long runs (PaddleOCR #15738, #16173). The actor just
        returned to the pool's idle list; it is taken out, killed with restart allowed,
        and rejoins once Ray has started a fresh process. Never mid-task.
        """
        name = result.worker.actor_name
        self.tasks_since_start[name] += 1
        too_many = self.max_tasks_per_actor and self.tasks_since_start[name] >= self.max_tasks_per_actor
        too_big = self.max_actor_memory_mb and result.rss_mb > self.max_actor_memory_mb
        if not (too_many or too_big) or not self.pending:
            return  # nothing left to give it: a fresh process would be wasted
        import ray

        idle = self.pool.pop_idle()
        if idle is None:
            return
        if idle != actor:  # not the one that just finished: leave both alone this time
            self.pool.push(idle)
            return
        logger.info("recycling %s after %d tasks (%.0f MB resident)", name,
                    self.tasks_since_start[name], result.rss_mb)
        self.tasks_since_start[name] = 0
        self.recycled += 1
        self.restarts[name] += 1
        self.old_pid[actor] = result.worker.pid
        ray.kill(actor, no_restart=False)
        self.waiting_ready[actor.ready.remote()] = actor

    def run(self) -> None:
        """Until every batch is done (or stopped): dispatch, collect, recover."""
        for _ in self.steps():
            pass

    def steps(self) -> Iterator[None]:
        """The dispatch loop, one iteration per step (at least one a second), so a
        caller can consume results as they come (``ray_ocr.predict``) or show progress."""
        self._admit_ready(block=True)
        while self.pending or self.pool.has_next():
            if self.stop.is_set() and self.pending:
                self.interrupted = True
                self.pending.clear()
            if not self.pool.has_next() and not self.pool.has_free():
                if not self.waiting_ready:
                    raise SetupError("no pipeline actor is left to run the remaining inputs")
                self._admit_ready(block=True)
            self._admit_ready(block=False)
            self._dispatch_pending()
            if self.pool.has_next():
                self._collect_one(timeout=1.0)
            yield

    def shutdown(self) -> None:
        import ray

        for actor in self.actors:  # free their resources now, not when handles are collected
            try:
                ray.kill(actor, no_restart=True)
            except Exception as exc:  # noqa: BLE001 - already gone is fine
                logger.debug("kill %s: %s", actor, exc)
