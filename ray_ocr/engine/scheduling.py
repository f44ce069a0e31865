"""Who runs which batch: the dispatcher's state and rules, as plain data (no Ray here).

One ``ActorRecord`` per pipeline actor holds all the dispatcher knows of it: its state,
its queue of batches in flight (oldest first: an actor runs its calls in the order
sent), its process generation, the tasks sent since its process (re)started, how often
its ``ready()`` failed, and the pid of the process being recycled.

States: ``starting`` (asked ``ready()``, not answered yet) -> ``up`` (takes batches)
-> ``draining`` (to be recycled: takes nothing new, finishes its queue) -> ``starting``
again once killed; any process death -> ``starting``; ``down`` when its ``ready()``
keeps failing (gone for good).

The rules (engine/dispatch.py applies them):

- Least loaded first: a batch goes to the up actor with the fewest batches in flight,
  so every actor gets a batch before any gets its prefetch batch (else the first
  parts of a split PDF queue up on one actor).
- Endgame: with fewer batches left than up actors, the last batches go only to actors
  with nothing queued (queued behind a long batch one could wait while another actor
  runs dry; prefetch only hides milliseconds of shipping).
- A page range of a split PDF goes only to an actor with nothing queued: its bytes are
  in the object store already, so queueing it behind another batch saves nothing and
  can leave a second actor idle (or still starting) while it waits.
- A crash suspect (``Batch.solo``) runs alone, on an actor with nothing queued, and
  nothing is queued behind it: its death is its own.
- Byte budget: no batch is sent while ``max_bytes_in_flight`` bytes are in flight
  (unless nothing is: one batch larger than the budget still runs).
- Recycling: after ``max_tasks_per_actor`` tasks (calls) or above
  ``max_actor_memory_mb`` after a batch, an actor drains, is killed with restart, and
  rejoins once a process with another pid answers ``ready()``; not with no work left.
- Crash attribution: of the batches sent to a process that died, those that failed
  with it are judged. One alone: it killed the process; its tasks are retried one by
  one (alone), each try counted, and quarantined at ``max_attempts`` as a
  ``Failure(stage="crash")``. Several: which one killed it is unknown (a finished
  batch's reply can die with the process), so no try is charged and each task reruns
  alone, where a death is unambiguous.
"""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from ray_ocr.errors import first_line
from ray_ocr.records import Failure, FileResult, Task

STARTING, UP, DRAINING, DOWN = "starting", "up", "draining", "down"
READY_FAILURES_LIMIT = 100  # ready() failing this often: the actor is gone for good
STALL_WARNING_SECONDS, STALL_WARNING_REPEAT = 120.0, 60.0


@dataclass
class Batch:
    batch_id: int
    tasks: list[Task]
    solo: bool = False  # a crash suspect: runs on an actor with nothing queued, nothing behind it


@dataclass(eq=False)  # compared by identity: two sends of one batch are two records
class Sent:
    """A batch in flight on one actor's process."""

    batch: Batch
    nbytes: int
    generation: int  # the actor's process generation when sent
    ref: Any = None  # the call's result (a Ray ObjectRef)


@dataclass
class ActorRecord:
    """One pipeline actor as the dispatcher knows it (states: see above)."""

    name: str
    handle: Any = None  # the Ray actor handle
    state: str = STARTING
    queue: list[Sent] = field(default_factory=list)  # in flight, oldest first
    generation: int = 0  # +1 at each death or recycle
    sent: int = 0  # tasks sent since its process (re)started
    ready_failures: int = 0
    old_pid: int | None = None  # the process being recycled (it may still answer ready())
    ready_ref: Any = None  # the pending ready() call while starting

    @property
    def load(self) -> int:
        return len(self.queue)

    @property
    def running_solo(self) -> bool:
        return any(s.batch.solo for s in self.queue)

    @property
    def drained(self) -> bool:
        return self.state == DRAINING and not self.queue

    def took(self, sent: Sent, max_tasks: int) -> None:
        """A batch was sent to it; at its ``max_tasks``-th it drains for recycling."""
        self.queue.append(sent)
        self.sent += 1
        if max_tasks and self.sent >= max_tasks and self.state == UP:
            self.state = DRAINING

    def restarting(self, old_pid: int | None = None) -> None:
        """Its process died or is being recycled (``old_pid``): a new one is coming."""
        self.generation += 1
        self.sent = 0
        self.old_pid = old_pid
        self.state = STARTING

    def answered(self, pid: int) -> bool:
        """Its ready() answered from process `pid`: up, unless that is the process being
        recycled (``ray.kill`` is asynchronous; then ask again)."""
        if pid == self.old_pid:
            return False
        self.state, self.old_pid, self.ready_failures, self.ready_ref = UP, None, 0, None
        return True

    def ready_failed(self) -> bool:
        """Its ready() failed (the call reached a dying process); true once it is down."""
        self.ready_failures += 1
        if self.ready_failures > READY_FAILURES_LIMIT:
            self.state = DOWN
        return self.state == DOWN


# -- the policies -----------------------------------------------------------------
def can_take(actor: ActorRecord, depth: int) -> bool:
    """Up, with room in its queue (`depth` = 1 + prefetch batches), no suspect on it."""
    return actor.state == UP and actor.load < depth and not actor.running_solo


