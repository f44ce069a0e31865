"""ray_ocr: run PaddleOCR 3.x pipelines over large sets of images and PDFs with Ray.

Importing this package imports neither Ray, Paddle nor PaddleOCR; they load when a
run starts (driver) or when an actor builds its pipeline (workers).
"""

from ray_ocr.config import DeviceRequest, PredictConfig, RunConfig
from ray_ocr.errors import ModelUnavailableError, SetupError, UsageError

__version__ = "0.1.0"


def run_batch(pipeline: str, input_dir: str, output_dir: str = "output", **options):
    """Run a pipeline over a folder, writing results; see :func:`ray_ocr.api.run_batch`."""
    from ray_ocr.api import run_batch as _run_batch

    return _run_batch(pipeline, input_dir, output_dir, **options)


def predict(pipeline: str, inputs, **options):
    """Yield results as they finish, writing nothing; see :func:`ray_ocr.api.predict`."""
    from ray_ocr.api import predict as _predict

    return _predict(pipeline, inputs, **options)


__all__ = ["DeviceRequest", "ModelUnavailableError", "PredictConfig", "RunConfig", "SetupError", "UsageError",
           "predict", "run_batch", "__version__"]
