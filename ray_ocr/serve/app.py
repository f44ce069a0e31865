"""The Ray Serve application: PaddleX's own serving app for one pipeline, per replica.

How PaddleX's server is built (paddlex/paddlex_cli.py ``serve``): it loads a pipeline
config, ``create_pipeline(config=...)``, then
``paddlex.inference.serving.basic_serving.create_pipeline_app(pipeline, config)``, which
picks the pipeline's module in ``basic_serving/_pipeline_apps`` (``OCR`` -> ``ocr.py``)
and returns a FastAPI app: the endpoint (``POST /ocr``), its pydantic schemas
(``serving/schemas/ocr.py``), the ``logId/errorCode/errorMsg/result`` envelope, the error
handlers (422 for validation and unreadable files, 500 otherwise) and ``GET /health``.
Pipeline calls go through PaddleX's ``PipelineWrapper``, which runs them one at a time on
one thread (``PADDLE_PDX_SERVING_SERIAL_PIPELINE_CALLS``, on by default): Paddle's
predictors are not thread-safe, and PaddleX already serializes them.

What ray_ocr adds, without copying any of it:

- ``PaddleXPipelineServer``: a Serve deployment whose replica builds the pipeline once
  with ray_ocr's runner (``build_pipeline``: bundled models and font seeded, offline
  settings, ``cpu_threads``), then hands PaddleX's ``create_pipeline_app`` the PaddleX pipeline
  inside it (``paddleocr``'s classes wrap one: ``.paddlex_pipeline``) and the merged
  PaddleX config (``export_paddlex_config_to_yaml``). Serve mounts that app
  (``@serve.ingress()`` with ``__serve_build_asgi_app__``: the app is made after the
  replica's constructor, around its own pipeline) and runs its lifespan.
- A response header ``x-ray-ocr-replica`` naming the replica that answered.
- ``HealthServer``: ``GET /health`` as a second application that needs no resources, so
  it answers (503 with PaddleX's envelope) while the pipeline replicas are starting.
- Placement as batch runs: engine/placement.py's plan gives each replica's CPU/GPU share
  and ``cpu_threads``, and the number of replicas the cluster holds (serve/plan.py).
"""

from __future__ import annotations

import logging
import os
import time
import uuid

from ray import serve

from ray_ocr.errors import UsageError
from ray_ocr.engine.model_store import ship_models, with_shipped_models
from ray_ocr.serve.plan import (
    APP_NAME,
    DEPLOYMENT_NAME,
    HEALTH_APP_NAME,
    HEALTH_DEPLOYMENT_NAME,
    config_from_app_args,
    plan_deployment,
    replica_counts,
    require_serve_extra,
)
from ray_ocr.serve.replica import build_replica_app, build_replica_pipeline

logger = logging.getLogger(__name__)


@serve.deployment(name=DEPLOYMENT_NAME)
@serve.ingress()
class PaddleXPipelineServer:
    """One replica: one pipeline, behind PaddleX's own serving app for it."""

    def __init__(self, spec, model_store: str | None = None, max_pages: int | None = None):
        started = time.perf_counter()
        if model_store is not None:  # the builder's models, for nodes that cannot download them
            spec = with_shipped_models(spec, model_store)
        self._pipeline, self._paddlex_config = build_replica_pipeline(spec, max_pages)
        self._routes: list[str] = []
        try:
            self._replica = serve.get_replica_context().replica_id.unique_id
        except Exception:  # outside Serve (tests of the class itself)
            self._replica = f"pid{os.getpid()}"
        logger.info("replica %s: %s ready in %.1f s", self._replica, self._paddlex_config.get("pipeline_name"),
                    time.perf_counter() - started)

    def __serve_build_asgi_app__(self):
        app = build_replica_app(self._pipeline, self._paddlex_config, self._replica)
        self._routes = [route.path for route in app.routes if "POST" in (getattr(route, "methods", None) or ())]
        return app

    def routes(self) -> list[str]:
        """The POST paths PaddleX's app has for this pipeline (``/ocr``, ...), for the
        start message: read from the app itself, so every pipeline's are right."""
        return self._routes


# -- /health ---------------------------------------------------------------------------


def _envelope(code: int, message: str) -> dict:
    """PaddleX's no-result response (serving/infra/models.py AIStudioNoResultResponse)."""
    return {"logId": str(uuid.uuid4()), "errorCode": code, "errorMsg": message}


@serve.deployment(name=HEALTH_DEPLOYMENT_NAME, num_replicas=1, max_ongoing_requests=64,
                  ray_actor_options={"num_cpus": 0})