def least_loaded(actors: list[ActorRecord], depth: int) -> ActorRecord | None:
    """The actor that can take a batch with the fewest in flight (the first on a tie)."""
    return min((a for a in actors if can_take(a, depth)), key=lambda a: a.load, default=None)


def in_endgame(actors: list[ActorRecord], batches_left: int, more_coming: bool) -> bool:
    """Fewer batches left (none more to come) than actors up."""
    return not more_coming and batches_left < sum(a.state == UP for a in actors)


def pick_actor(actors: list[ActorRecord], batch: Batch, depth: int, batches_left: int,
               more_coming: bool) -> ActorRecord | None:
    """Where `batch` goes now, or None: it waits (and the batches behind it too)."""
    if batch.solo:
        return next((a for a in actors if a.state == UP and not a.queue), None)
    if any(task.page_range is not None for task in batch.tasks):
        # A page range of a split PDF: seconds of work whose bytes are already in the
        # object store (prefetching it saves nothing), so it never waits behind another
        # batch while a second actor could take it, or is still starting up.
        return next((a for a in actors if can_take(a, depth) and not a.queue), None)
    actor = least_loaded(actors, depth)
    if actor is not None and actor.queue and in_endgame(actors, batches_left, more_coming):
        return None  # the last batches wait for an actor with nothing queued
    return actor


def over_byte_budget(actors: list[ActorRecord], max_bytes: int) -> bool:
    in_flight = [s for a in actors for s in a.queue]
    return bool(in_flight) and sum(s.nbytes for s in in_flight) >= max_bytes


def over_memory(rss_mb: float, max_actor_memory_mb: float) -> bool:
    return bool(max_actor_memory_mb) and rss_mb > max_actor_memory_mb


def attribute_crash(failed: list[Batch]) -> tuple[Batch | None, list[Task]]:
    """The batches that failed with a process (oldest first) -> the one to blame (it
    was alone), or None and the tasks to rerun alone, uncharged (several failed)."""
    if len(failed) == 1:
        return failed[0], []
    return None, [task for batch in failed for task in batch.tasks]


def charge_tries(tasks: list[Task], attempts: dict[Task, int], max_attempts: int
                 ) -> tuple[list[tuple[Task, int]], list[tuple[Task, int]]]:
    """Tasks of a batch blamed for a crash -> (to retry, with their next try number),
    (to quarantine, with the tries they had). `attempts` holds tries so far (default 1)."""
    retry, quarantine = [], []
    for task in tasks:
        tries = attempts.get(task, 1)
        if tries >= max_attempts:
            quarantine.append((task, tries))
        else:
            retry.append((task, tries + 1))
    return retry, quarantine


def crash_record(task: Task, tries: int, exc: BaseException) -> FileResult:
    failure = Failure(key=task.key, stage="crash", error_type=type(exc).__name__,
                      message=f"the pipeline process died on each of {tries} tries ({first_line(exc)})",
                      attempts=tries)
    return FileResult(key=task.key, failure=failure, page_range=task.page_range)


def stall_warning_due(waited: float, warned: int) -> bool:
    """No actor up for `waited` s and `warned` warnings so far: warn again now?"""
    return waited >= STALL_WARNING_SECONDS + STALL_WARNING_REPEAT * warned


# -- the queue of batches waiting for an actor ------------------------------------
class BatchQueue:
    """Batches not yet sent, in order. Task sources are read lazily: ``refill`` pulls
    only up to `target` batches queued (a folder walk is read as the actors need it)."""

    def __init__(self, target: int):
        self.target = target
        self._batches: collections.deque[Batch] = collections.deque()
        self._sources: list[Iterator[list[Task]]] = []
        self._ids = itertools.count()

    def add(self, tasks: Iterable[Task], batch_size: int) -> None:
        self._sources.append(_batched(iter(tasks), batch_size))

    def refill(self) -> None:
        while self._sources and len(self._batches) < self.target:
            tasks = next(self._sources[0], None)
            if tasks is None:
                self._sources.pop(0)
            else:
                self._batches.append(Batch(next(self._ids), tasks))

    def put_front(self, tasks: list[Task], solo: bool = False) -> None:
        """Each task as a batch of its own, at the front, in the order given."""
        for task in reversed(tasks):
            self._batches.appendleft(Batch(next(self._ids), [task], solo))

    def return_front(self, batch: Batch) -> None:
        self._batches.appendleft(batch)

    def head(self) -> Batch:
        return self._batches[0]

    def pop(self) -> Batch:
        return self._batches.popleft()

    def clear(self) -> bool:
        """Drop everything not yet sent; true if anything was."""
        dropped = bool(self._batches or self._sources)
        self._batches.clear()
        self._sources.clear()
        return dropped

    @property
    def more_coming(self) -> bool:
        """Sources not yet read to their end."""
        return bool(self._sources)

    def __len__(self) -> int:
        return len(self._batches)


def _batched(tasks: Iterator[Task], size: int) -> Iterator[list[Task]]:
    while batch := list(itertools.islice(tasks, size)):
        yield batch
