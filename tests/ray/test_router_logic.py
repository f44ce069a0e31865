"""FreedReplicaRouter's own logic (ray_ocr/serve/router.py), without a Ray cluster.

The router is Serve's power of two choices, except that a request finding no replica
known to be free waits for the router's next finished request (or ``poll_s``) instead of
polling. What decides the latency it saves is when a waiting request resumes: one per
finished request, as many as a new replica takes, after ``poll_s`` at the latest, and
once at once for a request whose round found replicas of unknown queue length (so Serve
probes them). tests/ray/test_serve_router.py checks the whole in real Serve; these
tests pin each rule down in milliseconds.

No cluster is needed: a request router only talks to replicas through the
``RunningReplica`` interface and keeps queue lengths in Serve's own
``ReplicaQueueLengthCache``. So the real router class is built with the arguments
Serve's router gives it, fed fake replicas (as Ray's own unit tests of
``PowerOfTwoChoicesRequestRouter`` do), and its hooks are called the way Serve calls
them, on the loop of each test's own ``asyncio.run``. The module runs Ray's code, hence
the ``ray`` mark.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from ray.serve._private.common import DeploymentHandleSource, DeploymentID, ReplicaID, RequestMetadata
from ray.serve._private.utils import generate_request_id
from ray.serve.request_router import PendingRequest, RunningReplica

from ray_ocr.serve.plan import REQUEST_ROUTER
from ray_ocr.serve.router import FreedReplicaRouter

pytestmark = pytest.mark.ray

DEPLOYMENT = DeploymentID(name="Pipeline", app_name="ocr")
LONG_POLL_S = 30.0  # "never" within a test: whatever resumes was woken
SHORT_POLL_S = 0.05
QUICK_S = 0.5  # plenty for a step that does not wait (the loop has nothing else to do)
STILL_WAITING_CHECK_S = 0.1


class FakeReplica(RunningReplica):
    """What the router reads of a replica; a queue-length probe answers `queue_len`."""

    def __init__(self, name: str, *, max_ongoing_requests: int = 1, queue_len: int = 0):
        # RunningReplica.__init__ would look up a real actor: not called.
        self._replica_id = ReplicaID(unique_id=name, deployment_id=DEPLOYMENT)
        self._max_ongoing_requests = max_ongoing_requests
        self.queue_len = queue_len
        self.proxy_handle = None

    @property
    def replica_id(self) -> ReplicaID:
        return self._replica_id

    @property
    def max_ongoing_requests(self) -> int:
        return self._max_ongoing_requests

    @property
    def node_id(self) -> str:
        return "node-of-" + self._replica_id.unique_id

    @property
    def availability_zone(self) -> None:
        return None

    @property
    def multiplexed_model_ids(self) -> set[str]:
        return set()

    def push_proxy_handle(self, handle) -> None:
        self.proxy_handle = handle

    async def get_queue_len(self, *, deadline_s: float) -> int:
        return self.queue_len

    def __repr__(self) -> str:
        return f"FakeReplica({self._replica_id.unique_id})"


# ---- building and driving the router ----------------------------------------------

def make_router(poll_s: float) -> FreedReplicaRouter:
    """As Serve's router builds it in a proxy (serve/_private/router.py), with
    ray_ocr's request_router_config."""
    router = FreedReplicaRouter(
        deployment_id=DEPLOYMENT,
        handle_source=DeploymentHandleSource.PROXY,
        self_node_id="proxy-node",
        self_actor_id="proxy-actor",
        self_actor_handle=object(),  # a proxy pushes its handle to new replicas
        use_replica_queue_len_cache=True,
        create_replica_wrapper_func=None,  # replicas are given already wrapped
        prefer_local_node_routing=False,
        prefer_local_az_routing=False,
        self_availability_zone=None,
        initial_backoff_s=REQUEST_ROUTER["initial_backoff_s"],
        max_backoff_s=REQUEST_ROUTER["max_backoff_s"],
    )
    router.initialize_state(poll_s=poll_s)  # what request_router_kwargs reach
    return router


