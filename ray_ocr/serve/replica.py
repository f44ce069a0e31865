"""Inside a replica: the pipeline built as batch actors build it (bundled models and
font seeded, ``cpu_threads``), its PaddleX config, PaddleX's colours kept per thread,
warm-up, documents cut at the page limit said, the response headers. No Ray here."""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import tempfile

from ray_ocr.errors import SetupError
from ray_ocr.serve.plan import PAGES_HEADER, REPLICA_HEADER

logger = logging.getLogger("ray_ocr")


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


def build_replica_pipeline(spec, max_pages: int | None = None):
    """(paddleocr pipeline, its PaddleX config) for one replica, warmed up; `spec`: a
    RunnerSpec (engine/placement.py's slot applied); `max_pages`: --max_pages."""
    from ray_ocr.models.runner import freeze_long_lived_objects, build_pipeline

    require_serial_pipeline_calls()
    pipeline = build_pipeline(spec)
    if getattr(pipeline, "paddlex_pipeline", None) is None:
        raise SetupError(f"{type(pipeline).__name__} wraps no PaddleX pipeline; nothing to serve")
    from paddlex.inference.serving.infra import utils as serving_utils

    serving_utils.MAX_IMAGE_PIXELS = spec.max_image_pixels  # PaddleX's app reads it at each call
    say_cut_documents()
    warm_up(pipeline.paddlex_pipeline)
    isolate_paddlex_random()  # after the warm-up: the modules its first run imported too
    freeze_long_lived_objects()  # as batch actors do: full GCs stop walking the models
    return pipeline, with_page_limit(paddlex_config_of(pipeline), max_pages)


def build_replica_app(pipeline, paddlex_config: dict, replica: str):
    """PaddleX's own serving app for the pipeline, with ray_ocr's response headers."""
    from paddlex.inference.serving.basic_serving import create_pipeline_app

    app = create_pipeline_app(pipeline.paddlex_pipeline, paddlex_config)
    app.add_middleware(ResponseHeaders, replica=replica)
    return app


def with_page_limit(config: dict, max_pages: int | None) -> dict:
    """The PaddleX config with --max_pages as its app's ``max_num_input_imgs`` (0: none)."""
    if max_pages is None:
        return config
    serving = dict(config.get("Serving") or {})
    serving["extra"] = {**(serving.get("extra") or {}), "max_num_input_imgs": max_pages or None}
    return {**config, "Serving": serving}


# Notes for the response headers of the request being answered (a dict per request, set
# by ResponseHeaders; PaddleX's app code, run within the request, adds to it).
_RESPONSE_NOTES: contextvars.ContextVar[dict | None] = contextvars.ContextVar("ray_ocr_response_notes",
                                                                              default=None)


class _CutPages(list):
    """The pages PaddleX read of a document it cut, and how many the document has."""

    total = 0


def say_cut_documents() -> None:
    """PaddleX's app answers only a document's first ``max_num_input_imgs`` pages, and
    says nothing. Wrap its page reading (once per process) so a cut document is logged
    and its response carries ``x-ray-ocr-pages: 10 of 12``. Its reader runs in a worker
    thread, where the request's context is not: the page list itself carries the count
    back to the request."""
    from paddlex.inference.serving.basic_serving._pipeline_apps._common import ocr as ocr_common
    from paddlex.inference.serving.infra import utils as serving_utils

    if getattr(serving_utils.file_to_images, "_ray_ocr", False):
        return
    read_pages, get_images = serving_utils.file_to_images, ocr_common.get_images

    def file_to_images(file_bytes, file_type, *, max_num_imgs=None):
        images, data_info = read_pages(file_bytes, file_type, max_num_imgs=max_num_imgs)
        if max_num_imgs is not None and len(images) >= max_num_imgs:
            total = _page_count(file_bytes, file_type, len(images))
            if total > len(images):
                logger.warning("a document of %d pages: answered its first %d (--max_pages; 0 answers every page)",
                               total, len(images))
                images = _CutPages(images)
                images.total = total
        return images, data_info

    async def images_of_request(request, app_context):
        images, data_info = await get_images(request, app_context)
        notes = _RESPONSE_NOTES.get()
        if isinstance(images, _CutPages) and notes is not None:
            notes[PAGES_HEADER] = f"{len(images)} of {images.total}"
        return images, data_info

    file_to_images._ray_ocr = True
    serving_utils.file_to_images, ocr_common.get_images = file_to_images, images_of_request


def _page_count(file_bytes: bytes, file_type: str, read: int) -> int:
    """Pages in a PDF or multi-page TIFF (PaddleX's only documents of several pages),
    without rendering them; `read` (what PaddleX read) when it cannot tell."""
    import io

    from paddlex.inference.serving.infra import utils as serving_utils

    try:
        if file_type == "PDF":
            import pypdfium2 as pdfium

            with serving_utils.pdfium_lock:
                document = pdfium.PdfDocument(file_bytes)
                try:
                    return len(document)
                finally:
                    document.close()
        if serving_utils.is_tiff_bytes(file_bytes):
            from PIL import Image

            with Image.open(io.BytesIO(file_bytes)) as image:
                return getattr(image, "n_frames", 1)
    except Exception:  # noqa: BLE001 - PaddleX read it; a count is only for the header
        pass
    return read


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


class ResponseHeaders:
    """ASGI middleware: every HTTP response names the replica that made it, and carries
    the notes its request left (a document cut at the page limit)."""

    def __init__(self, app, replica: str):
        self.app = app
        self.header = (REPLICA_HEADER.encode(), replica.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        notes: dict[str, str] = {}
        token = _RESPONSE_NOTES.set(notes)  # this request's task and the tasks it starts see this dict

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                extra = [self.header, *((k.encode(), v.encode()) for k, v in notes.items())]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            return await self.app(scope, receive, send_with_headers)
        finally:
            _RESPONSE_NOTES.reset(token)
