"""The dispatcher's rules (engine/scheduling.py) over plain records, without Ray."""

import subprocess
import sys

import pytest

from ray_ocr.engine.scheduling import (DOWN, DRAINING, READY_FAILURES_LIMIT, STARTING, UP, ActorRecord, Batch,
                                       BatchQueue, Sent, attribute_crash, charge_tries, crash_record,
                                       over_byte_budget, over_memory, pick_actor, stall_warning_due)
from ray_ocr.records import Task

DEPTH = 2  # one batch running, one prefetched


def actors(*loads, state=UP):
    """Actors a, b, c, ... with that many (1-byte) batches in flight each."""
    records = []
    for i, load in enumerate(loads):
        record = ActorRecord(chr(ord("a") + i), state=state)
        record.queue = [Sent(Batch(100 * i + j, [Task(f"{i}_{j}")]), nbytes=1, generation=0) for j in range(load)]
        records.append(record)
    return records


def batch(solo=False):
    return Batch(0, [Task("x")], solo)


def send(actor, the_batch=None, nbytes=1, max_tasks=0):
    actor.took(Sent(the_batch or batch(), nbytes, actor.generation), max_tasks)


# -- least loaded first ---------------------------------------------------------------
def test_a_batch_goes_to_the_actor_with_the_fewest_in_flight():
    a, b, c = actors(1, 0, 1)
    assert pick_actor([a, b, c], batch(), DEPTH, batches_left=10, more_coming=True) is b


def test_ties_go_to_the_first_actor_and_a_full_one_takes_nothing():
    a, b = actors(1, 1)
    assert pick_actor([a, b], batch(), DEPTH, batches_left=10, more_coming=True) is a
    a, b = actors(2, 2)
    assert pick_actor([a, b], batch(), DEPTH, batches_left=10, more_coming=True) is None


def test_every_actor_gets_a_batch_before_any_gets_its_prefetch_batch():
    records = actors(0, 0, 0)
    picked = []
    for _ in range(6):
        actor = pick_actor(records, batch(), DEPTH, batches_left=10, more_coming=True)
        send(actor)
        picked.append(actor.name)
    assert picked == ["a", "b", "c", "a", "b", "c"]
    assert pick_actor(records, batch(), DEPTH, batches_left=10, more_coming=True) is None


@pytest.mark.parametrize("state", [STARTING, DRAINING, DOWN])
def test_only_actors_that_are_up_take_batches(state):
    [a] = actors(0, state=state)
    assert pick_actor([a], batch(), DEPTH, batches_left=10, more_coming=True) is None
    assert pick_actor([a], batch(solo=True), DEPTH, batches_left=10, more_coming=True) is None


# -- page ranges of a split PDF -------------------------------------------------------
def test_a_pdf_part_waits_for_an_actor_with_nothing_queued():
    """Even early in a run: queued behind part 1 on `a`, part 2 would wait there while
    `b` (busy for a moment, or still starting) would soon be free."""
    part = Batch(1, [Task("doc.pdf", (2, 3))])
    a, b = actors(1, 1)
    assert pick_actor([a, b], part, DEPTH, batches_left=50, more_coming=True) is None
    assert pick_actor([a, b], batch(), DEPTH, batches_left=50, more_coming=True) is a  # a whole file may queue
    b.queue.clear()
    assert pick_actor([a, b], part, DEPTH, batches_left=50, more_coming=True) is b
    a, = actors(1)
    starting = ActorRecord("s", state=STARTING)
    assert pick_actor([a, starting], part, DEPTH, batches_left=1, more_coming=False) is None


# -- endgame ----------------------------------------------------------------------------
def test_endgame_the_last_batches_wait_for_an_actor_with_nothing_queued():
    a, b = actors(1, 1)  # a long batch on a, a short one on b; one batch left
    assert pick_actor([a, b], batch(), DEPTH, batches_left=1, more_coming=False) is None
    b.queue.clear()  # b is done first: it gets the last batch
    assert pick_actor([a, b], batch(), DEPTH, batches_left=1, more_coming=False) is b


def test_no_endgame_while_more_batches_are_coming_or_enough_are_left():
    a, b = actors(1, 1)
    assert pick_actor([a, b], batch(), DEPTH, batches_left=1, more_coming=True) is a
    assert pick_actor([a, b], batch(), DEPTH, batches_left=2, more_coming=False) is a