class HealthServer:
    """``GET /health``: PaddleX's answer (200, errorCode 0, "Healthy") once at least one
    pipeline replica runs; 503 with the same envelope while none does (starting,
    all restarting). Needs no CPU, so it is up before the pipeline replicas."""

    def __init__(self, app_name: str = APP_NAME, deployment_name: str = DEPLOYMENT_NAME):
        self._app = app_name
        self._deployment = deployment_name
        self._cached: tuple[float, int, str] | None = None

    def _check(self) -> tuple[int, str]:
        status = serve.status()
        app = status.applications.get(self._app)
        if app is None:
            return 503, f"Not ready: application {self._app!r} is not deployed"
        if getattr(app.status, "value", app.status) == "DELETING":  # a load balancer takes it out now
            return 503, "Not ready: stopping (answering the requests in flight)"
        deployment = app.deployments.get(self._deployment)
        states = dict(deployment.replica_states) if deployment else {}
        running = int(states.get("RUNNING", 0))
        if running > 0:
            return 200, "Healthy"
        waiting = replica_counts(app, self._deployment)
        app_status = getattr(app.status, "value", app.status)
        return 503, f"Not ready: no pipeline replica running ({waiting}; application {app_status})"

    async def __call__(self, request):
        import asyncio

        from starlette.responses import JSONResponse

        if request.url.path.rstrip("/") != "/health":
            return JSONResponse(_envelope(404, "Not Found"), status_code=404)
        if request.method not in ("GET", "HEAD"):
            return JSONResponse(_envelope(405, "Method Not Allowed"), status_code=405)
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > 1.0:
            try:
                code, message = await asyncio.to_thread(self._check)
            except Exception as exc:  # the controller is busy or restarting
                code, message = 503, f"Not ready: {type(exc).__name__}"
            self._cached = (now, code, message)
        _, code, message = self._cached
        return JSONResponse(_envelope(0 if code == 200 else code, message), status_code=code)


# -- building and deploying ------------------------------------------------------------


def _joined_cluster():
    """The cluster a ``serve run`` / ``serve deploy`` builder runs on (Ray is up there)."""
    import ray

    from ray_ocr.engine.cluster import describe_cluster

    if not ray.is_initialized():
        ray.init(address="auto")
    return describe_cluster(embedded=False)


def application(config, cluster=None):
    """(plan, the pipeline application) for a ServeConfig: the one place Serve's
    deployment options are applied. On a cluster the builder joined, the models its
    disk has are shipped to the replicas (on one machine they share its disk)."""
    cluster = cluster if cluster is not None else _joined_cluster()
    plan = plan_deployment(config, cluster)
    store = ship_models(plan.runner) if cluster.ships_models else None
    return plan, PaddleXPipelineServer.options(**plan.deployment_options()).bind(plan.runner, store, plan.max_pages)


def build_app(args: dict):
    """Import path for ``serve run`` and ``serve deploy`` config files (args: the flags'
    names without ``--``, see ``config_from_app_args``)::

        applications:
          - name: ray_ocr
            route_prefix: /
            import_path: ray_ocr.serve.app:build_app
            args: {pipeline: OCR, device: cpu, params_file: /path/ocr.yaml}
          - name: ray_ocr_health
            route_prefix: /health
            import_path: ray_ocr.serve.app:build_health_app
            args: {app_name: ray_ocr}
    """
    require_serve_extra()
    return application(config_from_app_args(args))[1]


def build_health_app(args: dict | None = None):
    """Import path for the /health application (args: ``app_name`` only)."""
    args = dict(args or {})
    unknown = sorted(set(args) - {"app_name"})
    if unknown:
        raise UsageError(f"{', '.join(unknown)}: build_health_app takes only app_name")
    return HealthServer.bind(args.get("app_name", APP_NAME), DEPLOYMENT_NAME)


def start_health() -> None:
    """Deploy /health; it needs no resources, so it runs at once. Serve must be started
    already (``serve.start(...)``)."""
    serve.run(build_health_app(), name=HEALTH_APP_NAME, route_prefix="/health")


def start_deploy(config, cluster):
    """Deploy the pipeline application without waiting for its replicas (the caller
    polls ``serve.status()``, so a stop or a failure is seen while they start); returns
    the plan. Serve must be started already (``serve.start(...)``)."""
    plan, app = application(config, cluster)
    # serve.run waits, with no time limit, until every replica runs; _run(_blocking=False)
    # is the same call returning once the application is created (Ray 2.60's api.py).
    serve._run(app, name=APP_NAME, route_prefix="/", _blocking=False)
    return plan


def pipeline_routes() -> list[str]:
    """The POST paths of the running pipeline application (asked of one replica)."""
    return serve.get_app_handle(APP_NAME).routes.remote().result()
