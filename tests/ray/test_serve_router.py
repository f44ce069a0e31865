"""serve/router.py's FreedReplicaRouter in real Serve, with a model-free deployment (the
test is about routing): a request that finds the only replica full goes to it as soon
as the request it holds finishes.

The router also polls, every ``poll_s``, for replicas other routers freed, and backs off
between failed rounds. Here both are long (60 s, 20 s), so the second request can start
within seconds of the first one finishing only if that finish woke the router."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import free_port

pytestmark = [pytest.mark.ray, pytest.mark.serve_in_process, pytest.mark.timeout(300)]

HOLD_S = 2.0
POLL_S = 60.0
BACKOFF_S = 20.0


def test_a_waiting_request_is_sent_when_the_full_replica_finishes(ray_cluster):
    import asyncio

    import requests
    from ray import serve

    from ray_ocr.serve.cli import _wait_until_routed
    from ray_ocr.serve.plan import REQUEST_ROUTER

    slow_polls = {"initial_backoff_s": BACKOFF_S, "max_backoff_s": BACKOFF_S,
                  "request_router_kwargs": {"poll_s": POLL_S}}

    @serve.deployment(num_replicas=1, max_ongoing_requests=1, ray_actor_options={"num_cpus": 0},
                      request_router_config={**REQUEST_ROUTER, **slow_polls})
    class Holds:
        async def __call__(self, request):
            started = time.time()
            await asyncio.sleep(float(request.query_params.get("hold", HOLD_S)))
            return {"started": started, "finished": time.time()}

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(Holds.bind(), name="router_test", route_prefix="/")
        url = f"http://127.0.0.1:{port}/"
        _wait_until_routed(url + "?hold=0", proxy_here=True)  # the proxy knows the route
        with ThreadPoolExecutor(2) as pool:
            answers = [pool.submit(requests.get, url, timeout=POLL_S * 2)]
            time.sleep(HOLD_S / 4)  # one holds the replica
            second_sent = time.time()
            answers.append(pool.submit(requests.get, url, timeout=POLL_S * 2))
            held, waited = sorted((a.result().json() for a in answers), key=lambda r: r["started"])
        assert second_sent < held["finished"]  # the second request was sent while the replica was full...
        assert waited["started"] >= held["finished"]  # ...and waited in the proxy (max_ongoing_requests 1)
        assert waited["started"] - held["finished"] < BACKOFF_S / 2  # woken by the finish, not a poll
    finally:
        serve.shutdown()
