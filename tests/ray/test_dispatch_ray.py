"""The dispatcher on real actors: which actor gets which batch (every actor one before
any gets a prefetch batch; the last batches only to actors with nothing queued), a stop,
a pipeline that does not build. The rules themselves are tested without Ray in
tests/unit/test_scheduling.py. The stand-in pipeline (named as such: this is about
scheduling) sleeps per image, longer for one width."""

import cv2
import numpy as np
import pytest

from tests.conftest import STANDIN

pytestmark = pytest.mark.ray


def _png(width):
    return cv2.imencode(".png", np.zeros((8, width, 3), np.uint8))[1].tobytes()


def _actors(ray, **params):
    from ray_ocr.config import DeviceRequest
    from ray_ocr.engine.actors import start_actors
    from ray_ocr.engine.cluster import describe_cluster
    from ray_ocr.engine.placement import plan_actors
    from ray_ocr.models.runner import RunnerSpec
    from ray_ocr.pipelines import resolve_pipeline

    slots = plan_actors("Standin", DeviceRequest.parse("cpu"), describe_cluster(embedded=False), 2)
    actors = start_actors(slots, RunnerSpec(pipeline=resolve_pipeline(STANDIN), init_params=tuple(params.items())))
    ray.get([a.ready.remote() for a in actors.values()], timeout=120)
    return actors


def _run(ray, actors, tasks, data, ran_on):
    """One dispatcher over actors that are all up; records which actor ran each key.

    The dispatcher asks each actor ready() when it is made, and an actor answers its
    calls in order: once this test's own ready() calls are back, so are the
    dispatcher's, and its first step sees every actor up."""
    from ray_ocr.engine.dispatch import BatchDispatcher
    from ray_ocr.records import InputItem, Task

    def on_batch(result):
        for f in result.files:
            ran_on[f.key] = result.worker.actor_name

    dispatcher = BatchDispatcher(
        actors, "Standin", read=lambda task: InputItem(task.key, task.key, data[task.key]),
        on_batch=on_batch, on_results=lambda *a: None, on_actor=lambda w: None,
        attempts={}, max_attempts=1, prefetch_batches=1,
    )
    ray.get([a.ready.remote() for a in actors.values()], timeout=120)
    dispatcher.add_tasks([Task(k) for k in tasks], batch_size=1)
    dispatcher.run()
    assert dispatcher.submitted == len(tasks) and dispatcher.batches_in_flight == 0
    return dispatcher


def test_every_actor_gets_a_batch_before_any_gets_its_prefetch_batch(ray_cluster):
    """Two actors up, two slots each, as many tasks as actors: one each, never both
    queued on one actor (which would serialise the first parts of a split PDF)."""
    actors = _actors(ray_cluster, sleep_seconds=1.0)
    ran_on = {}
    for round_ in range(3):  # the idle order after a round must not matter either
        keys = [f"r{round_}_{i}" for i in range(2)]
        dispatcher = _run(ray_cluster, actors, keys, {k: _png(8) for k in keys}, ran_on)
        assert len({ran_on[k] for k in keys}) == 2, ran_on
    dispatcher.shutdown()


def test_the_last_batch_waits_for_an_idle_actor_not_behind_a_long_one(ray_cluster):
    """A long document (3 s) and two short ones (0.2 s) on two actors: the third task
    must not be queued behind the long one (where it would wait 3 s while the other
    actor sits idle); it goes to whichever actor is free first."""
    actors = _actors(ray_cluster, sleep_seconds=0.2, slow_width=64, slow_seconds=3.0)
    ran_on = {}
    for round_ in range(3):  # a tie broken either way must not matter
        keys = [f"r{round_}_long", f"r{round_}_a", f"r{round_}_b"]
        data = {keys[0]: _png(64), keys[1]: _png(8), keys[2]: _png(8)}
        dispatcher = _run(ray_cluster, actors, keys, data, ran_on)
        assert ran_on[keys[2]] != ran_on[keys[0]], ran_on
        assert ran_on[keys[2]] == ran_on[keys[1]]
    dispatcher.shutdown()


