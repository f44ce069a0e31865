"""BatchDispatcher: hands batches to pipeline actors through a ray.util.ActorPool.

- An actor joins the pool only once it is up (``ready``), so a slow or unschedulable
  actor never sits on work that others could do; the first actor up also tells
  whether the pipeline builds at all.
- Results come back unordered, as they finish.
- Prefetch: each actor sits in the pool as 1 + ``prefetch_batches`` slots, so its next
  batch (bytes included) already waits in its queue while it computes the current one.
- Work is a queue of Tasks: whole files, or page ranges of a long PDF (``read`` may
  answer a task with several parts; they go to the front of the queue, one per batch,
  so the pages of one PDF run on several actors at once).
- A batch whose actor died (segfault, OOM kill, node lost) is split and retried task
  by task; Ray restarts the actor (``max_restarts``) and it rejoins the pool. A file
  whose tries reach ``max_attempts`` is quarantined as a failure record.
- A stop request (SIGINT/SIGTERM) stops dispatching; batches in flight still land.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from ray_ocr.errors import SetupError
from ray_ocr.records import BatchResult, Failure, FileResult, InputItem, Task, WorkerInfo

logger = logging.getLogger(__name__)


@dataclass
class Batch:
    batch_id: int
    tasks: list[Task]
    solo: bool = False  # run on an actor with nothing queued behind it (crash suspects)


def _batched(tasks: Iterator[Task], size: int) -> Iterator[list[Task]]:
    while batch := list(itertools.islice(tasks, size)):
        yield batch


class _Slot:
    """One place in an actor's task queue. The pool hands work to slots, so an actor
    with two slots has its next batch queued while it runs the current one."""

    __slots__ = ("actor", "index")

    def __init__(self, actor, index: int):
        self.actor, self.index = actor, index

    def __repr__(self) -> str:
        return f"_Slot({self.actor}, {self.index})"


@dataclass
class _InFlight:
    batch: Batch
    actor: object
    generation: int  # the actor's deaths seen when the batch was sent
    seq: int  # submission order: an actor runs its queue in this order


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

        self.group = actors  # holds what restarting actors need (shipped models)
        self.actors = list(actors.values())
        self.name_of = {handle: name for name, handle in actors.items()}
        self.slots = {a: [_Slot(a, i) for i in range(1 + max(0, prefetch_batches))] for a in self.actors}
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
        self.sent_since_start: collections.Counter = collections.Counter()  # actor -> tasks sent
        self.recycled = 0
        self.recycle_wanted: set = set()  # actors to recycle once their queue is empty
        self.benched: dict = {}  # actor -> its slots kept out while a suspect runs on it
        self.old_pid: dict = {}  # actor -> pid of the process being recycled
        self.ready_failures: collections.Counter = collections.Counter()
        self.stop = stop or threading.Event()
        self.pool = ActorPool([])
        self.pending: collections.deque[Batch] = collections.deque()
        self._sources: list[Iterator[list[Task]]] = []  # lazily read task batches
        self.waiting_ready: dict = {a.ready.remote(): a for a in self.actors}  # ref -> actor not up
        self.in_flight: dict = {}  # ObjectRef -> _InFlight
        self.generation: collections.Counter = collections.Counter()  # actor -> deaths seen
        self.ref_of_batch: dict[int, object] = {}
        self.next_batch_id = 0
        self.submitted = 0
        self.interrupted = False

    # -- queue ------------------------------------------------------------------
    def add_keys(self, keys: Iterable[str], batch_size: int) -> None:
        self.add_tasks((Task(key) for key in keys), batch_size)

    def add_tasks(self, tasks: Iterable[Task], batch_size: int) -> None:
        """Queue `tasks` in batches of `batch_size`. Taken lazily: an iterator (a folder
        walk) is only read as far as the queue needs (a few batches per slot)."""
        self._sources.append(_batched(iter(tasks), batch_size))

    def _refill(self) -> None:
        """Keep a few batches per slot queued, pulled from the task sources."""
        want = 2 * sum(len(s) for s in self.slots.values())
        while self._sources and len(self.pending) < want and not self.stop.is_set():
            batch = next(self._sources[0], None)
            if batch is None:
                self._sources.pop(0)
            else:
                self._enqueue(batch)

    def _has_work(self) -> bool:
        if not self.pending:
            self._refill()
        return bool(self.pending)

    def _enqueue(self, tasks: list[Task], front: bool = False, solo: bool = False) -> None:
        batch = Batch(self.next_batch_id, list(tasks), solo)
        self.next_batch_id += 1
        (self.pending.appendleft if front else self.pending.append)(batch)

    def _forget(self, ref) -> _InFlight:
        entry = self.in_flight.pop(ref)
        self.ref_of_batch.pop(entry.batch.batch_id, None)
        self.bytes_in_flight -= self.batch_bytes.pop(entry.batch.batch_id, 0)
        return entry

    def _busy(self, actor) -> bool:
        return any(entry.actor == actor for entry in self.in_flight.values())

    # -- actors -----------------------------------------------------------------
    def _submit(self, slot: _Slot, batch_and_items):
        batch, items = batch_and_items
        ref = slot.actor.process.remote(batch.batch_id, items)
        self.submitted += 1
        self.sent_since_start[slot.actor] += 1
        if self.max_tasks_per_actor and self.sent_since_start[slot.actor] >= self.max_tasks_per_actor:
            self.recycle_wanted.add(slot.actor)  # its N-th task: no more for this process
        self.in_flight[ref] = _InFlight(batch, slot.actor, self.generation[slot.actor], self.submitted)
        self.ref_of_batch[batch.batch_id] = ref
        return ref

    def _admit_ready(self, block: bool) -> None:
        """Put actors that are up into the pool; block for at least one if asked."""
        import ray

        if not self.waiting_ready:
            return
        ready, since, warn_at = [], time.monotonic(), 120.0  # seconds with no actor up
        while not ready:
            refs = list(self.waiting_ready)
            # In slices: a stop request is honoured while no actor can be placed.
            ready, _ = ray.wait(refs, num_returns=1 if block else len(refs), timeout=1.0 if block else 0)
            if not block or self.stop.is_set():
                break
            waited = time.monotonic() - since
            if not ready and waited >= warn_at:
                warn_at = waited + 60
                logger.warning("no pipeline actor up after %.0f s: still building the pipeline, or no room "
                               "on the cluster for their resources (see `ray status`)", waited)
        for ref in ready:
            actor = self.waiting_ready.pop(ref)
            try:
                worker, build_error = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                # Restarting: a call that reached the dying process fails; ask again
                # (with max_restarts=-1 Ray brings it back when a node has room).
                self.ready_failures[actor] += 1
                logger.debug("%s not ready: %s: %s", self.name_of[actor], type(exc).__name__,
                             str(exc).strip().splitlines()[0])
                if self.ready_failures[actor] > 100:
                    logger.warning("%s is gone for good: %s", self.name_of[actor],
                                   str(exc).strip().splitlines()[0])
                    continue
                time.sleep(0.05 * min(self.ready_failures[actor], 20))
                self.waiting_ready[actor.ready.remote()] = actor
                continue
            if build_error:
                raise SetupError(f"cannot build the {self.pipeline_name} pipeline: {build_error}")
            if self.old_pid.get(actor) == worker.pid:
                # ray.kill is asynchronous: the old process answered; ask the new one.
                self.waiting_ready[actor.ready.remote()] = actor
                continue
            self.old_pid.pop(actor, None)
            self.ready_failures.pop(actor, None)
            self.on_actor(worker)
            self.benched.pop(actor, None)
            self._push_slots(actor)

    def _push_slots(self, actor) -> None:
        for slot in self.slots[actor]:
            try:
                self.pool.push(slot)
            except ValueError:
                pass  # still in the pool (idle, or its failed task not yet collected)

    def _take_idle(self) -> list[_Slot]:
        """Every idle slot, out of the pool (to reorder or hold back; push to return)."""
        idle = []
        while (slot := self.pool.pop_idle()) is not None:
            idle.append(slot)
        return idle

    def _withdraw_down_actors(self) -> None:
        """No work for an actor that is not up: take its slots out of the idle list
        (ActorPool keeps a restarting actor's slot idle after some errors)."""
        down = set(self.waiting_ready.values()) | self.recycle_wanted
        if not down:
            return
        idle = self._take_idle()
        for slot in idle:
            if slot.actor not in down:
                self.pool.push(slot)

    def _handle_failed_task(self) -> None:
        """ActorPool raised for some task without saying which: find failed refs."""
        import ray

        if not self.in_flight:
            return
        ready, _ = ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=0)
        for ref in ready:
            if ref not in self.in_flight:
                continue  # handled with an earlier failure of the same actor
            try:
                ray.get(ref, timeout=0)
                continue  # finished fine; the pool hands it over later
            except ray.exceptions.RayTaskError as exc:  # the method raised; the actor lives
                entry = self._forget(ref)
                logger.debug("batch %d raised: %s", entry.batch.batch_id, exc)
                self._unbench(entry.actor)
                if entry.actor in self.recycle_wanted and not self._busy(entry.actor):
                    # Drained, but with an error: no result to recycle it on; its next
                    # task marks it again.
                    self.recycle_wanted.discard(entry.actor)
                    self._push_slots(entry.actor)
                self._retry_or_quarantine(entry.batch, exc)
            except Exception as exc:  # noqa: BLE001 - the actor's process is gone
                logger.debug("batch %d lost its actor: %s", self.in_flight[ref].batch.batch_id,
                             type(exc).__name__)
                self._actor_died(ref, exc)

    def _actor_died(self, ref, exc: BaseException) -> None:
        """Blame the batch the process was running: of its batches sent to that process,
        the oldest that failed (an actor runs its queue in order; the ones behind never
        started). Those go back to the queue as they were; finished ones still count."""
        import ray

        entry = self.in_flight[ref]
        actor = entry.actor
        if entry.generation < self.generation[actor]:
            self.pending.appendleft(self._forget(ref).batch)  # sent to a process already dead
            return
        same_process = [r for r, e in self.in_flight.items()
                        if e.actor == actor and e.generation == entry.generation]
        # A death resolves all of them within moments; wait so a result that was on its
        # way is not mistaken for a failure.
        ray.wait(same_process, num_returns=len(same_process), timeout=10)
        failed = []
        for other_ref in same_process:
            try:
                ray.get(other_ref, timeout=0)
            except ray.exceptions.GetTimeoutError:
                continue  # unresolved: judged when it resolves (its generation is now old)
            except Exception:  # noqa: BLE001 - failed with the process
                failed.append((self.in_flight[other_ref].seq, other_ref))
        failed_refs = [r for _, r in sorted(failed)] or [ref]
        self.generation[actor] += 1
        self.restarts[self.name_of[actor]] += 1
        batches = [self._forget(r).batch for r in failed_refs]
        if len(batches) == 1:
            # Alone on its process: this batch killed it.
            logger.warning("%s died with batch %d (%d tasks); retrying them one by one",
                           self.name_of[actor], batches[0].batch_id, len(batches[0].tasks))
            self._retry_or_quarantine(batches[0], exc)
        else:
            # Which of them killed it is unknown (a finished batch's reply can die with
            # the process): no one is charged a try; each file reruns alone on an actor
            # with nothing queued, where a death is unambiguous.
            tasks = [t for b in batches for t in b.tasks]
            logger.warning("%s died with %d batches queued (%d tasks); rerunning each alone",
                           self.name_of[actor], len(batches), len(tasks))
            for task in reversed(tasks):
                self._enqueue([task], front=True, solo=True)
        if actor not in self.waiting_ready.values():
            self.waiting_ready[actor.ready.remote()] = actor  # rejoins once restarted

    def _retry_or_quarantine(self, batch: Batch, exc: BaseException) -> None:
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        quarantined = []
        for task in reversed(batch.tasks):
            tries = self.attempts.get(task, 1)
            if tries >= self.max_attempts:
                failure = Failure(
                    key=task.key, stage="crash", error_type=type(exc).__name__,
                    message=f"the pipeline process died on each of {tries} tries ({reason})",
                    attempts=tries,
                )
                quarantined.append(FileResult(key=task.key, failure=failure, subset=task.pages))
            else:
                self.attempts[task] = tries + 1
                # Alone, on an actor with nothing queued: a poison file takes no one down,
                # and its next death is its own.
                self._enqueue([task], front=True, solo=True)
        if quarantined:
            self.on_results(quarantined, None)

    # -- the loop ---------------------------------------------------------------
    def _dispatch_pending(self) -> None:
        self._withdraw_down_actors()
        self._refill()
        while self.pending and self.pool.has_free():
            if self.bytes_in_flight >= self.max_bytes_in_flight and self.in_flight:
                break  # bound the object store: wait for batches to come back first
            if self.pending[0].solo:
                if not self._reserve_whole_actor():
                    break  # a suspect waits for an actor with nothing queued
            elif self._least_loaded_last() > 0 and self._endgame():
                break  # the last batches go to actors with nothing queued, see _endgame
            batch = self.pending.popleft()
            items, unread, parts = [], [], []
            for task in batch.tasks:
                got = self.read(task)
                if isinstance(got, list):  # a long PDF, split: its first part rides here
                    items.append(got[0])
                    parts.extend(got[1:])
                else:
                    (items if isinstance(got, InputItem) else unread).append(got)
            for part in reversed(parts):
                self._enqueue([part.task], front=True)
            if unread:
                self.on_results(unread, None)
            self._refill()
            if items:
                batch.tasks = [item.task for item in items]
                size = sum(item.nbytes for item in items)
                self.batch_bytes[batch.batch_id] = size
                self.bytes_in_flight += size
                self.pool.submit(self._submit, (batch, items))
                if self.recycle_wanted:
                    self._withdraw_down_actors()

    def _least_loaded_last(self) -> int:
        """``pool.submit`` takes the last idle slot: make it one of the actor with the
        fewest batches in flight, so every actor gets a batch before any gets its
        prefetch batch (else the first pages of a split PDF queue up on one actor).
        Returns that actor's batches in flight."""
        idle = self._take_idle()
        load = collections.Counter(entry.actor for entry in self.in_flight.values())
        idle.sort(key=lambda slot: (-load[slot.actor], -slot.index))
        for slot in idle:
            self.pool.push(slot)
        return load[idle[-1].actor] if idle else 0

    def _endgame(self) -> bool:
        """Fewer batches left than actors: a batch queued behind a busy actor's current
        one could wait there while another actor runs dry (a tail of a whole batch).
        Prefetch only hides the shipping of the next batch, milliseconds on one machine,
        so the last batches wait in the driver for an actor with nothing queued."""
        if self._sources:
            return False
        return len(self.pending) < len(self.actors) - len(self.waiting_ready)

    def _reserve_whole_actor(self) -> bool:
        """Make the next ``pool.submit`` go to an actor none of whose slots is busy, and
        bench its other slots until that batch is back (no prefetch behind a suspect)."""
        idle = self._take_idle()
        chosen = None
        for slot in idle:
            siblings = self.slots[slot.actor]
            if not self._busy(slot.actor) and all(s in idle for s in siblings):
                chosen = slot
                break
        for slot in idle:
            if chosen is None or slot.actor != chosen.actor:
                self.pool.push(slot)
        if chosen is None:
            return False
        self.benched[chosen.actor] = [s for s in self.slots[chosen.actor] if s is not chosen]
        self.pool.push(chosen)  # last in, first out: pool.submit takes this one
        return True

    def _unbench(self, actor) -> None:
        for slot in self.benched.pop(actor, []):
            try:
                self.pool.push(slot)
            except ValueError:
                pass

    def _collect_one(self, timeout: float) -> None:
        import ray

        try:
            result: BatchResult = self.pool.get_next_unordered(timeout=timeout)
        except TimeoutError:
            return
        except ray.exceptions.RayError:
            self._handle_failed_task()
            return
        ref = self.ref_of_batch.get(result.batch_id)
        if ref is None or ref not in self.in_flight:
            return  # already retried as a failure
        actor = self._forget(ref).actor
        if actor not in set(self.waiting_ready.values()) | self.recycle_wanted:
            self._unbench(actor)
        self.on_batch(result)
        self._maybe_recycle(actor, result)

    def _maybe_recycle(self, actor, result: BatchResult) -> None:
        """Restart an actor's process after N tasks or above a memory threshold.

        Paddle pipelines grow on long runs (PaddleOCR #15738, #16173). Only between
        batches: the actor gets no new work, its queued batches finish, then it is
        killed with restart allowed and rejoins once Ray has started a fresh process;
        that is not counted as a retry of anything.
        """
        name = result.worker.actor_name
        if self.max_actor_memory_mb and result.rss_mb > self.max_actor_memory_mb:
            self.recycle_wanted.add(actor)
        if actor not in self.recycle_wanted or self._busy(actor):
            return  # draining: no new work reaches it (see _withdraw_down_actors)
        self.recycle_wanted.discard(actor)
        if not self._has_work():
            self._push_slots(actor)  # nothing left to give it: a fresh process would be wasted
            return
        import ray

        logger.info("recycling %s after %d tasks (%.0f MB resident)", name,
                    self.sent_since_start[actor], result.rss_mb)
        self.sent_since_start[actor] = 0
        self.recycled += 1
        self.restarts[name] += 1
        self.generation[actor] += 1
        self.old_pid[actor] = result.worker.pid
        ray.kill(actor, no_restart=False)
        self.waiting_ready[actor.ready.remote()] = actor
        self._withdraw_down_actors()

    def run(self) -> None:
        """Until every batch is done (or stopped): dispatch, collect, recover."""
        for _ in self.steps():
            pass

    def steps(self) -> Iterator[None]:
        """The dispatch loop, one iteration per step (at least one a second), so a
        caller can consume results as they come (``ray_ocr.predict``) or show progress."""
        self._admit_ready(block=True)
        while True:
            if self.stop.is_set() and (self.pending or self._sources):
                self.interrupted = True  # what is in flight still lands
                self.pending.clear()
                self._sources.clear()
            if not (self._has_work() or self.pool.has_next()):
                break
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
