"""ray_ocr.serve: PaddleX's serving API for one pipeline, answered by Ray Serve replicas.

Each replica builds one pipeline (as a batch actor does: same placement, same model
seeding) and mounts PaddleX's own FastAPI app for that pipeline around it, so paths,
request and response bodies and error statuses are exactly those of
``paddlex --serve --pipeline X``. ``/health`` is a separate, resource-free application
that answers while the pipeline replicas start.

- ``python -m ray_ocr.serve --pipeline OCR --device cpu ...`` (ray_ocr/serve/cli.py; its
  options are ray_ocr/config.py's ServeConfig)
- ``serve run`` / ``serve deploy`` config files: ``import_path: ray_ocr.serve.app:build_app``
  (and ``ray_ocr.serve.app:build_health_app`` at ``route_prefix: /health``).

Modules: plan.py (replicas' resources and Serve's options, no Ray), replica.py (inside a
replica, no Ray), router.py
(which replica a request goes to; Serve's proxies load it), app.py (the Serve
deployments, builders, deploy), cli.py. Importing
this package imports neither Ray nor Paddle; app.py needs the ``serve`` extra.
"""
