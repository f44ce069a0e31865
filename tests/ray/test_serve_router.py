"""serve/router.py's FreedReplicaRouter in real Serve, with a model-free deployment (the
test is about routing): a request that finds the only replica full goes to it as soon
as the request it holds finishes.

The router also polls, every ``poll_s``, for replicas other routers freed. Here poll_s
is 60 s, so the second request can start within seconds of the first one finishing
only if that finish woke the router."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import free_port

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

HOLD_S = 2.0
POLL_S = 60.0


def test_a_waiting_request_is_sent_when_the_full_replica_finishes(ray_cluster):
    import asyncio

    import requests
    from ray import serve

    from ray_ocr.serve.plan import REQUEST_ROUTER

    @serve.deployment(num_replicas=1, max_ongoing_requests=1, ray_actor_options={"num_cpus": 0},
                      request_router_config={**REQUEST_ROUTER, "request_router_kwargs": {"poll_s": POLL_S}})
    class Holds:
        async def __call__(self, request):
            started = time.time()
            await asyncio.sleep(HOLD_S)
            return {"started": started, "finished": time.time()}

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(Holds.bind(), name="router_test", route_prefix="/")
        url = f"http://127.0.0.1:{port}/"
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(requests.get, url, timeout=POLL_S * 2)
            time.sleep(HOLD_S / 4)  # the first one holds the replica
            second = pool.submit(requests.get, url, timeout=POLL_S * 2)
            held, waited = first.result().json(), second.result().json()
        assert waited["started"] >= held["finished"]  # max_ongoing_requests 1: it waited in the proxy
        assert waited["started"] - held["finished"] < POLL_S / 3  # woken by the finish, not the poll
    finally:
        serve.shutdown()
