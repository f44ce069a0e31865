"""ray_ocr: run PaddleOCR 3.x pipelines over large sets of images and PDFs with Ray.

Importing this package imports neither Ray, Paddle nor PaddleOCR; they load when a
run starts (driver) or when an actor builds its pipeline (workers).
"""

from ray_ocr.config import DeviceRequest, RunConfig
from ray_ocr.errors import ModelUnavailableError, SetupError, UsageError

__version__ = "0.1.0"


def run(pipeline: str, input_dir: str, output_dir: str = "output", **options):
    """Run a pipeline over a folder; see :func:`ray_ocr.api.run`."""
    from ray_ocr.api import run as _run

    return _run(pipeline, input_dir, output_dir, **options)


def predict(pipeline: str, inputs, **options):
    """Yield results as they finish, writing nothing; see :func:`ray_ocr.api.predict`."""
    from ray_ocr.api import predict as _predict

    return _predict(pipeline, inputs, **options)


__all__ = ["DeviceRequest", "ModelUnavailableError", "RunConfig", "SetupError", "UsageError", "predict", "run", "__version__"]
