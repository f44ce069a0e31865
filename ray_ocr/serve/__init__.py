"""ray_ocr.serve: PaddleX's serving API for one pipeline, answered by Ray Serve replicas.

Each replica builds one pipeline (as a batch actor does: same placement, same model
seeding) and mounts PaddleX's own FastAPI app for that pipeline around it, so paths,
request and response bodies and error statuses are exactly those of
``paddlex --serve --pipeline X``. ``/health`` is a separate, resource-free application
that answers while the pipeline replicas start.

- ``python -m ray_ocr.serve --pipeline OCR --device cpu ...`` (ray_ocr/serve/cli.py)
- ``serve run`` / ``serve deploy`` config files: ``import_path: ray_ocr.serve.app:build_app``
  (and ``ray_ocr.serve.app:build_health_app`` at ``route_prefix: /health``).

Modules: plan.py (options and placement, no Ray), replica.py (inside a replica, no Ray),
app.py (the Serve deployments, builders, deploy), cli.py.
"""

_FROM_APP = {"build_app", "build_health_app", "deploy", "PaddleXPipelineServer", "HealthServer"}
_FROM_PLAN = {"APP_NAME", "HEALTH_APP_NAME", "REPLICA_HEADER", "ServeOptions", "plan_deployment"}

__all__ = sorted(_FROM_APP | _FROM_PLAN)


def __getattr__(name):  # imports Ray Serve only when a deployment is asked for
    import importlib

    if name in _FROM_APP:
        return getattr(importlib.import_module("ray_ocr.serve.app"), name)
    if name in _FROM_PLAN:
        return getattr(importlib.import_module("ray_ocr.serve.plan"), name)
    raise AttributeError(name)
