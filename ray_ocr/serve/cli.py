"""``python -m ray_ocr.serve``: PaddleX's serving API for one pipeline, on Ray Serve.

    python -m ray_ocr.serve --pipeline OCR --device cpu --params_file samples/ocr_mobile_offline.yaml

Flag parsing is ``parse_args`` alone (argparse for now; to be replaced by the shared
option declarations of ray_ocr/config.py); ``serve_forever`` does the work.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from dataclasses import dataclass

from ray_ocr.errors import SetupError, UsageError

logger = logging.getLogger("ray_ocr")


@dataclass(frozen=True)
class ServerSettings:
    address: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    verbose: bool = False


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        print(f"ray_ocr.serve: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def parse_args(argv: list[str] | None = None):
    """Flags -> (ServeOptions, ServerSettings); UsageError for a bad value."""
    from ray_ocr.config import load_params_file, parse_key_values
    from ray_ocr.serve.plan import DEFAULT_MAX_ONGOING_REQUESTS, DEFAULT_PORT, ServeOptions, load_pipeline_config

    p = _OneLineParser(prog="python -m ray_ocr.serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--pipeline", required=True, help="PaddleOCR pipeline: OCR, SealRecognition, PPStructureV3, ...")
    p.add_argument("--device", default="auto", help="cpu, gpu or gpu:0,1 (default: gpu if Ray sees one, else cpu)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="pipeline constructor argument (repeatable; YAML scalar value)")
    p.add_argument("--params_file", metavar="YAML", help="YAML mapping of constructor arguments; --param overrides")
    p.add_argument("--pipeline_config", metavar="YAML",
                   help="PaddleX pipeline config (its Serving: section configures PaddleX's app too)")
    p.add_argument("--instances_per_device", type=int, default=1, metavar="K",
                   help="replicas per GPU (each asks 1/K GPU) or per node on cpu")
    p.add_argument("--gpus_per_instance", type=float, metavar="F", help="GPU fraction per replica (default 1/K)")
    p.add_argument("--cpus_per_instance", type=float, metavar="C",
                   help="CPUs per replica, also its cpu_threads (default on cpu: node CPUs / K)")
    p.add_argument("--min_replicas", type=int, metavar="N",
                   help="autoscale down to N replicas (default: --max_replicas, no autoscaling)")
    p.add_argument("--max_replicas", type=int, metavar="N",
                   help="at most N replicas (default: as many as the plan places, like a batch run)")
    p.add_argument("--max_ongoing_requests", type=int, default=DEFAULT_MAX_ONGOING_REQUESTS, metavar="N",
                   help="requests a replica holds at once: one predicting, the others decoded and waiting")
    p.add_argument("--max_image_pixels", type=int, metavar="N", help="PaddleX's pixel limit (default 178956970)")
    p.add_argument("--address", help="join a running Ray cluster (auto, host:port); default: embedded Ray")
    p.add_argument("--host", default="127.0.0.1",
                   help="HTTP address to bind (default 127.0.0.1; 0.0.0.0 exposes the API, without "
                        "authentication, to every network the machine is on)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})")
    p.add_argument("--verbose", action="store_true", help="show Ray's and PaddleX's logs")
    args = p.parse_args(argv)

    params = load_params_file(args.params_file)
    params.update(parse_key_values(args.param, "--param"))
    options = ServeOptions(
        pipeline=args.pipeline,
        device=args.device,
        params=tuple(params.items()),
        pipeline_config=load_pipeline_config(args.pipeline_config) if args.pipeline_config else None,
        instances_per_device=args.instances_per_device,
        gpus_per_instance=args.gpus_per_instance,
        cpus_per_instance=args.cpus_per_instance,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        max_ongoing_requests=args.max_ongoing_requests,
        max_image_pixels=args.max_image_pixels,
    )
    return options, ServerSettings(args.address, args.host, args.port, args.verbose)


def endpoint_paths(pipeline_name: str) -> list[str]:
    """The POST paths of PaddleX's app for a PaddleX pipeline name (from its schemas)."""
    import importlib

    try:
        from paddlex.inference.serving.name_mappings import pipeline_name_to_mod_name

        mod = importlib.import_module(f"paddlex.inference.serving.schemas.{pipeline_name_to_mod_name(pipeline_name)}")
        return [path for path, _req, _res in mod.PRIMARY_OPERATIONS.values()]
    except Exception:  # noqa: BLE001 - only for the start message
        return []


def serve_forever(options, settings: ServerSettings, stop: threading.Event | None = None) -> int:
    """Start (or join) Ray, deploy, print where the API is, and wait for SIGINT/SIGTERM."""
    from ray import serve

    from ray_ocr.config import DeviceRequest
    from ray_ocr.engine.cluster import gpus_for_this_run, ray_session
    from ray_ocr.serve.app import HEALTH_APP_NAME, deploy

    stop = stop or threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    gpu_ids = gpus_for_this_run(settings.address, DeviceRequest.parse(options.device))
    with ray_session(settings.address, gpu_ids, quiet=not settings.verbose) as cluster:
        serve.start(http_options={"host": settings.host, "port": settings.port})
        try:
            print(f"ray_ocr.serve: starting {options.pipeline} replicas; /health answers meanwhile at "
                  f"http://{settings.host}:{settings.port}/health", flush=True)
            try:
                plan, _handle = deploy(options, cluster)
            except RuntimeError as exc:  # Serve gave up on the replicas' constructor
                raise SetupError(f"the pipeline replicas did not start: {str(exc).strip().splitlines()[-1]}") from None
            base = f"http://{settings.host}:{settings.port}"
            paths = endpoint_paths(_paddlex_name(options)) or ["/"]
            print(f"ray_ocr.serve: {options.pipeline} at {', '.join(base + p for p in paths)} "
                  f"({plan.min_replicas}-{plan.max_replicas} replicas, {plan.ray_actor_options}); "
                  f"health {base}/health" + (f"; dashboard {cluster.dashboard_url}" if cluster.dashboard_url else ""),
                  flush=True)
            while not stop.wait(1.0):
                pass
            print("ray_ocr.serve: stopping", flush=True)
        finally:
            for name in (options.app_name, HEALTH_APP_NAME):
                try:
                    serve.delete(name)
                except Exception:  # noqa: BLE001 - never deployed, or already gone
                    pass
            if cluster.embedded:
                serve.shutdown()
    return 0


def _paddlex_name(options) -> str:
    """The PaddleX pipeline name behind a paddleocr class (its ``_paddlex_pipeline_name``)."""
    from ray_ocr.pipelines import resolve_pipeline

    try:
        cls = resolve_pipeline(options.pipeline).load()
        return cls._paddlex_pipeline_name.fget(None)  # a property returning a constant
    except Exception:  # noqa: BLE001 - only for the start message
        return options.pipeline


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        options, settings = parse_args(argv)
        return serve_forever(options, settings)
    except (UsageError, SetupError) as exc:
        print(f"ray_ocr.serve: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
