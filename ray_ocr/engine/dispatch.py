"""BatchDispatcher: hands batches to the pipeline actors through a ray.util.ActorPool.

The loop (``steps``), once a step, at least once a second:

1. admit: actors whose ``ready()`` answered are up (the first answer also tells
   whether the pipeline builds at all: ``SetupError`` if not). With nothing in flight
   and no actor up it waits for one, 1 s at a time, warning after 120 s.
2. dispatch: queued batches go to actors while the rules allow (below). A batch's
   inputs are read only now (``read``): a read failure is reported at once; a long PDF
   read as parts sends its first part with this batch and queues the others at the
   front, one per batch, so its pages run on several actors at once.
3. collect: one finished batch from the pool, as they finish (unordered); a failed one
   is retried or blamed (below).

The rules, as functions over plain records in engine/scheduling.py (one
``ActorRecord`` per actor: state, batches in flight, process generation, ...):

- least loaded first: every actor gets a batch before any gets its prefetch batch;
- endgame: with fewer batches left than actors up, only actors with nothing queued
  get one;
- a crash suspect runs alone on an actor with nothing queued, nothing behind it;
- byte budget: nothing is sent above ``max_bytes_in_flight`` while something is in flight;
- recycling: after ``max_tasks_per_actor`` tasks or above ``max_actor_memory_mb``, an
  actor drains, is killed with restart and rejoins when a new process answers;
- crash attribution: when a process dies, of the batches sent to it those that failed
  are judged: one alone is retried task by task, each try counted, and quarantined at
  ``max_attempts`` (``Failure(stage="crash")``); several are rerun task by task, alone,
  with no try charged. Ray restarts the actor (``max_restarts``) and it rejoins.

The pool sends each batch (``submit``) and hands results back (``get_next_unordered``);
who gets a batch is the rules' decision, so the pool is offered only the chosen
actor's slot before each ``submit`` and holds no state of its own that matters.

A stop request (``stop``, the CLI's SIGINT/SIGTERM) ends dispatching, also while no
actor can be placed; batches in flight still land, and ``interrupted`` is set.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Callable, Iterable, Iterator

from ray_ocr.engine.scheduling import (DOWN, DRAINING, STARTING, UP, ActorRecord, Batch, BatchQueue, Sent,
                                       attribute_crash, charge_tries, crash_record, over_byte_budget, over_memory,
                                       pick_actor, stall_warning_due)
from ray_ocr.errors import SetupError, first_line
from ray_ocr.records import BatchResult, FileResult, InputItem, Task, WorkerInfo

logger = logging.getLogger(__name__)


class _Slot:
    """What the pool holds: a place on one actor for one batch."""

    __slots__ = ("actor",)

    def __init__(self, actor: ActorRecord):
        self.actor = actor


class BatchDispatcher:
    def __init__(
        self,
        actors: dict,
        pipeline_name: str,
        *,
        read: Callable[[Task], InputItem | FileResult | list[InputItem]],
        on_batch: Callable[[BatchResult], None],
        on_results: Callable[[list[FileResult], WorkerInfo | None], None],
        on_actor: Callable[[WorkerInfo], None],
        attempts: dict[Task, int],
        max_attempts: int,
        stop: threading.Event | None = None,
        max_tasks_per_actor: int = 0,
        max_actor_memory_mb: float = 0,
        max_bytes_in_flight: int = 1 << 30,
        prefetch_batches: int = 1,
    ):
        from ray.util import ActorPool

        self.records = [ActorRecord(name, handle) for name, handle in actors.items()]
        self.pipeline_name = pipeline_name
        self.read, self.on_batch, self.on_results, self.on_actor = read, on_batch, on_results, on_actor
        self.attempts, self.max_attempts = attempts, max_attempts
        self.stop = stop or threading.Event()
        self.max_tasks_per_actor, self.max_actor_memory_mb = max_tasks_per_actor, max_actor_memory_mb
        self.max_bytes_in_flight = max_bytes_in_flight
        self.depth = 1 + max(0, prefetch_batches)  # batches an actor holds: the one it runs, the next
        self.queue = BatchQueue(target=2 * self.depth * len(self.records))
        self.pool = ActorPool([])
        self.restarts: collections.Counter = collections.Counter()  # actor name -> process deaths
        self.recycled = self.submitted = 0
        self.interrupted = False
        self._stalled_since: float | None = None  # since when no actor is up (nothing in flight)
        self._stall_warnings = 0
        for actor in self.records:
            self._ask_ready(actor)

    # -- the public side --------------------------------------------------------------
    def add_keys(self, keys: Iterable[str], batch_size: int) -> None:
        self.add_tasks((Task(key) for key in keys), batch_size)

    def add_tasks(self, tasks: Iterable[Task], batch_size: int) -> None:
        """Queue `tasks` in batches of `batch_size`, taken lazily: an iterator (a folder
        walk) is read only as far as the queue needs (about two batches per slot)."""
        self.queue.add(tasks, batch_size)

    @property
    def batches_in_flight(self) -> int:
        return sum(actor.load for actor in self.records)

    def run(self) -> None:
        """Until every batch is done (or stopped): dispatch, collect, recover."""
        for _ in self.steps():
            pass

    def steps(self) -> Iterator[None]:
        """The dispatch loop, one iteration per step (at least one a second), so a caller
        can consume results as they come (``ray_ocr.predict``) or show progress."""
        while self._has_work() or self.batches_in_flight:
            self._admit()
            self._dispatch()
            if self.pool.has_next():
                self._collect(timeout=1.0)
            yield

    def shutdown(self) -> None:
        import ray

        for actor in self.records:  # free their resources now, not when handles are collected
            try:
                ray.kill(actor.handle, no_restart=True)
            except Exception as exc:  # noqa: BLE001 - already gone is fine
                logger.debug("kill %s: %s", actor.name, exc)

    # -- 1. admit -------------------------------------------------------------------
    def _admit(self) -> None:
        """Actors that answered ready() are up. With nothing in flight and no actor up,
        wait for one (1 s at most: a stop is honoured in between), warning when that
        lasts; with every actor down, give up."""
        if self.batches_in_flight or self._any_up():
            self._stalled_since, self._stall_warnings = None, 0
            self._admit_ready(wait=0)
            return
        if all(actor.state == DOWN for actor in self.records):
            from ray_ocr.engine.cluster import auth_hint

            raise SetupError("no pipeline actor is left to run the remaining inputs" + auth_hint())
        self._stalled_since = self._stalled_since or time.monotonic()
        self._admit_ready(wait=1.0)
        waited = time.monotonic() - self._stalled_since
        if not self._any_up() and stall_warning_due(waited, self._stall_warnings):
            self._stall_warnings += 1
            logger.warning("no pipeline actor up after %.0f s: still building the pipeline, or no room "
                           "on the cluster for their resources (see `ray status`)", waited)

    def _any_up(self) -> bool:
        return any(actor.state == UP for actor in self.records)

    def _admit_ready(self, wait: float) -> None:
        import ray

        starting = {actor.ready_ref: actor for actor in self.records if actor.state == STARTING}
        if not starting:
            return
        ready, _ = ray.wait(list(starting), num_returns=len(starting), timeout=0)
        if not ready and wait:
            ready, _ = ray.wait(list(starting), num_returns=1, timeout=wait)
        for ref in ready:
            self._on_ready(starting[ref])

    def _on_ready(self, actor: ActorRecord) -> None:
        import ray

        try:
            worker, build_error = ray.get(actor.ready_ref)
        except ray.exceptions.RayActorError as exc:
            # Restarting: a call that reached the dying process fails; ask again (with
            # max_restarts=-1 Ray brings it back when a node has room).
            logger.debug("%s not ready: %s: %s", actor.name, type(exc).__name__, first_line(exc))
            if actor.ready_failed():
                logger.warning("%s is gone for good: %s", actor.name, first_line(exc))
                return
            time.sleep(0.05 * min(actor.ready_failures, 20))
            self._ask_ready(actor)
            return
        if build_error:
            raise SetupError(f"cannot build the {self.pipeline_name} pipeline: {build_error}")
        if actor.answered(worker.pid):
            self.on_actor(worker)
        else:
            self._ask_ready(actor)  # the process being recycled answered: ask the new one

    @staticmethod
    def _ask_ready(actor: ActorRecord) -> None:
        actor.ready_ref = actor.handle.ready.remote()

    # -- 2. dispatch ----------------------------------------------------------------
    def _has_work(self) -> bool:
        """Batches queued (topped up from the sources); none once a stop is asked."""
        if self.stop.is_set():
            self.interrupted |= self.queue.clear()  # what is in flight still lands
        else:
            self.queue.refill()
        return bool(self.queue)

    def _dispatch(self) -> None:
        """Send queued batches while the rules let them go (scheduling.py)."""
        while self._has_work() and not over_byte_budget(self.records, self.max_bytes_in_flight):
            actor = pick_actor(self.records, self.queue.head(), self.depth,
                               batches_left=len(self.queue), more_coming=self.queue.more_coming)
            if actor is None:
                return  # the batch at the head waits, and those behind it
            batch = self.queue.pop()
            items = self._read(batch)
            if items:
                self._send(actor, batch, items)

    def _read(self, batch: Batch) -> list[InputItem]:
        """The batch's inputs. Read failures are reported now; the parts after the
        first of a split PDF go to the front of the queue, one per batch."""
        items, unread, parts = [], [], []
        for task in batch.tasks:
            got = self.read(task)
            if isinstance(got, list):
                items.append(got[0])
                parts.extend(part.task for part in got[1:])
            else:
                (items if isinstance(got, InputItem) else unread).append(got)
        self.queue.put_front(parts)
        if unread:
            self.on_results(unread, None)
        batch.tasks = [item.task for item in items]
        return items

    def _send(self, actor: ActorRecord, batch: Batch, items: list[InputItem]) -> None:
        """``pool.submit`` runs a batch on the slot it takes from its idle list: offer it
        the chosen actor's only (slots it took back from finished batches are dropped)."""
        while self.pool.pop_idle() is not None:
            pass
        self.pool.push(_Slot(actor))
        sent = Sent(batch, nbytes=sum(item.nbytes for item in items), generation=actor.generation)

        def call(slot: _Slot, batch_items: list[InputItem]):
            sent.ref = slot.actor.handle.process.remote(batch.batch_id, [item.to_wire() for item in batch_items])
            return sent.ref

        self.pool.submit(call, items)
        actor.took(sent, self.max_tasks_per_actor)
        self.submitted += 1

    # -- 3. collect -----------------------------------------------------------------
    def _collect(self, timeout: float) -> None:
        import ray

        try:
            result: BatchResult = self.pool.get_next_unordered(timeout=timeout)
        except TimeoutError:
            return
        except ray.exceptions.RayError:
            self._find_failures()  # the pool raises without saying for which batch
            return
        actor, sent = self._in_flight(result.batch_id)
        if sent is None:
            return  # already retried as a failure
        actor.queue.remove(sent)
        self.on_batch(result)
        if sent.generation == actor.generation:  # (not a late reply of a process since replaced)
            self._maybe_recycle(actor, result)

    def _in_flight(self, batch_id: int) -> tuple[ActorRecord | None, Sent | None]:
        found = ((a, s) for a in self.records for s in a.queue if s.batch.batch_id == batch_id)
        return next(found, (None, None))

    def _maybe_recycle(self, actor: ActorRecord, result: BatchResult) -> None:
        """Restart an actor's process once drained (after N tasks, or above the memory
        threshold). Paddle pipelines grow on long runs (PaddleOCR #15738, #16173). Only
        between batches, not with no work left; not counted as a retry of anything."""
        import ray

        if actor.state == UP and over_memory(result.rss_mb, self.max_actor_memory_mb):
            actor.state = DRAINING
        if not actor.drained:
            return
        if not self._has_work():
            actor.state = UP  # nothing left to give it: a fresh process would be wasted
            return
        logger.info("recycling %s after %d tasks (%.0f MB resident)", actor.name, actor.sent, result.rss_mb)
        self.recycled += 1
        self.restarts[actor.name] += 1
        actor.restarting(old_pid=result.worker.pid)
        ray.kill(actor.handle, no_restart=False)
        self._ask_ready(actor)

    def _find_failures(self) -> None:
        """Find the failed batches (resolved, raising) and recover from each failure."""
        import ray

        in_flight = {s.ref: (a, s) for a in self.records for s in a.queue}
        if not in_flight:
            return
        ready, _ = ray.wait(list(in_flight), num_returns=len(in_flight), timeout=0)
        for ref in ready:
            actor, sent = in_flight[ref]
            if sent not in actor.queue:
                continue  # handled with an earlier failure of its process
            try:
                ray.get(ref, timeout=0)
            except ray.exceptions.RayTaskError as exc:  # the method raised; the actor lives
                self._batch_raised(actor, sent, exc)
            except Exception as exc:  # noqa: BLE001 - its process is gone
                logger.debug("batch %d lost its actor: %s", sent.batch.batch_id, type(exc).__name__)
                self._process_died(actor, sent, exc)

    def _batch_raised(self, actor: ActorRecord, sent: Sent, exc: BaseException) -> None:
        logger.debug("batch %d raised: %s", sent.batch.batch_id, first_line(exc))
        actor.queue.remove(sent)
        if actor.drained:
            actor.state = UP  # no result to recycle it on: judged again after its next batch
        self._retry_or_quarantine(sent.batch.tasks, exc)

    def _process_died(self, actor: ActorRecord, sent: Sent, exc: BaseException) -> None:
        """Judge the batches that failed with `sent`'s process (scheduling.attribute_crash);
        the ones that finished still count. The actor rejoins once Ray has restarted it."""
        if sent.generation < actor.generation:  # its process was already judged: resend as it was
            actor.queue.remove(sent)
            self.queue.return_front(sent.batch)
            return
        failed = self._failed_with_process(actor, sent.generation) or [sent]
        for each in failed:
            actor.queue.remove(each)
        self.restarts[actor.name] += 1
        actor.restarting()
        self._ask_ready(actor)
        blamed, rerun = attribute_crash([each.batch for each in failed])
        if blamed is not None:  # alone on its process: it killed it
            logger.warning("%s died with batch %d (%d tasks); retrying them one by one",
                           actor.name, blamed.batch_id, len(blamed.tasks))
            self._retry_or_quarantine(blamed.tasks, exc)
        else:
            logger.warning("%s died with %d batches queued (%d tasks); rerunning each alone",
                           actor.name, len(failed), len(rerun))
            self.queue.put_front(rerun, solo=True)

    def _failed_with_process(self, actor: ActorRecord, generation: int) -> list[Sent]:
        """The batches sent to that process that failed, oldest first. A death resolves
        them all within moments: wait (10 s at most) so that a reply on its way is not
        taken for a failure; one still unresolved is judged when it resolves."""
        import ray

        same = [s for s in actor.queue if s.generation == generation]
        ray.wait([s.ref for s in same], num_returns=len(same), timeout=10)
        failed = []
        for each in same:
            try:
                ray.get(each.ref, timeout=0)
            except ray.exceptions.GetTimeoutError:
                continue
            except Exception:  # noqa: BLE001 - failed with the process
                failed.append(each)
        return failed

    def _retry_or_quarantine(self, tasks: list[Task], exc: BaseException) -> None:
        """Each task again, alone on an actor with nothing queued (a poison file takes no
        one down, and its next death is its own), or quarantined at max_attempts."""
        retry, quarantine = charge_tries(tasks, self.attempts, self.max_attempts)
        self.attempts.update(retry)
        self.queue.put_front([task for task, _ in retry], solo=True)
        if quarantine:
            self.on_results([crash_record(task, tries, exc) for task, tries in quarantine], None)
