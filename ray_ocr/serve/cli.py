"""``python -m ray_ocr.serve``: PaddleX's serving API for one pipeline, on Ray Serve.

    python -m ray_ocr.serve --pipeline OCR --device cpu --params_file samples/ocr_mobile_offline.yaml

The flags are ServeConfig's options (ray_ocr/config.py), parsed by the helpers of
``python -m ray_ocr.run`` (ray_ocr/cli.py): an option both take is declared once.
``serve_forever`` does the work.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from ray_ocr.cli import build_config_parser, configure_logging, options_from_args
from ray_ocr.config import ServeConfig
from ray_ocr.errors import SetupError, UsageError, first_line
from ray_ocr.serve.plan import SERVE_EXTRA_INSTALL

logger = logging.getLogger("ray_ocr")

PENDING_NOTICE_S = 60.0  # when the replicas not running yet are said (once)
DELETE_WAIT_S = 60.0  # at most this long waiting for the applications' delete on a cluster joined


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(
        ServeConfig, error_prefix="ray_ocr.serve", prog="python -m ray_ocr.serve",
        description="PaddleX's serving API for one PaddleOCR pipeline (the same paths, requests and responses "
                    "as paddlex --serve), answered by Ray Serve replicas placed as batch runs place actors.",
        epilog="Runs until SIGINT/SIGTERM (exit code 0; 130 if stopped before the replicas ran or by a "
               "second signal). Exit code 2: usage or setup error. Needs the serve extra: "
               f"{SERVE_EXTRA_INSTALL}.",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(getattr(args, "verbose", False))
    from ray_ocr.serve.plan import require_serve_extra

    try:
        require_serve_extra()
        config = ServeConfig.build(**options_from_args(args, ServeConfig))
        return serve_forever(config)
    except (UsageError, SetupError) as exc:
        print(f"ray_ocr.serve: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second SIGINT/SIGTERM: exit now, as the batch command does
        print("ray_ocr.serve: stopped at once", file=sys.stderr)
        return 130


def serve_forever(config: ServeConfig) -> int:
    """Start (or join) Ray, deploy, print where the API is, and serve until SIGINT or
    SIGTERM (0: the requests in flight are answered first); a signal while the replicas
    start stops them (130), a second one exits at once (KeyboardInterrupt)."""
    from ray_ocr.engine.cluster import gpus_for_this_run, ray_session
    from ray_ocr.engine.signals import StopFlag

    gpu_ids = gpus_for_this_run(config.address, config.device)
    if config.address is None:
        check_port_free(config.host, config.port)
    # The signal handlers go in after Ray starts: Ray's own SIGTERM handler (an abort)
    # would otherwise replace them.
    with ray_session(config.address, gpu_ids, quiet=not config.verbose) as cluster, \
            StopFlag("stopping (a second signal: at once)") as flag, \
            serve_started(config, embedded=cluster.embedded) as service:
        base = public_base_url(config.host, config.port)
        print(f"ray_ocr.serve: starting {config.pipeline.display_name} replicas; /health answers meanwhile "
              f"at {base}/health", flush=True)
        deployed = deploy_or_explain(config, cluster, stop=flag.event)
        if deployed is None:
            print("ray_ocr.serve: stopped before the replicas ran", flush=True)
            return 130
        plan, paths = deployed
        service.drain = True
        flag.message = "stopping; requests in flight are answered first (a second signal: at once)"
        counts = (f"{plan.max_replicas} replica{'s' if plan.max_replicas > 1 else ''}"
                  if plan.min_replicas == plan.max_replicas else f"{plan.min_replicas}-{plan.max_replicas} replicas")
        print(f"ray_ocr.serve: {config.pipeline.display_name} at {', '.join(base + p for p in paths)} "
              f"({counts}, each {plan.ray_actor_options}); health {base}/health"
              + (f"; dashboard {cluster.dashboard_url}" if cluster.dashboard_url else ""), flush=True)
        while not flag.event.wait(1.0):
            pass
        print("ray_ocr.serve: stopping", flush=True)
    return 0


def check_port_free(host: str, port: int) -> None:
    """A port another process holds is a usage error now, not Serve's traceback later."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.create_server((host, port), family=family):
            pass
    except OSError as exc:
        raise UsageError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); "
                         "another server holds the port? Choose another with --port") from None


def public_base_url(host: str, port: int) -> str:
    """The URL to print: an address a client can use (not 0.0.0.0); binding every
    interface is said as the warning it is."""
    if host not in ("0.0.0.0", "::"):
        return f"http://{host}:{port}"
    import socket

    print(f"ray_ocr.serve: warning: --host {host}: the API (no authentication) is open to every network "
          "this machine is on", file=sys.stderr, flush=True)
    return f"http://{socket.gethostname()}:{port}"


class _Service:
    drain = False  # once the replicas ran: a stop answers the requests in flight first