def test_a_stop_is_honoured_while_no_actor_can_be_placed(ray_cluster):
    """An actor asking for a resource no node has never comes up; a stop request (the
    CLI's SIGINT/SIGTERM) must still end the wait, with nothing run."""
    import threading
    import time

    from ray_ocr.engine.actors import PipelineActor
    from ray_ocr.engine.dispatch import BatchDispatcher
    from ray_ocr.models.runner import RunnerSpec
    from ray_ocr.pipelines import resolve_pipeline
    from ray_ocr.records import InputItem, Task

    spec = RunnerSpec(pipeline=resolve_pipeline(STANDIN))
    actor = ray_cluster.remote(PipelineActor).options(num_cpus=0, resources={"no_such_resource": 1}).remote(
        spec, "unplaceable")
    stop = threading.Event()
    ran = []
    dispatcher = BatchDispatcher(
        {"unplaceable": actor}, "Standin", read=lambda task: InputItem(task.key, task.key, _png(8)),
        on_batch=ran.append, on_results=lambda *a: None, on_actor=lambda w: None,
        attempts={}, max_attempts=1, stop=stop,
    )
    dispatcher.add_tasks([Task("a"), Task("b")], batch_size=1)
    threading.Timer(2.0, stop.set).start()
    started = time.monotonic()
    try:
        dispatcher.run()
    finally:
        dispatcher.shutdown()
    assert time.monotonic() - started < 30  # without the stop check it waits forever
    assert dispatcher.interrupted and ran == [] and dispatcher.submitted == 0


def test_a_stop_sends_nothing_more_and_lets_batches_in_flight_land(ray_cluster):
    """Stopped at the first result: what was in flight then (at most two batches on each
    of the two actors) still comes back; nothing else is sent."""
    import threading

    from ray_ocr.engine.dispatch import BatchDispatcher
    from ray_ocr.records import InputItem, Task

    actors = _actors(ray_cluster, sleep_seconds=0.5)
    stop = threading.Event()
    landed = []

    def on_batch(result):
        landed.extend(f.key for f in result.files)
        stop.set()

    dispatcher = BatchDispatcher(
        actors, "Standin", read=lambda task: InputItem(task.key, task.key, _png(8)),
        on_batch=on_batch, on_results=lambda *a: None, on_actor=lambda w: None,
        attempts={}, max_attempts=1, stop=stop, prefetch_batches=1,
    )
    dispatcher.add_tasks([Task(f"k{i}") for i in range(20)], batch_size=1)
    try:
        dispatcher.run()
    finally:
        dispatcher.shutdown()
    assert dispatcher.interrupted and dispatcher.batches_in_flight == 0
    assert 1 <= len(landed) == dispatcher.submitted <= 4, landed


def test_a_pipeline_that_does_not_build_is_a_setup_error(ray_cluster):
    from ray_ocr.engine.dispatch import BatchDispatcher
    from ray_ocr.errors import SetupError
    from ray_ocr.records import InputItem, Task

    actors = _actors(ray_cluster, sleep_seconds="not a number")  # the stand-in's float() fails
    ran = []
    dispatcher = BatchDispatcher(
        actors, "Standin", read=lambda task: InputItem(task.key, task.key, _png(8)),
        on_batch=ran.append, on_results=lambda *a: None, on_actor=lambda w: None,
        attempts={}, max_attempts=1,
    )
    dispatcher.add_tasks([Task("a")], batch_size=1)
    try:
        with pytest.raises(SetupError, match="^cannot build the Standin pipeline: ValueError: could not convert"):
            dispatcher.run()
    finally:
        dispatcher.shutdown()
    assert ran == [] and dispatcher.submitted == 0
