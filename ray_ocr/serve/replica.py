"""Inside a replica: the pipeline built as batch actors build it (bundled models and
font seeded, ``cpu_threads``), its PaddleX config, PaddleX's colours kept per thread,
warm-up, the replica header. No Ray here."""

from __future__ import annotations

import os
import sys
import tempfile

from ray_ocr.errors import SetupError
from ray_ocr.serve.plan import REPLICA_HEADER


class _PerThreadRandom:
    """Stands in for the ``random`` module inside PaddleX's result modules: the same
    functions, each thread drawing from its own generator.

    PaddleX colours the boxes of a visualization (``ocrImage``, ...) with
    ``random.seed(0)`` then ``random.randint`` on Python's global generator. In a Serve
    replica other threads (Serve's own) draw from that generator between the two, so the
    same input got other colours from request to request; with a generator per thread,
    the seed and the draws stay together and the image is PaddleX's standalone one."""

    def __init__(self):
        import threading

        self._local = threading.local()

    def __getattr__(self, name):
        import random

        rng = getattr(self._local, "rng", None)
        if rng is None:
            rng = self._local.rng = random.Random()
        return getattr(rng, name)


def isolate_paddlex_random() -> list[str]:
    """Give every loaded ``paddlex.inference`` module that uses the global ``random``
    module a per-thread generator instead; returns the modules changed."""
    import random

    changed = []
    stand_in = _PerThreadRandom()
    for name, module in list(sys.modules.items()):
        if name.startswith("paddlex.inference") and getattr(module, "random", None) is random:
            module.random = stand_in
            changed.append(name)
    return changed


def paddlex_config_of(pipeline) -> dict:
    """The PaddleX config a paddleocr pipeline object was built from (its
    ``paddlex_config`` merged with its constructor arguments), via paddleocr's public
    ``export_paddlex_config_to_yaml``."""
    import yaml

    with tempfile.TemporaryDirectory(prefix="ray_ocr_serve_") as folder:
        path = os.path.join(folder, "pipeline.yaml")
        pipeline.export_paddlex_config_to_yaml(path)
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)


def build_replica_pipeline(spec):
    """(paddleocr pipeline, its PaddleX config) for one replica, warmed up; `spec`: a
    RunnerSpec (engine/placement.py's slot applied)."""
    from ray_ocr.models.runner import freeze_long_lived_objects, build_pipeline

    require_serial_pipeline_calls()
    pipeline = build_pipeline(spec)
    if getattr(pipeline, "paddlex_pipeline", None) is None:
        raise SetupError(f"{type(pipeline).__name__} wraps no PaddleX pipeline; nothing to serve")
    from paddlex.inference.serving.infra import utils as serving_utils

    serving_utils.MAX_IMAGE_PIXELS = spec.max_image_pixels  # PaddleX's app reads it at each call
    warm_up(pipeline.paddlex_pipeline)
    isolate_paddlex_random()  # after the warm-up: the modules its first run imported too
    freeze_long_lived_objects()  # as batch actors do: full GCs stop walking the models
    return pipeline, paddlex_config_of(pipeline)


def require_serial_pipeline_calls() -> None:
    """PaddleX's app runs a pipeline's calls one at a time only with this flag on (its
    default); Paddle's predictors are not thread-safe, so concurrent calls would corrupt
    results: refuse to serve without it."""
    from paddlex.utils import flags

    if not flags.SERVING_SERIAL_PIPELINE_CALLS:
        raise SetupError("PADDLE_PDX_SERVING_SERIAL_PIPELINE_CALLS is off: PaddleX's app would run pipeline "
                         "calls concurrently and Paddle's predictors are not thread-safe; unset it")


def warm_up(paddlex_pipeline) -> None:
    """One small prediction with text in it, so the first request does not pay for
    Paddle's first run (detection and recognition both). Pipelines whose predict() takes
    no image (DocUnderstanding's takes an image and a query; PP-ChatOCRv4's and
    PP-DocTranslation's work through other methods and return None) are not warmed up:
    their first request pays instead."""
    import logging

    import cv2
    import numpy as np

    image = np.full((64, 320, 3), 255, dtype=np.uint8)
    cv2.putText(image, "ray_ocr 2024", (8, 44), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2)
    try:
        for _ in paddlex_pipeline.predict(image):
            pass
    except Exception as exc:  # noqa: BLE001 - a warm-up is an optimisation, never a failed replica
        logging.getLogger("ray_ocr").info("warm-up skipped for %s: %s", type(paddlex_pipeline).__name__, exc)


class ReplicaHeader:
    """ASGI middleware: every HTTP response names the replica that made it."""

    def __init__(self, app, value: str):
        self.app = app
        self.header = (REPLICA_HEADER.encode(), value.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_header(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        return await self.app(scope, receive, send_with_header)
