"""``python -m ray_ocr.serve``: PaddleX's serving API for one pipeline, on Ray Serve.

    python -m ray_ocr.serve --pipeline OCR --device cpu --params_file samples/ocr_mobile_offline.yaml

The flags are ServeConfig's options (ray_ocr/config.py), parsed by the helpers of
``python -m ray_ocr.run`` (ray_ocr/cli.py): an option both take is declared once.
``serve_forever`` does the work.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from ray_ocr.cli import build_config_parser, configure_logging, options_from_args
from ray_ocr.config import ServeConfig
from ray_ocr.errors import SetupError, UsageError

logger = logging.getLogger("ray_ocr")


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(
        ServeConfig, error_prefix="ray_ocr.serve", prog="python -m ray_ocr.serve",
        description="PaddleX's serving API for one PaddleOCR pipeline (the same paths, requests and responses "
                    "as paddlex --serve), answered by Ray Serve replicas placed as batch runs place actors.",
        epilog="Runs until SIGINT/SIGTERM (exit code 0). Exit code 2: usage or setup error. Needs the serve "
               "extra: pip install 'ray-ocr[serve]'.",
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


def stop_on_signals() -> threading.Event:
    """Set by SIGINT or SIGTERM: the service then deletes its applications and stops."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def serve_forever(config: ServeConfig, stop: threading.Event | None = None) -> int:
    """Start (or join) Ray, deploy, print where the API is, and wait for `stop`."""
    from ray_ocr.engine.cluster import gpus_for_this_run, ray_session

    stop = stop or stop_on_signals()
    gpu_ids = gpus_for_this_run(config.address, config.device)
    with ray_session(config.address, gpu_ids, quiet=not config.verbose) as cluster:
        with serve_started(config, embedded=cluster.embedded):
            base = f"http://{config.host}:{config.port}"
            print(f"ray_ocr.serve: starting {config.pipeline.display_name} replicas; /health answers meanwhile "
                  f"at {base}/health", flush=True)
            plan, paths = deploy_or_explain(config, cluster)
            print(f"ray_ocr.serve: {config.pipeline.display_name} at {', '.join(base + p for p in paths)} "
                  f"({plan.min_replicas}-{plan.max_replicas} replicas, each {plan.ray_actor_options}); "
                  f"health {base}/health" + (f"; dashboard {cluster.dashboard_url}" if cluster.dashboard_url else ""),
                  flush=True)
            while not stop.wait(1.0):
                pass
            print("ray_ocr.serve: stopping", flush=True)
    return 0


@contextmanager
def serve_started(config: ServeConfig, embedded: bool) -> Iterator[None]:
    """Serve's HTTP proxy on --host/--port; on the way out this service's applications
    are deleted, and Serve itself stopped only in a Ray this process started."""
    from ray import serve

    from ray_ocr.serve.plan import APP_NAME, HEALTH_APP_NAME

    serve.start(http_options={"host": config.host, "port": config.port})
    try:
        yield
    finally:
        for name in (APP_NAME, HEALTH_APP_NAME):
            try:
                serve.delete(name)
            except Exception:  # noqa: BLE001 - never deployed, or already gone
                pass
        if embedded:
            serve.shutdown()


def deploy_or_explain(config: ServeConfig, cluster):
    """``deploy``, with Serve's give-up on the replicas' constructor as one line."""
    from ray_ocr.serve.app import deploy

    try:
        return deploy(config, cluster)
    except RuntimeError as exc:
        raise SetupError(f"the pipeline replicas did not start: {str(exc).strip().splitlines()[-1]}") from None


if __name__ == "__main__":
    sys.exit(main())