def test_endgame_counts_only_actors_that_are_up():
    a, b = actors(1, 0)
    b.state = STARTING  # one actor up: one batch left is not fewer than actors up
    assert pick_actor([a, b], batch(), DEPTH, batches_left=1, more_coming=False) is a


# -- a suspect runs alone -------------------------------------------------------------
def test_a_suspect_goes_only_to_an_actor_with_nothing_queued():
    a, b = actors(1, 0)
    assert pick_actor([a, b], batch(solo=True), DEPTH, batches_left=5, more_coming=True) is b
    send(b)
    assert pick_actor([a, b], batch(solo=True), DEPTH, batches_left=5, more_coming=True) is None


def test_nothing_is_queued_behind_a_suspect():
    a, b = actors(0, 1)
    send(a, batch(solo=True))
    assert pick_actor([a, b], batch(), DEPTH, batches_left=5, more_coming=True) is b
    send(b)
    assert pick_actor([a, b], batch(), DEPTH, batches_left=5, more_coming=True) is None  # a has room, but no


# -- byte budget --------------------------------------------------------------------------
def test_byte_budget():
    a, b = actors(0, 0)
    assert not over_byte_budget([a, b], max_bytes=0)  # nothing in flight: one batch still goes
    send(a, nbytes=600)
    assert not over_byte_budget([a, b], max_bytes=1000)
    send(b, nbytes=400)
    assert over_byte_budget([a, b], max_bytes=1000)
    a.queue.clear()
    assert not over_byte_budget([a, b], max_bytes=1000)


# -- recycling --------------------------------------------------------------------------
def test_an_actor_drains_at_its_nth_task_and_rejoins_only_from_a_new_process():
    [a] = actors(0)
    send(a, max_tasks=2)
    assert a.state == UP
    send(a, max_tasks=2)
    assert a.state == DRAINING and not a.drained  # its queued batches still finish
    a.queue.clear()
    assert a.drained
    a.restarting(old_pid=41)
    assert (a.state, a.generation, a.sent, a.old_pid) == (STARTING, 1, 0, 41)
    assert not a.answered(41) and a.state == STARTING  # ray.kill is asynchronous: the old process
    assert a.answered(42) and (a.state, a.old_pid) == (UP, None)


def test_no_task_limit_never_drains():
    [a] = actors(0)
    for _ in range(50):
        send(a, max_tasks=0)
    assert a.state == UP


def test_memory_threshold():
    assert over_memory(1500.0, 1000)
    assert not over_memory(900.0, 1000)
    assert not over_memory(10_000.0, 0)  # 0: no threshold


def test_a_death_restarts_the_generation_and_the_task_count():
    [a] = actors(0)
    send(a, max_tasks=5)
    a.restarting()
    assert (a.state, a.generation, a.sent, a.old_pid) == (STARTING, 1, 0, None)
    assert a.answered(7) and a.state == UP


def test_an_actor_whose_ready_keeps_failing_is_down():
    [a] = actors(0, state=STARTING)
    for _ in range(READY_FAILURES_LIMIT):
        assert not a.ready_failed()
    assert a.ready_failed() and a.state == DOWN


# -- crash attribution ----------------------------------------------------------------
def test_a_batch_alone_on_a_dead_process_is_blamed():
    only = Batch(3, [Task("p"), Task("q")])
    assert attribute_crash([only]) == (only, [])


def test_several_batches_on_a_dead_process_rerun_each_task_alone_uncharged():
    first, second = Batch(1, [Task("a"), Task("b")]), Batch(2, [Task("c")])
    assert attribute_crash([first, second]) == (None, [Task("a"), Task("b"), Task("c")])


def test_tries_are_charged_and_a_task_is_quarantined_at_max_attempts():
    attempts = {Task("seen", (4, 5)): 3}
    retry, quarantine = charge_tries([Task("new"), Task("seen", (4, 5))], attempts, max_attempts=3)
    assert retry == [(Task("new"), 2)]
    assert quarantine == [(Task("seen", (4, 5)), 3)]