@contextmanager
def serve_started(config: ServeConfig, embedded: bool) -> Iterator[_Service]:
    """Serve's HTTP proxy on --host/--port, answering /health; on the way out this
    service's applications are deleted (the requests in flight answered first, once it
    served)."""
    from ray import serve

    from ray_ocr.serve.plan import GRACEFUL_SHUTDOWN_S

    if not config.verbose:  # Serve's notices ("Connecting to existing Serve app ...") are not ours
        logging.getLogger("ray.serve").setLevel(logging.WARNING)
    try:
        serve.start(http_options={"host": config.host, "port": config.port})
    except RuntimeError as exc:
        if "bind" not in str(exc):
            raise
        raise UsageError(f"--host {config.host} --port {config.port}: {first_line(exc)}") from None
    from ray_ocr.serve.app import start_health

    service = _Service()
    try:
        start_health()
        _wait_until_routed(_local_url(config.host, config.port) + "/health", proxy_here=embedded)
        yield service
    finally:
        delete_apps(wait_s=GRACEFUL_SHUTDOWN_S if service.drain else 0 if embedded else DELETE_WAIT_S)
        # Serve itself is not shut down: in a Ray this process started, the Ray's end
        # stops it, and serve.shutdown() would kill its controller under the calls this
        # driver still has out to it (Ray then prints their failures); on a cluster
        # joined it is not this process's to stop.


def _local_url(host: str, port: int) -> str:
    """This machine's URL of the proxy bound to `host`."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _wait_until_routed(url: str, proxy_here: bool, timeout_s: float = 15.0) -> None:
    """Serve's proxy learns a new application's route a moment after its deploy returns
    (404 meanwhile): wait for it, so that /health answers when the start line says so.
    On a cluster joined, nothing may listen on this machine: then nothing to wait for."""
    import http.client
    import urllib.error
    import urllib.request

    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an http_proxy
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            direct.open(url, timeout=2).close()
            return
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # 503: routed, no pipeline replica yet
                return
        except (urllib.error.URLError, http.client.HTTPException, OSError):
            if not proxy_here:
                return
        time.sleep(0.2)


def delete_apps(wait_s: float) -> None:
    """Delete this service's applications, waiting at most `wait_s` for them to go:
    a replica still waiting for resources may otherwise hold the delete for its whole
    graceful-shutdown time (plan.GRACEFUL_SHUTDOWN_S). Serve finishes it meanwhile.
    The pipeline's goes first: /health answers 503 ("stopping") while its requests in
    flight are answered, so a load balancer takes the service out before it is gone."""
    from ray_ocr.serve.plan import APP_NAME, HEALTH_APP_NAME

    deadline, gone = time.monotonic() + wait_s, False
    try:
        gone = _delete_app(APP_NAME, deadline)
    finally:  # also when a second signal cuts the wait: /health is not left deployed
        gone = _delete_app(HEALTH_APP_NAME, deadline) and gone
    if not gone:
        _say_still_deleting(wait_s)
    from ray_ocr.engine.model_store import remove_stores_made_here

    remove_stores_made_here()  # the models it shipped: its application is gone


def _delete_app(name: str, deadline: float) -> bool:
    """Delete an application; whether it was gone by `deadline`."""
    from ray import serve

    try:
        serve.delete(name, _blocking=False)
    except Exception:  # noqa: BLE001 - never deployed, or already gone
        pass
    while name in serve.status().applications:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)
    return True


def _say_still_deleting(wait_s: float) -> None:
    if wait_s:
        print(f"ray_ocr.serve: the applications are still being deleted after {wait_s:.0f} s; Serve "
              "finishes that in the cluster", file=sys.stderr, flush=True)


def deploy_or_explain(config: ServeConfig, cluster, stop: threading.Event | None = None,
                      notice_after_s: float = PENDING_NOTICE_S):
    """Deploy, then wait until every pipeline replica runs: (plan, POST paths), or None
    if `stop` is set first. A failed deployment is a SetupError naming Serve's cause;
    replicas still not running after `notice_after_s` are said once."""
    from ray import serve

    from ray_ocr.serve.app import pipeline_routes, start_deploy
    from ray_ocr.serve.plan import APP_NAME, failure_cause, replica_counts

    plan = start_deploy(config, cluster)
    stop = stop or threading.Event()
    notice_at = time.monotonic() + notice_after_s
    while True:
        app = serve.status().applications.get(APP_NAME)
        state = str(getattr(app.status, "value", app.status)) if app else "NOT_STARTED"
        if state == "RUNNING":
            return plan, pipeline_routes()
        if state == "DEPLOY_FAILED":
            raise SetupError(f"the pipeline replicas did not start: {failure_cause(app)}")
        if notice_at is not None and time.monotonic() >= notice_at:
            notice_at = None
            print(f"ray_ocr.serve: {notice_after_s:.0f} s on, of {plan.min_replicas} pipeline replicas: "
                  f"{replica_counts(app)} (a starting one waits for CPUs/GPUs the cluster has not free, or builds "
                  "its pipeline); running ones answer already; Ctrl-C stops",
                  file=sys.stderr, flush=True)
        if stop.wait(1.0):
            return None


if __name__ == "__main__":
    sys.exit(main())
