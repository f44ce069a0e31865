"""Inside a replica: the pipeline built as batch actors build it, its PaddleX config,
offline visualizations, warm-up, the replica header. No Ray here."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

from ray_ocr.errors import SetupError
from ray_ocr.serve.plan import REPLICA_HEADER, ReplicaSpec

logger = logging.getLogger(__name__)

_FONT_ENV = "PADDLE_PDX_LOCAL_FONT_FILE_PATH"
# Fonts PaddleX can draw visualizations with when its own (downloaded on first use
# into $PADDLE_PDX_CACHE_HOME/fonts) cannot be fetched. CJK first; DejaVu Sans comes
# with opencv-python (cv2/qt/fonts), so it is always there.
_FALLBACK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)


def use_offline_font() -> str | None:
    """Make PaddleX's visualizations work without a network.

    PaddleX downloads its font (simfang.ttf, ...) into ``$PADDLE_PDX_CACHE_HOME/fonts``
    the first time it draws text; offline every drawing retries the download (a 4-page
    PDF took 97 s instead of 45 s). ``seed_bundled_models`` links the bundled Noto Sans
    CJK there (the ``models`` extra); this is the fallback without it: when neither the
    user set ``PADDLE_PDX_LOCAL_FONT_FILE_PATH`` nor the font is cached, point that
    variable (PaddleX's own switch) at a local font. Must run before paddlex is imported
    in this process. Returns the font set, or None.
    """
    from ray_ocr.models.model_cache import paddlex_cache_dir

    if os.environ.get(_FONT_ENV) or (paddlex_cache_dir() / "fonts" / "simfang.ttf").is_file():
        return None
    candidates = [Path(p) for p in _FALLBACK_FONTS]
    try:
        import importlib.util

        cv2_spec = importlib.util.find_spec("cv2")
        if cv2_spec and cv2_spec.submodule_search_locations:
            candidates.append(Path(list(cv2_spec.submodule_search_locations)[0]) / "qt" / "fonts" / "DejaVuSans.ttf")
    except (ImportError, ValueError):
        pass
    candidates.append(Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"))
    for path in candidates:
        if path.is_file():
            os.environ[_FONT_ENV] = str(path)
            _point_loaded_fonts_at(str(path))
            logger.info("PaddleX visualizations use %s (simfang.ttf is not cached)", path)
            return str(path)
    return None


def _point_loaded_fonts_at(path: str) -> None:
    """PaddleX reads the variable when paddlex.utils.fonts is imported; in a process that
    imported it already, give its not-yet-downloaded fonts the same local file."""
    fonts = sys.modules.get("paddlex.utils.fonts")
    if fonts is None:
        return
    for value in vars(fonts).values():
        if isinstance(value, fonts.Font) and not getattr(value, "_local_path", None):
            value._local_path = path


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


def build_replica_pipeline(spec: ReplicaSpec):
    """(paddleocr pipeline, its PaddleX config) for one replica."""
    from ray_ocr.models.model_cache import seed_bundled_models
    from ray_ocr.models.runner import build_pipeline

    seed_bundled_models()  # first: it links the bundled CJK font under PaddleX's names
    use_offline_font()  # before paddlex is imported: only if no font is cached still
    os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
    pipeline = build_pipeline(spec.runner)
    if getattr(pipeline, "paddlex_pipeline", None) is None:
        raise SetupError(f"{type(pipeline).__name__} wraps no PaddleX pipeline; nothing to serve")
    if spec.max_image_pixels:
        from paddlex.inference.serving.infra import utils as serving_utils

        serving_utils.MAX_IMAGE_PIXELS = spec.max_image_pixels  # read at each call
    isolate_paddlex_random()
    return pipeline, paddlex_config_of(pipeline)


def warm_up(paddlex_pipeline) -> None:
    """One small prediction with text in it, so the first request does not pay for
    Paddle's first run (detection and recognition both)."""
    import cv2
    import numpy as np

    image = np.full((64, 320, 3), 255, dtype=np.uint8)
    cv2.putText(image, "ray_ocr 2024", (8, 44), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2)
    for _ in paddlex_pipeline.predict(image):
        pass


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