async def settle() -> None:
    """Let every task that can run, run (wake-ups take a few loop turns)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def set_replicas(router, replicas) -> None:
    """Serve's update from the controller; the probes it starts for new replicas answer."""
    router.update_replicas(list(replicas))
    await settle()


def set_queue_lens(router, lengths: dict[FakeReplica, int | None]) -> None:
    """What the router's cache knows of each replica's queue (None: nothing)."""
    for replica, queue_len in lengths.items():
        if queue_len is None:
            router.replica_queue_len_cache.invalidate_key(replica.replica_id)
        else:
            router.replica_queue_len_cache.update(replica.replica_id, queue_len)


def new_request() -> PendingRequest:
    """A request as the proxy queues it (needs the running loop for its future)."""
    metadata = RequestMetadata(request_id=generate_request_id(), internal_request_id=generate_request_id())
    return PendingRequest(args=[], kwargs={}, metadata=metadata)


def finish_a_request(router, replica_id: ReplicaID | None = None) -> None:
    """Serve's completion callback for a request this router sent."""
    replica_id = replica_id or ReplicaID(unique_id="any", deployment_id=DEPLOYMENT)
    router.on_request_completed(replica_id, generate_request_id())


async def start_waiters(router, count: int) -> list[asyncio.Task]:
    """`count` requests waiting for a finished request, in this order."""
    waiters = []
    for _ in range(count):
        waiters.append(asyncio.create_task(router._next_finished_request()))
        await settle()
    return waiters


def resumed(tasks) -> list[bool]:
    return [task.done() for task in tasks]


async def finishes_within(task: asyncio.Task, seconds: float) -> bool:
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return bool(done)


def choose(router, request: PendingRequest | None) -> asyncio.Task:
    """One routing round, as Serve runs it: over every current replica."""
    candidates = list(router.curr_replicas.values())
    return asyncio.create_task(router.choose_replicas(candidates, request))


def replicas_in(ranks) -> set[FakeReplica]:
    return {replica for rank in ranks for replica in rank}