def test_a_poison_task_is_quarantined_after_exactly_max_attempts_deaths():
    """The poison task dies alone on every try; its batch-mate is charged once."""
    attempts, deaths, quarantined = {}, 0, []
    pending = [[Task("poison"), Task("innocent")]]
    while pending:
        tasks = pending.pop(0)
        if Task("poison") not in tasks:
            continue  # ran fine
        deaths += 1
        blamed, rerun = attribute_crash([Batch(deaths, tasks)])
        retry, quarantine = charge_tries(blamed.tasks, attempts, max_attempts=3)
        attempts.update(retry)
        pending += [[task] for task, _ in retry]
        quarantined += quarantine
    assert deaths == 3 and quarantined == [(Task("poison"), 3)]
    assert attempts == {Task("poison"): 3, Task("innocent"): 2}


def test_crash_record():
    result = crash_record(Task("doc.pdf", (4, 5, 6)), 3, RuntimeError("worker died\nmore detail"))
    assert result.key == "doc.pdf" and result.page_range == (4, 5, 6) and not result.ok
    failure = result.failure
    assert (failure.stage, failure.error_type, failure.attempts) == ("crash", "RuntimeError", 3)
    assert failure.message == "the pipeline process died on each of 3 tries (worker died)"


# -- waiting for actors -----------------------------------------------------------------
def test_stall_warnings_after_two_minutes_then_every_minute():
    assert not stall_warning_due(119.0, warned=0)
    assert stall_warning_due(120.0, warned=0)
    assert not stall_warning_due(150.0, warned=1)
    assert stall_warning_due(180.0, warned=1)


# -- the queue --------------------------------------------------------------------------
def test_the_queue_reads_its_sources_lazily():
    pulled = []

    def tasks():
        for i in range(100):
            pulled.append(i)
            yield Task(str(i))

    queue = BatchQueue(target=3)
    queue.add(tasks(), batch_size=2)
    queue.refill()
    assert len(queue) == 3 and len(pulled) == 6 and queue.more_coming
    assert queue.pop().tasks == [Task("0"), Task("1")]
    queue.refill()
    assert len(queue) == 3 and len(pulled) == 8


def test_the_queue_ends_a_source_and_takes_the_next():
    queue = BatchQueue(target=10)
    queue.add([Task("a"), Task("b"), Task("c")], batch_size=2)
    queue.add([Task("d")], batch_size=2)
    queue.refill()
    assert not queue.more_coming
    assert [queue.pop().tasks for _ in range(len(queue))] == [[Task("a"), Task("b")], [Task("c")], [Task("d")]]


def test_put_front_queues_one_batch_per_task_in_order():
    queue = BatchQueue(target=10)
    queue.add([Task("later")], batch_size=1)
    queue.refill()
    queue.put_front([Task("p1"), Task("p2")], solo=True)
    got = [queue.pop() for _ in range(3)]
    assert [b.tasks for b in got] == [[Task("p1")], [Task("p2")], [Task("later")]]
    assert [b.solo for b in got] == [True, True, False]
    assert len({b.batch_id for b in got}) == 3
    again = Batch(99, [Task("x")])
    queue.return_front(again)
    assert queue.head() is again


def test_clear_drops_what_was_not_sent():
    queue = BatchQueue(target=1)
    assert not queue.clear()
    queue.add([Task("a"), Task("b")], batch_size=1)
    assert queue.clear()  # unread sources count too
    queue.refill()
    assert len(queue) == 0 and not queue.more_coming


def test_the_rules_import_no_ray():
    code = "import sys, ray_ocr.engine.scheduling; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_input_item_crosses_as_a_tuple_and_comes_back_whole():
    from ray_ocr.records import InputItem

    import msgpack

    item = InputItem("a/b.pdf", "/in/a/b.pdf", b"%PDF", (3, 4), None, "a/b")
    wire = msgpack.packb(item.to_wire(), use_bin_type=True, strict_types=True)  # as Ray packs (no fallback)
    assert InputItem.from_wire(msgpack.unpackb(wire)) == item
    whole = InputItem("c.png", "/in/c.png", b"", read_root="/in")
    assert InputItem.from_wire(msgpack.unpackb(msgpack.packb(whole.to_wire(), strict_types=True))) == whole
