"""Serve's request router for the pipeline replicas: Serve's default (FIFO, the same
node's replicas first, the less busy of two), except that a request finding every
replica full waits for this router's next finished request instead of polling.

Why: a replica predicts one request at a time (PaddleX serializes the calls) and a
request takes from 0.1 s (a small image) to minutes (a long PDF). With two requests
per replica, the second waits inside a replica behind whatever it predicts, while
another replica may finish long before; with one (``max_ongoing_requests`` 1), waiting
requests stay in the proxy's FIFO queue and each goes to the first replica that frees
up. But Serve's own router finds a freed replica only at its next poll: it sleeps with
exponential backoff between polls while every replica is full. It is told when each
request it sent finishes (``on_request_completed``), so it can route the next one at
once. Requests other routers sent (another node's proxy, a DeploymentHandle) are seen
at the next poll, at most ``poll_s`` later (``request_router_kwargs``).

A replica whose queue length the router does not know (a new one, an expired or
invalidated cache entry) is probed at once, as Serve does; a request whose round found
no replica known to be free waits before its next round, so a replica whose probes
fail fast is not probed in a tight loop.

Serve pickles the class where the application is deployed and unpickles it in every
proxy and handle, so it imports only ``ray.serve.request_router``, Serve's public
interface for routers (plan.py names it).
"""

from __future__ import annotations

import asyncio
import collections
import random

from ray.serve.request_router import FIFOMixin, LocalityMixin, MultiplexMixin, RequestRouter

POLL_S = 0.05


class FreedReplicaRouter(FIFOMixin, LocalityMixin, MultiplexMixin, RequestRouter):
    """Serve's power of two choices, woken by finished requests (see the module)."""

    def __init__(self, *args, **kwargs):
        self._poll_s = POLL_S
        self._waiting: collections.deque[asyncio.Future] = collections.deque()
        self._probed_blind: set[asyncio.Future] = set()  # requests whose last round knew of no free replica
        super().__init__(*args, **kwargs)

    def initialize_state(self, poll_s: float = POLL_S):
        self._poll_s = poll_s

    async def choose_replicas(self, candidate_replicas, pending_request=None):
        # Requests already given a replica count themselves in Serve's cache when they
        # next run (on_send_request): let them, or this round picks the same replica
        # again and the replica rejects the request.
        await asyncio.sleep(0)
        if candidate_replicas and not self._any_known_free(candidate_replicas):
            await self._wait_unless_first_blind_round(candidate_replicas, pending_request)
        if pending_request is not None and pending_request.metadata.multiplexed_model_id:
            candidate_ids = self.apply_multiplex_routing(pending_request=pending_request)
        else:
            candidate_ids = self.apply_locality_routing(pending_request=pending_request)
        candidates = [self.curr_replicas[i] for i in candidate_ids if i in self.curr_replicas]
        # Serve probes the replicas whose cached queue is full; prefer the ones it says are free.
        free = self.select_available_replicas(candidates)
        pool = free or candidates
        return [random.sample(pool, min(2, len(pool)))] if pool else []

    async def _wait_unless_first_blind_round(self, candidate_replicas, pending_request) -> None:
        """No replica is known to be free. Every one known full: wait for a finished
        request. Some unknown: probe them now, the first time for this request; wait
        before probing again."""
        self._probed_blind = {f for f in self._probed_blind if not f.done()}
        key = pending_request.future if pending_request is not None else None
        every_one_full = not self.select_available_replicas(candidate_replicas)
        if every_one_full or key is None or key in self._probed_blind:
            await self._next_finished_request()
        else:
            self._probed_blind.add(key)

    def _any_known_free(self, replicas) -> bool:
        """Serve's cache holds a queue length below the limit for one of `replicas`."""
        lengths = (self.replica_queue_len_cache.get(r.replica_id) for r in replicas)
        return any(n is not None and n < r.max_ongoing_requests for n, r in zip(lengths, replicas))

    async def _next_finished_request(self) -> None:
        """Until a request this router sent finishes, or poll_s."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await asyncio.wait((waiter,), timeout=self._poll_s)  # unlike wait_for, never swallows a cancel
        except asyncio.CancelledError:
            # Woken, then cancelled before it ran (Serve gave this request a replica from
            # another routing task): hand the finished request on to the next waiter.
            if waiter.done() and not waiter.cancelled():
                self._wake(1)
            raise
        finally:
            waiter.cancel()  # no-op when woken
            if waiter in self._waiting:
                self._waiting.remove(waiter)

    def on_request_completed(self, replica_id, internal_request_id) -> None:
        super().on_request_completed(replica_id, internal_request_id)
        self._wake(1)  # one slot freed: one waiting request

    def update_replicas(self, replicas) -> None:
        known = set(self.curr_replicas)
        super().update_replicas(replicas)
        # A new replica (autoscaling, a restart) is free: as many waiting requests as it takes.
        self._wake(sum(r.max_ongoing_requests for r in replicas if r.replica_id not in known))

    def _wake(self, count: int) -> None:
        # Serve calls both hooks on the router's event loop, so the waiters (futures of
        # that loop) are resolved directly. A waiter leaves the queue as it ends (woken,
        # timed out or cancelled): a done one here would be a bug, skipped all the same.
        while count > 0 and self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1