async def stop(tasks) -> None:
    """End what a test left waiting (its checks are done)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def run(scenario, *args) -> None:
    asyncio.run(scenario(*args))  # a fresh loop per test


# ---- a finished request, poll_s ----------------------------------------------------

def test_a_finished_request_wakes_exactly_one_waiting_request():
    async def scenario():
        router = make_router(LONG_POLL_S)
        waiters = await start_waiters(router, 2)
        finish_a_request(router)
        await settle()
        assert resumed(waiters) == [True, False]  # the first to wait, and only it
        await stop(waiters)

    run(scenario)


def test_a_waiting_request_resumes_after_poll_s_and_leaves_the_queue():
    async def scenario():
        router = make_router(SHORT_POLL_S)
        started = time.monotonic()
        await asyncio.wait_for(router._next_finished_request(), QUICK_S + SHORT_POLL_S)
        waited = time.monotonic() - started
        assert waited >= SHORT_POLL_S * 0.9  # did wait, for poll_s
        assert not router._waiting  # nobody left for a finished request to wake

    run(scenario)


def test_a_woken_waiter_cancelled_before_it_runs_hands_the_wake_on():
    """Serve cancels a routing task whose request another task has given a replica; if
    a request finished just before, its wake-up went to that task, and must pass on to
    the next waiting request (else it waits up to poll_s for a replica that is free)."""
    async def scenario():
        router = make_router(LONG_POLL_S)
        first, second = await start_waiters(router, 2)
        finish_a_request(router)  # wakes `first` ...
        first.cancel()  # ... which Serve cancels before it runs
        await settle()
        assert first.cancelled()  # the cancel is not swallowed
        assert second.done()  # the finished request woke the next waiter
        await stop([second])

    run(scenario)


def test_a_new_replica_wakes_as_many_waiters_as_it_takes_requests():
    async def scenario():
        router = make_router(LONG_POLL_S)
        known = FakeReplica("known", queue_len=1)
        await set_replicas(router, [known])
        waiters = await start_waiters(router, 3)
        await set_replicas(router, [known, FakeReplica("new", max_ongoing_requests=2)])
        assert resumed(waiters) == [True, True, False]
        await stop(waiters)

    run(scenario)


def test_an_update_without_a_new_replica_wakes_nobody():
    async def scenario():
        router = make_router(LONG_POLL_S)
        known = FakeReplica("known", queue_len=1)
        await set_replicas(router, [known])
        waiters = await start_waiters(router, 2)
        await set_replicas(router, [known])
        await set_replicas(router, [])  # a replica gone frees nothing either
        assert resumed(waiters) == [False, False]
        await stop(waiters)

    run(scenario)


# ---- choose_replicas ---------------------------------------------------------------

def test_choose_replicas_waits_while_every_replica_is_known_full():
    async def scenario():
        router = make_router(LONG_POLL_S)
        replicas = [FakeReplica("a", queue_len=1), FakeReplica("b", queue_len=1)]
        await set_replicas(router, replicas)
        round_ = choose(router, new_request())
        assert not await finishes_within(round_, STILL_WAITING_CHECK_S)
        finish_a_request(router, replicas[0].replica_id)
        assert await finishes_within(round_, QUICK_S)
        assert replicas_in(round_.result())  # then Serve probes (its cache still says full)

    run(scenario)


def test_choose_replicas_waits_at_most_poll_s_for_a_finished_request():
    async def scenario():
        router = make_router(SHORT_POLL_S)
        await set_replicas(router, [FakeReplica("a", queue_len=1)])
        started = time.monotonic()
        round_ = choose(router, new_request())
        assert await finishes_within(round_, QUICK_S + SHORT_POLL_S)
        assert time.monotonic() - started >= SHORT_POLL_S * 0.9

    run(scenario)


def test_choose_replicas_offers_only_the_free_replica_at_once():
    async def scenario():
        router = make_router(LONG_POLL_S)
        full_1, free, full_2 = FakeReplica("full-1"), FakeReplica("free"), FakeReplica("full-2")
        await set_replicas(router, [full_1, free, full_2])
        set_queue_lens(router, {full_1: 1, free: 0, full_2: 1})
        round_ = choose(router, new_request())
        assert await finishes_within(round_, QUICK_S)
        assert replicas_in(round_.result()) == {free}

    run(scenario)


def test_unknown_queue_lengths_are_probed_once_per_request_then_it_waits():
    async def scenario():
        router = make_router(LONG_POLL_S)
        unknown, full = FakeReplica("unknown"), FakeReplica("full")
        await set_replicas(router, [unknown, full])
        set_queue_lens(router, {unknown: None, full: 1})
        request = new_request()

        first_round = choose(router, request)
        assert await finishes_within(first_round, QUICK_S)
        assert replicas_in(first_round.result()) == {unknown}  # for Serve to probe

        second_round = choose(router, request)  # the probe told nothing (still unknown)
        assert not await finishes_within(second_round, STILL_WAITING_CHECK_S)

        other_request_round = choose(router, new_request())
        assert await finishes_within(other_request_round, QUICK_S)
        assert replicas_in(other_request_round.result()) == {unknown}

        finish_a_request(router, full.replica_id)
        assert await finishes_within(second_round, QUICK_S)  # it was waiting, not stuck

    run(scenario)


# ---- in Serve's routing loop -------------------------------------------------------

def test_serve_assigns_the_waiting_request_when_the_full_replica_finishes():
    """Serve's own loop (probes, backoff, FIFO assignment) with this router: the request
    goes to the only replica as soon as the request holding it finishes, not at poll_s."""
    async def scenario():
        router = make_router(LONG_POLL_S)
        replica = FakeReplica("only", queue_len=1)
        await set_replicas(router, [replica])
        assert replica.proxy_handle is not None  # as Serve does for a proxy's new replica
        assignment = asyncio.create_task(router._choose_replica_for_request(new_request()))
        assert not await finishes_within(assignment, STILL_WAITING_CHECK_S)

        replica.queue_len = 0  # the held request finishes: Serve's two callbacks
        router.on_request_completed(replica.replica_id, generate_request_id())
        router.decrement_queue_len_cache(replica.replica_id)
        assert await finishes_within(assignment, QUICK_S)
        assert assignment.result() is replica
        await settle()
        assert router.curr_num_routing_tasks == 0

    run(scenario)
